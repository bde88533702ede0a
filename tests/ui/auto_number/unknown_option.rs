use conflictkit::AutoNumber;

#[derive(AutoNumber)]
#[auto_number(strat = 0, rename_all = "snake_case")]
enum Subsystem {
    Database,
}

#[derive(AutoNumber)]
#[auto_number(skip)]
enum Other {
    A,
}

fn main() {}
