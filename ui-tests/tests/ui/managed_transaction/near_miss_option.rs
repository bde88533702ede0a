// Near misses of option names get "did you mean".
use conflictkit::{ConflictResolver, Txn, managed_transaction};

#[managed_transaction(readonly, isolaton = "serializable")]
async fn report(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_non_retryable_transaction(lable = "wallet::audit")]
async fn audit(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

use conflictkit::managed_non_retryable_transaction;

// The functions are still rewritten, so callers see no further errors.
async fn caller(resolver: &ConflictResolver) -> Result<(), conflictkit::Error> {
    report(resolver).await?;
    audit(resolver).await
}

fn main() {
    let _ = caller;
}
