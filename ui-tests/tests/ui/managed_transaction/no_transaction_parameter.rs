use conflictkit::managed_transaction;

#[managed_transaction]
async fn top_up() -> Result<(), conflictkit::Error> {
    Ok(())
}

fn main() {}
