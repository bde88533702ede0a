use conflictkit::AutoNumber;

#[derive(AutoNumber)]
struct Subsystem {
    id: i32,
}

fn main() {}
