use conflictkit::{Txn, managed_transaction};

/// Credits `amount` to `account`.
#[managed_transaction]
pub async fn top_up(txn: &Txn, account: i32, amount: i64) -> Result<i64, conflictkit::Error> {
    let balance = load(txn, account).await? + amount;
    store(txn, account, balance).await?;
    Ok(balance)
}
