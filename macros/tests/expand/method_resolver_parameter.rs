impl<S: Store + Sync> Ledger<S> {
    /// The resolver comes from the caller.
    #[managed_transaction]
    async fn total(&self, txn: &Txn) -> Result<i64, conflictkit::Error> {
        self.store.sum(txn).await
    }
}
