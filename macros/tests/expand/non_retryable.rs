#[managed_non_retryable_transaction(sqlite_mode = "exclusive")]
async fn migrate(txn: &Txn) -> Result<(), conflictkit::Error> {
    txn.execute_unprepared("CREATE TABLE account (id INTEGER PRIMARY KEY)").await?;
    Ok(())
}
