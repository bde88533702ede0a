#[managed_transaction(deferrable, retries = 0, label = "reports::audit")]
async fn audit(txn: &conflictkit::Txn) -> Result<i64, conflictkit::Error> {
    total(txn).await
}
