use conflictkit::AutoNumber;

#[derive(AutoNumber)]
#[auto_number(serde = "json")]
enum Mode {
    A = 1,
}

#[derive(AutoNumber)]
#[auto_number(start = 1)]
enum Start {
    A,
}

#[derive(AutoNumber)]
#[auto_number(crate = "not a path")]
enum Krate {
    A = 1,
}

#[derive(AutoNumber)]
#[auto_number(rename_all = "snake", serde = name)]
enum Case {
    A = 1,
    #[auto_number(rename = 5)]
    B,
    #[auto_number(rename = "")]
    C,
}

fn main() {}
