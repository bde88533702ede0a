use conflictkit::{Txn, managed_transaction};

#[derive(Clone)]
struct Account {
    id: i64,
}

#[managed_transaction(key = account)]
async fn top_up(txn: &Txn, account: Account) -> Result<(), conflictkit::Error> {
    let _ = (txn, account.id);
    Ok(())
}

fn main() {}
