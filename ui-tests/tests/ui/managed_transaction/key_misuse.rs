use conflictkit::{Txn, managed_transaction};

#[managed_transaction(key)]
async fn no_value(txn: &Txn, account: i64) -> Result<(), conflictkit::Error> {
    let _ = (txn, account);
    Ok(())
}

#[managed_transaction(key = 7)]
async fn literal(txn: &Txn, account: i64) -> Result<(), conflictkit::Error> {
    let _ = (txn, account);
    Ok(())
}

#[managed_transaction(key = account, key = account)]
async fn twice(txn: &Txn, account: i64) -> Result<(), conflictkit::Error> {
    let _ = (txn, account);
    Ok(())
}

fn main() {}
