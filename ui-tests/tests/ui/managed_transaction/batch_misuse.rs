use conflictkit::{Txn, managed_transaction, managed_non_retryable_transaction};

#[managed_transaction(key = account, batch)]
async fn borrowed(txn: &Txn, account: &str) -> Result<(), conflictkit::Error> {
    let _ = (txn, account);
    Ok(())
}

struct Wallet;

impl Wallet {
    #[managed_transaction(batch)]
    async fn method(&self, txn: &Txn) -> Result<(), conflictkit::Error> {
        let _ = txn;
        Ok(())
    }
}

#[managed_transaction(batch, read_only)]
async fn reads(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(batch, idempotency_key = request)]
async fn keyed(txn: &Txn, request: String) -> Result<(), conflictkit::Error> {
    let _ = (txn, request);
    Ok(())
}

#[managed_transaction(batch = 0)]
async fn zero(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(batch = "many")]
async fn words(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_non_retryable_transaction(batch)]
async fn once(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
