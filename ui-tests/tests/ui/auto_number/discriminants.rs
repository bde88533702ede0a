// AutoNumber values are the enum's discriminants: the first is written out,
// and any later one written must continue the count.
use conflictkit::AutoNumber;

#[derive(AutoNumber)]
enum Implicit {
    Database,
    StatusServer,
}

#[derive(AutoNumber)]
enum Gap {
    Database = 1,
    StatusServer = 5,
    Backend,
}

const FIRST: isize = 1;

#[derive(AutoNumber)]
enum NotALiteral {
    Database = FIRST,
}

fn main() {}
