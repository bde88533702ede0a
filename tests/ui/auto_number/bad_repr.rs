use conflictkit::AutoNumber;

#[derive(AutoNumber)]
#[auto_number(repr = usize)]
enum Pointer {
    A,
}

#[derive(AutoNumber)]
#[auto_number(repr = i128)]
enum Wide {
    A,
}

#[derive(AutoNumber)]
#[auto_number(repr = "i32")]
enum Quoted {
    A,
}

fn main() {}
