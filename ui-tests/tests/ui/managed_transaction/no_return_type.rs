use conflictkit::{Txn, managed_transaction};

#[managed_transaction]
async fn fire_and_forget(txn: &Txn) {
    let _ = txn;
}

fn main() {}
