impl Wallet {
    #[managed_transaction(resolver = self.resolver, retries = 5)]
    pub async fn transfer(&self, txn: &Txn, from: i32, to: i32, amount: Decimal) -> Result<(), WalletError> {
        debit(txn, from, amount).await?;
        credit(txn, to, amount).await
    }
}
