use conflictkit::{Txn, managed_transaction};

#[managed_transaction]
const fn constant(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction]
async unsafe fn dangerous(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
