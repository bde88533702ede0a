// `idempotency_key` makes a call that writes run once per key: a read-only
// call has nothing to make idempotent, and `fingerprint` / `store_errors`
// mean nothing without a key.
use conflictkit::{Txn, managed_transaction};

#[managed_transaction(read_only, idempotency_key = request_id)]
async fn balance(txn: &Txn, request_id: String) -> Result<i64, conflictkit::Error> {
    let _ = (txn, request_id);
    Ok(0)
}

#[managed_transaction(fingerprint = cents)]
async fn no_key_fingerprint(txn: &Txn, cents: i64) -> Result<i64, conflictkit::Error> {
    let _ = txn;
    Ok(cents)
}

#[managed_transaction(store_errors)]
async fn no_key_store_errors(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(idempotency_key = key, store_errors = true)]
async fn store_errors_not_a_flag(txn: &Txn, key: String) -> Result<(), conflictkit::Error> {
    let _ = (txn, key);
    Ok(())
}

fn main() {}
