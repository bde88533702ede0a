//! Compiles: every option, a `LazyLock` static resolver, an `Arc` field,
//! `crate = "..."` through a re-export, attributes and patterns kept.
#![allow(unreachable_pub)] // `pub` items, as in the program this case was

use std::sync::{Arc, LazyLock};

use conflictkit::{ConflictResolver, Txn, managed_non_retryable_transaction, managed_transaction};

mod facade {
    pub use conflictkit as ck;
}

static RESOLVER: LazyLock<ConflictResolver> = LazyLock::new(|| unreachable!("never called"));

#[managed_transaction(
    retries = 0,
    isolation = "read_committed",
    read_only,
    sqlite_mode = "deferred",
    resolver = RESOLVER,
    key = name,
    label = "pass::all",
    crate = "facade::ck"
)]
/// Docs are kept.
#[allow(clippy::needless_lifetimes)]
pub(crate) async fn all<'a, T: Clone + Send + Sync + 'a>(
    txn: &Txn,
    (a, b): (i32, i32),
    mut items: Vec<T>,
    name: &'a str,
) -> Result<(usize, &'a str), conflictkit::Error> {
    let _ = txn;
    items.truncate(usize::try_from(a + b).unwrap_or(0));
    Ok((items.len(), name))
}

struct Shared {
    resolver: Arc<ConflictResolver>,
}

impl Shared {
    #[managed_non_retryable_transaction(resolver = self.resolver)]
    async fn run(&self, _txn: &Txn, resolver: u8) -> Result<u8, conflictkit::Error> {
        Ok(resolver)
    }

    #[managed_transaction]
    async fn with_param(
        &self,
        txn: &Txn,
    ) -> Result<impl std::fmt::Debug + use<>, conflictkit::Error> {
        Ok(txn.attempt())
    }
}

fn assert_send<F: std::future::Future + Send>(_: F) {}

pub(super) fn run() {
    // Type checks only: nothing runs (there is no database here).
    if false {
        let shared = Shared {
            resolver: Arc::new(RESOLVER.clone()),
        };
        assert_send(all((1, 2), vec![1u8], "x"));
        assert_send(shared.run(1));
        assert_send(shared.with_param(&RESOLVER));
    }
}
