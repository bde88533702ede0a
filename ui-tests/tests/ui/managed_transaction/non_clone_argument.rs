use conflictkit::{Txn, managed_transaction};

struct Ticket {
    id: u64,
}

#[managed_transaction]
async fn redeem(txn: &Txn, ticket: Ticket, note: &str) -> Result<u64, conflictkit::Error> {
    let _ = (txn, note);
    Ok(ticket.id)
}

#[managed_transaction]
async fn append(txn: &Txn, log: &mut Vec<u64>) -> Result<(), conflictkit::Error> {
    let _ = txn;
    log.push(1);
    Ok(())
}

fn main() {}
