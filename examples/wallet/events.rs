//! Deposits arrive as `txupdate` events, the cryptoassets.core way: an HTTP
//! POST to the event listener. The handler credits them through a managed
//! transaction; a replayed notification (same `webhook-id`) is dropped by the
//! listener, and the same `txid` twice is not credited twice by the handler.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use conflictkit::ConflictResolver;
use conflictkit::event_listener;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bank::{WalletError, credit_deposit};

/// The resolver the event handler uses (set once at start-up).
pub static RESOLVER: OnceLock<ConflictResolver> = OnceLock::new();
/// How many times the handler ran, and how many deposits it credited.
pub static HANDLED: AtomicU32 = AtomicU32::new(0);
pub static CREDITED: AtomicU32 = AtomicU32::new(0);

/// The original's `txupdate` payload (amount as a decimal string).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxUpdate {
    pub transaction: i64,
    pub network_transaction: i64,
    pub txid: String,
    pub account: i32,
    pub address: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub confirmations: u32,
}

/// Errors of the event handler.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the wallet is not started: no resolver")]
    NotStarted,
    #[error("amount {0} is not a whole number of cents")]
    BadAmount(Decimal),
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

#[event_listener("txupdate")]
async fn on_txupdate(update: TxUpdate) -> Result<(), HandlerError> {
    HANDLED.fetch_add(1, Ordering::SeqCst);
    let resolver = RESOLVER.get().ok_or(HandlerError::NotStarted)?;
    let cents = (update.amount * Decimal::ONE_HUNDRED)
        .normalize()
        .try_into()
        .ok()
        .filter(|c: &i64| Decimal::from(*c) == update.amount * Decimal::ONE_HUNDRED)
        .ok_or(HandlerError::BadAmount(update.amount))?;
    if credit_deposit(resolver, update.account, cents, &update.txid).await? {
        CREDITED.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}
