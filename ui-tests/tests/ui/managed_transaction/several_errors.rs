use conflictkit::{Txn, managed_transaction};

// Every problem is reported in one compile.
#[managed_transaction(retries = 1, retries = 2, flavour = "fast", isolation = "snapshot")]
fn top_up(account: i32) -> Result<(), conflictkit::Error> {
    let _ = account;
    Ok(())
}

#[managed_transaction]
struct NotAFunction;

fn main() {
    let _: Option<&Txn> = None;
}
