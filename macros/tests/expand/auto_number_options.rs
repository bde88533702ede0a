#[derive(AutoNumber)]
#[auto_number(repr = i8, serde = "name", rename_all = "kebab-case", crate = "::my_app::ck")]
pub enum Temperature {
    Freezing = -1,
    BelowZero = 0,
    #[auto_number(rename = "mild")]
    r#Warm,
}

#[derive(AutoNumber)]
#[repr(u16)]
enum Empty {}
