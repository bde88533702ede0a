use conflictkit::{Txn, managed_transaction};

#[managed_transaction]
async fn top_up(account: i32, amount: i64) -> Result<i64, conflictkit::Error> {
    Ok(i64::from(account) + amount)
}

#[managed_transaction]
async fn not_first(account: i32, txn: &Txn) -> Result<i32, conflictkit::Error> {
    let _ = txn;
    Ok(account)
}

#[managed_transaction]
async fn exclusive(txn: &mut Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction]
async fn two(txn: &Txn, other: &Txn) -> Result<(), conflictkit::Error> {
    let _ = (txn, other);
    Ok(())
}

fn main() {}
