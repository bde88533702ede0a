use conflictkit::{Txn, managed_transaction};

#[managed_transaction]
fn top_up(txn: &Txn, amount: i64) -> Result<i64, conflictkit::Error> {
    let _ = txn;
    Ok(amount)
}

fn main() {}
