//! Deposits arrive as `txupdate` events, the cryptoassets.core way: an HTTP
//! POST to the event listener. The handler is *transactional*: the listener
//! runs it in a managed transaction that also records the delivery's
//! `webhook-id` in the inbox, so a replayed delivery (same `webhook-id`) is
//! applied once even across processes and restarts; the same `txid` under
//! another id is not credited twice either (the ledger says so).
//!
//! Crediting publishes a `deposit_credited` notification to the outbox in the
//! same transaction; the outbox relay delivers it, here back to this
//! listener's `on_deposit_credited`.
//!
//! The handlers take the application state (the resolver and counters) as a
//! `State<DepositState>` parameter: the listener is given it with
//! `Listener::with_state`, so there is no global to set at start-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use conflictkit::event_listener;
use conflictkit::events::{EventContext, State};
use conflictkit::{CannotResolveDatabaseConflict, ConflictResolver, Txn};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bank::{WalletError, credit_deposit};

/// What the deposit handler needs: the resolver, and counters (each counted
/// after its transaction committed) of the deliveries applied, the deposits
/// credited and the notifications received.
#[derive(Clone)]
pub struct DepositState {
    pub resolver: ConflictResolver,
    pub handled: Arc<AtomicU32>,
    pub credited: Arc<AtomicU32>,
    pub notified: Arc<AtomicU32>,
}

impl DepositState {
    pub fn new(resolver: ConflictResolver) -> Self {
        Self {
            resolver,
            handled: Arc::default(),
            credited: Arc::default(),
            notified: Arc::default(),
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
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Unresolved(#[from] CannotResolveDatabaseConflict),
}

/// Runs in the listener's managed transaction, after the delivery's inbox
/// row: a delivery already applied never gets here.
#[event_listener("txupdate", transactional)]
async fn on_txupdate(
    txn: &Txn,
    State(state): State<DepositState>,
    ctx: EventContext,
    update: TxUpdate,
) -> Result<(), HandlerError> {
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
    // Through the listener's resolver, inside its transaction: the call
    // joins it (one transaction, replayed as a whole on a conflict).
    let credited = credit_deposit(&state.resolver, update.account, cents, &update.txid).await?;
    txn.after_commit(move || {
        state.handled.fetch_add(1, Ordering::SeqCst);
        if credited {
            state.credited.fetch_add(1, Ordering::SeqCst);
        }
    });
    Ok(())
}

/// The outbox's `deposit_credited` notifications, delivered by the relay.
#[event_listener("deposit_credited")]
async fn on_deposit_credited(State(state): State<DepositState>, ctx: EventContext) {
    tracing::debug!(
        webhook_id = ctx.webhook_id(),
        "deposit notification delivered"
    );
    state.notified.fetch_add(1, Ordering::SeqCst);
}
