//! Running the handlers of one accepted request in a task of their own, so
//! that a sender who disconnects (or times out) mid-request cannot cancel a
//! handler half-way: the handlers run to completion (or their timeout), and
//! the de-duplication claim is settled only then — marked handled when every
//! handler succeeded, released when one failed.

use std::borrow::Cow;
use std::time::Duration;

use serde_json::{Value, json};

use super::dedup::ClaimGuard;
use super::handler::{self, Failure, HandlerFuture};

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
    /// Every handler succeeded.
    Handled(usize),
    /// Some failed: `{"handler", "message"}` for each failure, and the total.
    Failed { failures: Vec<Value>, total: usize },
}

/// Runs `prepared` in order in a spawned task and settles `claim` when they
/// have all ended. The returned future only waits for that task: dropping it
/// (the connection closed) leaves the handlers running.
pub(crate) async fn run_detached(
    event: String,
    prepared: Vec<Prepared>,
    claim: Option<ClaimGuard>,
) -> Outcome {
    let total = prepared.len();
    let task = tokio::spawn(async move {
        let mut failures = Vec::new();
        for p in prepared {
            let result = match p.future {
                Ok(fut) => handler::run(fut, p.timeout).await,
                Err(failure) => Err(failure),
            };
            if let Err(failure) = result {
                tracing::error!(event, handler = %p.name, %failure, "event handler failed");
                failures.push(json!({"handler": p.name, "message": failure.to_string()}));
            }
        }
        if failures.is_empty() {
            if let Some(claim) = claim {
                claim.succeeded();
            }
            Outcome::Handled(total)
        } else {
            // `claim` is dropped here: released, so a retry runs the handlers again.
            Outcome::Failed { failures, total }
        }
    });
    match task.await {
        Ok(outcome) => outcome,
        // Handlers run with panics caught, so only a runtime shutting down
        // gets here.
        Err(e) => Outcome::Failed {
            failures: vec![json!({"handler": "<dispatch>", "message": e.to_string()})],
            total,
        },
    }
}
