use conflictkit::AutoNumber;

#[derive(AutoNumber)]
enum Subsystem {
    Database,
    #[auto_number(start = 10)]
    Backend,
}

fn main() {}
