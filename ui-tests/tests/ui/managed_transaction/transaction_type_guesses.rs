// A newcomer's guesses for the transaction parameter.
use conflictkit::{Txn, managed_transaction};

#[managed_transaction]
async fn by_value(txn: Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction]
async fn seaorm_transaction(txn: &sea_orm::DatabaseTransaction) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction]
async fn connection(db: &sea_orm::DatabaseConnection) -> Result<(), conflictkit::Error> {
    let _ = db;
    Ok(())
}

fn main() {}
