//! Transactional handlers: `#[event_listener("deposit", transactional)]`
//! functions whose first parameter is the managed transaction (`&Txn`). The
//! listener runs each delivery in a managed transaction of its resolver
//! ([`Listener::with_resolver`](crate::events::Listener::with_resolver)) that first
//! records the delivery's `webhook-id` in the inbox
//! ([`first_delivery`](crate::events::first_delivery)) with the handler's name as the
//! consumer, then runs the handler: the inbox row and the handler's writes
//! commit together, or not at all, and a delivery this handler already
//! recorded (here, in another process, before a restart) runs nothing. Each
//! transactional handler of an event records the delivery on its own, so
//! each applies it once; the reply is 200 `{"status": "duplicate"}` only
//! when every handler of the event had applied it before.
//!
//! A `webhook-id` longer than the inbox holds
//! ([`MAX_WEBHOOK_ID_CHARS`](crate::events::MAX_WEBHOOK_ID_CHARS)) is refused before
//! anything runs (400 `webhook_id_too_long`).
//!
//! The handler's parameters are produced again on every run of the
//! transaction (a conflict replays it), so they need not be `Clone`.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sea_orm::DbErr;

use super::extract::Event;
use super::extract::{EventContext, ExtractError};
use super::handler::{HandlerFuture, Ran};
use super::state::DynState;
use crate::events::durable::inbox::{MAX_WEBHOOK_ID_CHARS, first_delivery};
use crate::resolver::{CallOptions, CannotResolveDatabaseConflict, Txn};

/// The future of one run of a transactional handler, borrowing the
/// transaction. Not public API.
#[doc(hidden)]
pub type TxnFuture<'t, E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send + 't>>;

/// One run of a transactional handler: its parameters produced from the
/// delivery, then its future. What `#[event_listener(transactional)]`
/// generates. Not public API.
#[doc(hidden)]
pub type TxnAttempt<E> =
    for<'t> fn(&'t Txn, &Event, &EventContext, &DynState) -> Result<TxnFuture<'t, E>, ExtractError>;

/// What a transactional handler returns: `Result<(), E>`, `E` the error of
/// its managed transaction. Not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a transactional event handler returns `Result<(), E>`, not `{Self}`",
    label = "not `Result<(), E>`",
    note = "`E` is the managed transaction's error, e.g. `conflictkit::Error`: it implements `From<sea_orm::DbErr>` and `From<CannotResolveDatabaseConflict>`"
)]
pub trait TxnOutput {
    /// The error type.
    type Error;
}

impl<E> TxnOutput for Result<(), E> {
    type Error = E;
}

/// Prepares a transactional handler for one delivery: checks that the
/// delivery has a `webhook-id` and the listener a resolver, and returns the
/// future that runs the managed transaction. Not public API.
#[doc(hidden)]
pub fn prepare_transactional<E>(
    handler: &'static str,
    event: &Event,
    context: &EventContext,
    state: &DynState,
    attempt: TxnAttempt<E>,
) -> Result<HandlerFuture, ExtractError>
where
    E: From<DbErr> + From<CannotResolveDatabaseConflict> + StdError + Send + Sync + 'static,
{
    let Some(id) = context.webhook_id().map(Arc::<str>::from) else {
        return Err(ExtractError::MissingWebhookId { handler });
    };
    let length = id.chars().count();
    if length > MAX_WEBHOOK_ID_CHARS {
        return Err(ExtractError::WebhookIdTooLong {
            handler,
            length,
            limit: MAX_WEBHOOK_ID_CHARS,
        });
    }
    let Some(resolver) = state.resolver().cloned() else {
        return Err(ExtractError::MissingResolver { handler });
    };
    let (event, context, state) = (event.clone(), context.clone(), state.share());
    Ok(Box::pin(async move {
        let applied = resolver
            .run(CallOptions::new(handler), |txn: &Txn| {
                let (id, event, context, state) = (&id, &event, &context, &state);
                Box::pin(async move {
                    if !first_delivery(txn, id, event.name(), handler).await? {
                        return Ok(false);
                    }
                    // The parameters decoded before the first run; only a
                    // custom `FromEvent` can fail here.
                    let run = attempt(txn, event, context, state)
                        .map_err(|e| E::from(DbErr::Custom(e.to_string())))?;
                    run.await?;
                    Ok::<_, E>(true)
                })
            })
            .await
            .map_err(|e| error_chain(&e))?;
        if applied {
            Ok(Ran::Applied)
        } else {
            tracing::info!(webhook_id = %id, handler, "delivery already in the inbox; not applied again");
            Ok(Ran::AlreadyApplied)
        }
    }))
}

/// The error and its sources, as the listener reports a failed handler.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
