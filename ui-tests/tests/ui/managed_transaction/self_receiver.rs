use conflictkit::{ConflictResolver, Txn, managed_transaction};

struct Wallet {
    resolver: ConflictResolver,
}

impl Wallet {
    #[managed_transaction(resolver = self.resolver)]
    async fn only_self(&self) -> Result<(), conflictkit::Error> {
        Ok(())
    }

    #[managed_non_retryable_transaction]
    async fn by_value(self, txn: &Txn) -> Result<(), conflictkit::Error> {
        let _ = txn;
        Ok(())
    }

    #[managed_transaction(resolver = self.resolver)]
    async fn exclusive(&mut self, txn: &Txn) -> Result<(), conflictkit::Error> {
        let _ = txn;
        Ok(())
    }
}

struct Other;

impl Other {
    #[managed_transaction]
    async fn typed(self: &Txn) -> Result<(), conflictkit::Error> {
        Ok(())
    }
}

use conflictkit::managed_non_retryable_transaction;

fn main() {}
