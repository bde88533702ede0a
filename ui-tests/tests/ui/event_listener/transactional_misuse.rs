use conflictkit::Txn;

// `&Txn` without `transactional`.
#[conflictkit::event_listener("a")]
async fn takes_txn(txn: &Txn, cents: i64) -> Result<(), conflictkit::Error> {
    let _ = (txn, cents);
    Ok(())
}

// `transactional` without the transaction.
#[conflictkit::event_listener("b", transactional)]
async fn no_txn(cents: i64) -> Result<(), conflictkit::Error> {
    let _ = cents;
    Ok(())
}

// `transactional` with no parameter at all.
#[conflictkit::event_listener("c", transactional)]
async fn nothing() -> Result<(), conflictkit::Error> {
    Ok(())
}

// A blocking transactional handler.
#[conflictkit::event_listener("d", transactional)]
fn blocking(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

// No return type.
#[conflictkit::event_listener("e", transactional)]
async fn returns_nothing(txn: &Txn) {
    let _ = txn;
}

// `transactional` with a value, and twice.
#[conflictkit::event_listener("f", transactional = true)]
async fn valued(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[conflictkit::event_listener("g", transactional, transactional)]
async fn twice(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
