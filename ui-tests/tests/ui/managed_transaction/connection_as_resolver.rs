// The database connection where the resolver goes.
use conflictkit::{Txn, managed_transaction};

#[managed_transaction]
async fn top_up(txn: &Txn, id: i32) -> Result<i32, conflictkit::Error> {
    let _ = txn;
    Ok(id)
}

async fn caller(db: sea_orm::DatabaseConnection) {
    let _ = top_up(&db, 1).await;
}

fn main() {
    let _ = caller;
}
