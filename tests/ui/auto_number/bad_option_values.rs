use conflictkit::AutoNumber;

#[derive(AutoNumber)]
#[auto_number(serde = "json")]
enum Mode {
    A,
}

#[derive(AutoNumber)]
#[auto_number(start = "1")]
enum Start {
    A,
}

#[derive(AutoNumber)]
#[auto_number(crate = "not a path")]
enum Krate {
    A,
}

fn main() {}
