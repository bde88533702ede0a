// `rename` and `rename_all`, written in every accepted form, with every
// variant's number restated.
#![deny(warnings)]

use conflictkit::AutoNumber;

#[derive(AutoNumber, Debug, Clone, Copy, PartialEq)]
#[auto_number(rename_all = "camelCase")]
#[repr(i16)]
enum Subsystem {
    Database = 1,
    StatusServer = 2,
    #[auto_number(rename = "be")]
    r#Backend = 3,
}

pub(super) fn run() {
    assert_eq!(Subsystem::VARIANT_NAMES, ["database", "statusServer", "be"]);
    assert_eq!(Subsystem::Backend as i16, Subsystem::Backend.value());
}
