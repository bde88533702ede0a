use conflictkit::AutoNumber;

#[derive(AutoNumber)]
#[auto_number(rename_all = "lowercase", rename_all = "UPPERCASE")]
enum SameAttribute {
    A = 1,
}

#[derive(AutoNumber)]
#[auto_number(repr = i16)]
#[auto_number(repr = i16, serde = "name")]
#[auto_number(serde = "number")]
enum AcrossAttributes {
    A = 1,
}

#[derive(AutoNumber)]
enum OnAVariant {
    #[auto_number(rename = "a")]
    #[auto_number(rename = "b")]
    A = 1,
}

fn main() {}
