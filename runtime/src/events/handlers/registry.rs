//! Handler registry: handlers registered by `#[event_listener]` (collected
//! process-wide through `inventory`) and handlers added at run time with
//! [`Listener::on`](crate::events::Listener::on) and friends.

use std::any::TypeId;
use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::extract::Event;
use super::extract::{EventContext, ExtractError};
use super::handler::{Handler, HandlerFuture};
use super::state::{DynState, StateNeed};

/// The prepare function `#[event_listener]` generates for a handler.
pub type PrepareFn = fn(&Event, &EventContext, &DynState) -> Result<HandlerFuture, ExtractError>;

/// What one parameter of an `#[event_listener]` function needs of the state.
pub type NeedFn = fn() -> Option<StateNeed>;

/// One `#[event_listener]` handler, submitted to `inventory` by the macro.
///
/// Not meant to be built by hand; the macro does it.
#[derive(Debug)]
pub struct Registration {
    event: Option<&'static str>,
    name: &'static str,
    timeout_ms: Option<u64>,
    prepare: PrepareFn,
    needs: &'static [NeedFn],
    transactional: bool,
}

impl Registration {
    /// A registration for `event` (`None` = every event) handled by the
    /// function called `name`, with an optional timeout in milliseconds; the
    /// parameters' state needs are checked when a listener starts.
    pub const fn new(
        event: Option<&'static str>,
        name: &'static str,
        timeout_ms: Option<u64>,
        prepare: PrepareFn,
        needs: &'static [NeedFn],
    ) -> Self {
        Self {
            event,
            name,
            timeout_ms,
            prepare,
            needs,
            transactional: false,
        }
    }

    /// The same registration, for a handler that runs in a managed
    /// transaction (the listener must have a resolver).
    pub const fn transactional(self) -> Self {
        Self {
            transactional: true,
            ..self
        }
    }

    fn to_handler(&self) -> Handler {
        Handler {
            name: Cow::Borrowed(self.name),
            event: self.event.map(Cow::Borrowed),
            timeout: self.timeout_ms.map(Duration::from_millis),
            prepare: Arc::new(self.prepare),
            needs: self.needs.iter().filter_map(|need| need()).collect(),
            transactional: self.transactional,
        }
    }
}

inventory::collect!(Registration);

/// Every `#[event_listener]` handler linked into this program, as
/// `(event name or None for every event, function path)`.
///
/// Their order is unspecified.
pub fn registered_handlers() -> Vec<(Option<&'static str>, &'static str)> {
    inventory::iter::<Registration>
        .into_iter()
        .map(|r| (r.event, r.name))
        .collect()
}

/// The handlers one listener dispatches to.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    registered: Vec<Handler>,
    runtime: RwLock<Vec<Handler>>,
}

impl Registry {
    /// A registry with (or without) the `#[event_listener]` handlers.
    pub(crate) fn new(include_registered: bool) -> Self {
        let registered = if include_registered {
            inventory::iter::<Registration>
                .into_iter()
                .map(Registration::to_handler)
                .collect()
        } else {
            Vec::new()
        };
        Self {
            registered,
            runtime: RwLock::new(Vec::new()),
        }
    }

    pub(crate) fn add(&self, handler: Handler) {
        self.runtime
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(handler);
    }

    /// The first handler needing a state type other than `provided`.
    pub(crate) fn missing_state(&self, provided: TypeId) -> Option<(Handler, StateNeed)> {
        let runtime = self.runtime.read().unwrap_or_else(|e| e.into_inner());
        self.registered.iter().chain(runtime.iter()).find_map(|h| {
            h.needs
                .iter()
                .find(|need| need.type_id != provided)
                .map(|need| (h.clone(), *need))
        })
    }

    /// The first transactional handler, if any.
    pub(crate) fn first_transactional(&self) -> Option<Handler> {
        let runtime = self.runtime.read().unwrap_or_else(|e| e.into_inner());
        self.registered
            .iter()
            .chain(runtime.iter())
            .find(|h| h.transactional)
            .cloned()
    }

    /// The handlers for `event`: `#[event_listener]` ones first, then run-time
    /// ones in registration order.
    pub(crate) fn handlers_for(&self, event: &str) -> Vec<Handler> {
        let matches = |h: &&Handler| h.event.as_deref().is_none_or(|e| e == event);
        let runtime = self.runtime.read().unwrap_or_else(|e| e.into_inner());
        self.registered
            .iter()
            .filter(matches)
            .chain(runtime.iter().filter(matches))
            .cloned()
            .collect()
    }
}
