use conflictkit::AutoNumber;

// Enum options on a variant, a variant option on the enum, an unknown one.
#[derive(AutoNumber)]
#[auto_number(rename = "subsystem")]
enum Subsystem {
    Database = 1,
    #[auto_number(repr = u8)]
    Backend,
    #[auto_number(alias = "bcast")]
    Broadcast,
}

fn main() {}
