use conflictkit::Txn;

// The transaction taken as `&mut Txn`.
#[conflictkit::event_listener("a", transactional)]
async fn exclusive(txn: &mut Txn, cents: i64) -> Result<(), conflictkit::Error> {
    let _ = (txn, cents);
    Ok(())
}

fn main() {}
