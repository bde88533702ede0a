// A SeaORM user's first guess for the error type: it cannot hold the give-up.
use conflictkit::{ConflictResolver, Txn, managed_transaction};

#[managed_transaction]
async fn top_up(txn: &Txn, id: i32) -> Result<i32, sea_orm::DbErr> {
    let _ = txn;
    Ok(id)
}

#[derive(Debug)]
struct MyError;

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mine")
    }
}

impl std::error::Error for MyError {}

impl From<sea_orm::DbErr> for MyError {
    fn from(_: sea_orm::DbErr) -> Self {
        MyError
    }
}

// An own error enum without `#[from] CannotResolveDatabaseConflict`.
#[managed_transaction]
async fn withdraw(txn: &Txn, id: i32) -> Result<i32, MyError> {
    let _ = txn;
    Ok(id)
}

async fn caller(resolver: &ConflictResolver) {
    let _ = top_up(resolver, 1).await;
    let _ = withdraw(resolver, 1).await;
}

fn main() {
    let _ = caller;
}
