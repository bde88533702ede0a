//! Deposits arrive as `txupdate` events, the cryptoassets.core way: an HTTP
//! POST to the event listener. The handler credits them through a managed
//! transaction; a replayed notification (same `webhook-id`) is dropped by the
//! listener, and the same `txid` twice is not credited twice by the handler.
//!
//! The handler takes the application state (the resolver and counters) as a
//! `State<DepositState>` parameter: the listener is given it with
//! `Listener::with_state`, so there is no global to set at start-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use conflictkit::ConflictResolver;
use conflictkit::event_listener;
use conflictkit::events::{EventContext, State};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bank::{WalletError, credit_deposit};

/// What the deposit handler needs: the resolver, and counters of how many
/// times it ran and how many deposits it credited.
#[derive(Clone)]
pub struct DepositState {
    pub resolver: ConflictResolver,
    pub handled: Arc<AtomicU32>,
    pub credited: Arc<AtomicU32>,
}

impl DepositState {
    pub fn new(resolver: ConflictResolver) -> Self {
        Self {
            resolver,
            handled: Arc::default(),
            credited: Arc::default(),
        }
    }
}

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
    #[error("amount {0} is not a whole number of cents")]
    BadAmount(Decimal),
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

#[event_listener("txupdate")]
async fn on_txupdate(
    State(state): State<DepositState>,
    ctx: EventContext,
    update: TxUpdate,
) -> Result<(), HandlerError> {
    state.handled.fetch_add(1, Ordering::SeqCst);
    tracing::debug!(
        webhook_id = ctx.webhook_id(),
        attempt = ctx.attempt(),
        txid = update.txid,
        "deposit notification"
    );
    let cents = (update.amount * Decimal::ONE_HUNDRED)
        .normalize()
        .try_into()
        .ok()
        .filter(|c: &i64| Decimal::from(*c) == update.amount * Decimal::ONE_HUNDRED)
        .ok_or(HandlerError::BadAmount(update.amount))?;
    if credit_deposit(&state.resolver, update.account, cents, &update.txid).await? {
        state.credited.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}
