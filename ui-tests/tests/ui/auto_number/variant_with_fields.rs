// Variants with fields are rejected on the variant, naming `Enum::Variant`.
// The stub impls emitted with the errors keep the uses in `main` quiet.
use conflictkit::AutoNumber;

#[derive(AutoNumber, Debug)]
#[repr(i32)]
enum Shape {
    Point = 1,
    Circle(f64),
    Rect { w: f64, h: f64 },
}

fn main() {
    let _ = Shape::Point.value();
    let _ = Shape::Point.to_string();
    let _ = "Point".parse::<Shape>();
    let _ = Shape::try_from(1);
    let _: i32 = Shape::Point.into();
}
