//! Metrics of the events wing, through the [`metrics`](https://docs.rs/metrics)
//! facade, like the resolver's (`resolver::metrics`): with the `metrics`
//! feature off, each function is an empty `#[inline]` one and nothing is
//! recorded; the application installs the exporter. Durations in seconds.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `http.server.request.duration` | histogram | `http.response.status_code` | an event request, from its headers to the reply (OpenTelemetry's HTTP server metric) |
//! | `conflictkit.events.requests` | counter | `http.response.status_code` | event requests answered, by status |
//! | `conflictkit.events.duplicates` | counter | `source` | deliveries not applied again: `listener` (a `webhook-id` it remembered) or `inbox` (every transactional handler had applied it) |
//! | `conflictkit.events.relay.attempts` | counter | `outcome` | outbox deliveries tried by a relay: `delivered`, `retry` (failed, retried later), `given_up` |
//! | `conflictkit.events.outbox.pending` | gauge | | outbox events not yet delivered nor given up, sampled by a running relay after each round |
//! | `conflictkit.events.outbox.failed` | gauge | | outbox events given up (waiting for `requeue`) |
//! | `conflictkit.events.outbox.oldest_pending_age` | gauge | | seconds since the oldest pending event was published (0: none pending) |

use std::time::Duration;

/// Why a delivery was not applied again (the `source` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Duplicate {
    /// The listener remembered the `webhook-id`.
    Listener,
    /// Every transactional handler found it in its inbox.
    Inbox,
}

/// What became of one delivery attempt of the relay (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    Delivered,
    Retry,
    GivenUp,
}

#[cfg(feature = "metrics")]
mod on {
    use super::*;
    use crate::events::Backlog;
    use metrics::{counter, gauge, histogram};

    pub(crate) fn request(status: u16, took: Duration) {
        let status = status.to_string();
        counter!("conflictkit.events.requests", "http.response.status_code" => status.clone())
            .increment(1);
        histogram!("http.server.request.duration", "http.response.status_code" => status)
            .record(took);
    }

    pub(crate) fn duplicate(source: Duplicate) {
        let source = match source {
            Duplicate::Listener => "listener",
            Duplicate::Inbox => "inbox",
        };
        counter!("conflictkit.events.duplicates", "source" => source).increment(1);
    }

    pub(crate) fn relay_attempt(outcome: Attempt) {
        let outcome = match outcome {
            Attempt::Delivered => "delivered",
            Attempt::Retry => "retry",
            Attempt::GivenUp => "given_up",
        };
        counter!("conflictkit.events.relay.attempts", "outcome" => outcome).increment(1);
    }

    pub(crate) fn outbox_backlog(backlog: Backlog) {
        gauge!("conflictkit.events.outbox.pending").set(backlog.pending as f64);
        gauge!("conflictkit.events.outbox.failed").set(backlog.failed as f64);
        gauge!("conflictkit.events.outbox.oldest_pending_age")
            .set(backlog.oldest_pending.map_or(0.0, |age| age.as_secs_f64()));
    }

    /// Whether a running relay samples the backlog after each round (one
    /// `COUNT` query): only when metrics are recorded.
    pub(crate) const SAMPLE_BACKLOG: bool = true;
}

#[cfg(feature = "metrics")]
pub(crate) use on::*;

#[cfg(not(feature = "metrics"))]
mod off {
    use super::*;
    use crate::events::Backlog;

    #[inline]
    pub(crate) fn request(_: u16, _: Duration) {}

    #[inline]
    pub(crate) fn duplicate(_: Duplicate) {}

    #[inline]
    pub(crate) fn relay_attempt(_: Attempt) {}

    #[inline]
    pub(crate) fn outbox_backlog(_: Backlog) {}

    pub(crate) const SAMPLE_BACKLOG: bool = false;
}

#[cfg(not(feature = "metrics"))]
pub(crate) use off::*;
