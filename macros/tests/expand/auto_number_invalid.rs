// Errors, then stub impls so that uses elsewhere add no noise.
#[derive(AutoNumber)]
enum Broken {
    NoNumber,
    WithFields(u8),
}
