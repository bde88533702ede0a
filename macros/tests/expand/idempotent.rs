#[managed_transaction(idempotency_key = request_id.as_str(), label = "wallet::transfer")]
async fn transfer(
    txn: &Txn,
    request_id: String,
    from: i32,
    to: i32,
    cents: i64,
) -> Result<Receipt, WalletError> {
    move_money(txn, from, to, cents).await
}

#[managed_transaction(idempotency_key = key, fingerprint = (order, cents), store_errors)]
async fn charge(txn: &Txn, key: &str, order: u64, cents: i64) -> Result<Charge, PayError> {
    charge_card(txn, order, cents).await
}
