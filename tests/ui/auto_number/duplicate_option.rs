use conflictkit::AutoNumber;

#[derive(AutoNumber)]
#[auto_number(start = 0, start = 1)]
enum SameAttribute {
    A,
}

#[derive(AutoNumber)]
#[auto_number(repr = i16)]
#[auto_number(repr = i16, serde = "name")]
#[auto_number(serde = "number")]
enum AcrossAttributes {
    A,
}

fn main() {}
