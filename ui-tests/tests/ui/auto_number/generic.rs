use conflictkit::AutoNumber;

#[derive(AutoNumber)]
enum Sized<const N: usize> {
    A = 1,
}

fn main() {}
