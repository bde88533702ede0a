use conflictkit::AutoNumber;

#[derive(AutoNumber)]
enum Renamed {
    Database = 1,
    #[auto_number(rename = "Database")]
    Db,
}

#[derive(AutoNumber)]
#[auto_number(rename_all = "lowercase")]
enum Folded {
    StatusServer = 1,
    Statusserver,
}

fn main() {}
