use conflictkit::{ConflictResolver, Txn, managed_transaction};

#[managed_transaction(retry = 3)]
async fn top_up(txn: &Txn, amount: i64) -> Result<i64, conflictkit::Error> {
    let _ = txn;
    Ok(amount)
}

#[managed_transaction(serializable)]
async fn bare_value(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(retries)]
async fn missing_value(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

// The functions are still rewritten, so callers see no further errors.
async fn caller(resolver: &ConflictResolver) -> Result<(), conflictkit::Error> {
    top_up(resolver, 1).await?;
    bare_value(resolver).await?;
    missing_value(resolver).await
}

fn main() {
    let _ = caller;
}
