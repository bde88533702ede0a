use conflictkit::AutoNumber;

#[derive(AutoNumber)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
