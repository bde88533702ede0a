#[managed_transaction(
    retries = 5,
    isolation = "repeatable_read",
    read_only,
    sqlite_mode = "deferred",
    contention = "off",
    label = "reports::daily"
)]
async fn daily(txn: &conflictkit::Txn, day: u32) -> Result<Vec<i64>, ReportError> {
    totals(txn, day).await
}
