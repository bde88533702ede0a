// Enums without variants: every generated item compiles and answers "none".
#![deny(warnings)]

use conflictkit::AutoNumber;

#[derive(AutoNumber)]
enum Never {}

#[derive(AutoNumber)]
#[auto_number(repr = u8, serde = "name", rename_all = "kebab-case")]
#[allow(unreachable_pub)] // public, as in a library
pub enum AlsoNever {}

pub(super) fn run() {
    assert!(Never::VARIANTS.is_empty());
    assert!(Never::from_value(1).is_none());
    assert!(AlsoNever::from_name("x").is_none());
    assert!("x".parse::<Never>().is_err());
}
