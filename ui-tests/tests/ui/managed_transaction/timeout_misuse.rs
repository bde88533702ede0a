// `timeout` takes a whole number and a unit, longer than zero and at most an hour.
use conflictkit::{Txn, managed_transaction};

#[managed_transaction(timeout = "2x")]
async fn unknown_unit(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(timeout = "0ms")]
async fn zero(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(timeout = "2h")]
async fn too_long(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(timeout = 2)]
async fn not_a_string(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
