use conflictkit::AutoNumber;

#[derive(AutoNumber)]
enum Sized<const N: usize> {
    A,
}

fn main() {}
