use conflictkit::AutoNumber;

#[derive(AutoNumber)]
enum Subsystem {
    Database,
    StatusServer = 5,
    Backend,
}

fn main() {}
