use conflictkit::Txn;

// The transaction's type is not `Txn`.
#[conflictkit::event_listener("a", transactional)]
async fn wrong_txn(txn: &String, cents: i64) -> Result<(), conflictkit::Error> {
    let _ = (txn, cents);
    Ok(())
}

// Not `Result<(), E>`.
#[conflictkit::event_listener("b", transactional)]
async fn returns_a_number(txn: &Txn) -> i32 {
    let _ = txn;
    1
}

// An error type the resolver cannot carry a database error in.
#[conflictkit::event_listener("c", transactional)]
async fn string_error(txn: &Txn) -> Result<(), String> {
    let _ = txn;
    Ok(())
}

fn main() {}
