//! Running the handlers of one accepted request so that a sender who
//! disconnects (or times out) mid-request cannot cancel a handler half-way:
//! the handlers run to completion (or their timeout), in a task of their own
//! once the request is gone, and
//! the de-duplication claim is settled only then — marked handled when every
//! handler succeeded, released when one failed. The run also holds the
//! request's connection place ([`Slot`]) until it ends, so detached handlers
//! count against the listener's connection cap.
//!
//! A sync handler past its timeout is answered 500 at the timeout but keeps
//! running on its thread (nothing can stop it): the claim and the place are
//! then held until it returns, so a retry of the delivery waits for it
//! instead of running the handler beside it, and the reply closes the
//! connection.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::{Value, json};

use super::dedup::ClaimGuard;
use super::slot::Slot;
use crate::events::handlers::handler::{BlockingTasks, Failure, HandlerFuture, Ran};

/// One handler ready to run: its name, time limit and prepared future (or
/// why it could not be prepared).
pub(crate) struct Prepared {
    pub(crate) name: Cow<'static, str>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) future: Result<HandlerFuture, Failure>,
}

/// What running the handlers of a request came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every handler succeeded: how many there were, and how many of them
    /// found the delivery already applied (transactional handlers whose
    /// inbox had it) and ran nothing.
    Handled {
        handlers: usize,
        already_applied: usize,
    },
    /// Some failed: `{"handler", "message"}` for each failure, and the total;
    /// `still_running` when a sync handler past its timeout still runs (the
    /// delivery stays claimed until it returns).
    Failed {
        failures: Vec<Value>,
        total: usize,
        still_running: bool,
    },
}

/// Runs `prepared` in order and settles `claim` when they have all ended.
/// The handlers run inline, in the request's own task (no hand-off to another
/// task on the fast path); if the request's future is dropped before they end
/// (the connection closed), what is left of them is moved to a task of its
/// own and runs to completion there, holding the connection's `slot` till
/// then.
pub(crate) async fn run_detached(
    event: String,
    prepared: Vec<Prepared>,
    claim: Option<ClaimGuard>,
    slot: Option<Slot>,
) -> Outcome {
    RunToCompletion(Some(Box::pin(run(event, prepared, claim, slot)))).await
}

async fn run(
    event: String,
    prepared: Vec<Prepared>,
    claim: Option<ClaimGuard>,
    slot: Option<Slot>,
) -> Outcome {
    let total = prepared.len();
    let mut failures = Vec::new();
    let mut already_applied = 0;
    let blocking = BlockingTasks::new();
    for p in prepared {
        let result = match p.future {
            Ok(fut) => blocking.run(fut, p.timeout).await,
            Err(failure) => Err(failure),
        };
        match result {
            Ok(Ran::Applied) => {}
            Ok(Ran::AlreadyApplied) => already_applied += 1,
            Err(failure) => {
                tracing::error!(event, handler = %p.name, %failure, "event handler failed");
                failures.push(json!({"handler": p.name, "message": failure.to_string()}));
            }
        }
    }
    let still_running = blocking.still_running();
    let succeeded = failures.is_empty();
    let outcome = if succeeded {
        Outcome::Handled {
            handlers: total,
            already_applied,
        }
    } else {
        Outcome::Failed {
            failures,
            total,
            still_running: still_running.is_some(),
        }
    };
    // Marked handled when every handler succeeded; else released (dropped),
    // so a retry runs the handlers again. The connection's place goes too.
    let settle = move || {
        if succeeded && let Some(claim) = claim {
            claim.succeeded();
        }
        drop(slot);
    };
    match still_running {
        None => settle(),
        Some(ended) => {
            tracing::warn!(
                event,
                "a sync handler still runs past its timeout: its delivery stays claimed (a retry waits) until it returns"
            );
            tokio::spawn(async move {
                ended.await;
                tracing::info!(event, "the sync handler past its timeout returned");
                settle();
            });
        }
    }
    outcome
}

/// A future that, dropped before it is done, spawns the rest of itself.
struct RunToCompletion(Option<Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>>);

impl Future for RunToCompletion {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let Some(fut) = self.0.as_mut() else {
            // Polled after completion: never done by `run_detached`.
            return Poll::Pending;
        };
        match fut.as_mut().poll(cx) {
            Poll::Ready(outcome) => {
                self.0 = None;
                Poll::Ready(outcome)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for RunToCompletion {
    fn drop(&mut self) {
        let Some(rest) = self.0.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                tracing::debug!("request dropped while its handlers run; they continue");
                runtime.spawn(async move {
                    let _ = rest.await;
                });
            }
            // Only while the runtime itself shuts down.
            Err(_) => tracing::warn!(
                "request dropped while its handlers run, outside a runtime: they are cancelled"
            ),
        }
    }
}
