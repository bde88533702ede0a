// An idempotent call stores its value as JSON and fingerprints its
// arguments: each type that cannot take part is reported on that type.
use conflictkit::{Txn, managed_transaction};

#[derive(Clone)]
struct Card {
    number: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Receipt {
    cents: i64,
}

struct Opaque;

// an argument that does not serialize
#[managed_transaction(idempotency_key = key)]
async fn pay(txn: &Txn, key: String, card: Card, cents: i64) -> Result<Receipt, conflictkit::Error> {
    let _ = (txn, card.number);
    Ok(Receipt { cents })
}

// a value that cannot be stored
#[managed_transaction(idempotency_key = key)]
async fn opaque(txn: &Txn, key: String) -> Result<Opaque, conflictkit::Error> {
    let _ = txn;
    Ok(Opaque)
}

// a key that may be absent (a key is shown as text: `Display`)
#[managed_transaction(idempotency_key = request_id)]
async fn optional_key(txn: &Txn, request_id: Option<String>) -> Result<u64, conflictkit::Error> {
    let _ = txn;
    Ok(1)
}

// `store_errors` with an error type that does not serialize
#[managed_transaction(idempotency_key = key, store_errors)]
async fn stores_unserializable(txn: &Txn, key: String) -> Result<u64, conflictkit::Error> {
    let _ = txn;
    Ok(1)
}

fn main() {}
