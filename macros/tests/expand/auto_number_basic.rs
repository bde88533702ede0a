/// The original's `app.Subsystem`, numbered from 1.
#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
enum Subsystem {
    Database = 1,
    StatusServer,
    Backend,
}
