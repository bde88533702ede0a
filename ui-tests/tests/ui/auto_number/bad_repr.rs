use conflictkit::AutoNumber;

#[derive(AutoNumber)]
#[auto_number(repr = usize)]
enum Pointer {
    A = 1,
}

#[derive(AutoNumber)]
#[auto_number(repr = i128)]
enum Wide {
    A = 1,
}

#[derive(AutoNumber)]
#[auto_number(repr = "i32")]
enum Quoted {
    A = 1,
}

fn main() {}
