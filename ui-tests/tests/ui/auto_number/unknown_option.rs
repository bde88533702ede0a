use conflictkit::AutoNumber;

#[derive(AutoNumber)]
#[auto_number(strat = 0, rename_al = "snake_case")]
enum Subsystem {
    Database = 1,
}

#[derive(AutoNumber)]
#[auto_number(skip)]
enum Other {
    A = 1,
}

fn main() {}
