//! The listener's application state as handlers take it: `State<T>` of a
//! listener's state (checked at compile time for run-time handlers), and the
//! type-erased state `#[event_listener]` functions receive, with what each
//! asks for, checked when a listener starts.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use crate::resolver::ConflictResolver;

/// A listener state `Self` from which a handler's `State<T>` is taken.
#[diagnostic::on_unimplemented(
    message = "the listener's state is `{Self}`, but the handler takes `State<{T}>`",
    label = "this listener has no state of type `{T}`",
    note = "give the listener this state with `Listener::new(config).with_state(value)`, or take `State<{Self}>`"
)]
pub trait ProvidesState<T> {
    /// A clone of the state, if this is it.
    fn provide(&self) -> Option<T>;

    /// The state type to check when the listener starts.
    #[doc(hidden)]
    fn need() -> Option<StateNeed> {
        None
    }
}

impl<T: Clone> ProvidesState<T> for T {
    fn provide(&self) -> Option<T> {
        Some(self.clone())
    }
}

impl<T: Clone + Send + Sync + 'static> ProvidesState<T> for DynState {
    fn provide(&self) -> Option<T> {
        self.state.downcast_ref::<T>().cloned()
    }

    fn need() -> Option<StateNeed> {
        Some(StateNeed::of::<T>())
    }
}

/// The listener's state with its type erased, as `#[event_listener]`
/// functions receive it. Not public API. Deliberately not `Clone`, so that
/// `State<T>` never overlaps between a concrete state and this.
#[doc(hidden)]
pub struct DynState {
    state: Arc<dyn Any + Send + Sync>,
    /// What transactional handlers run their managed transaction with.
    resolver: Option<ConflictResolver>,
}

impl DynState {
    pub(crate) fn new<S: Send + Sync + 'static>(state: S) -> Self {
        DynState {
            state: Arc::new(state),
            resolver: None,
        }
    }

    /// The same state with the listener's resolver.
    pub(crate) fn with_resolver(self, resolver: ConflictResolver) -> Self {
        DynState {
            resolver: Some(resolver),
            ..self
        }
    }

    /// The same state with the resolver of `other`.
    pub(crate) fn keep_resolver(self, other: &DynState) -> Self {
        DynState {
            resolver: other.resolver.clone(),
            ..self
        }
    }

    /// Another handle on the same state (not `Clone`, see the type's docs).
    pub(crate) fn share(&self) -> Self {
        DynState {
            state: self.state.clone(),
            resolver: self.resolver.clone(),
        }
    }

    /// The listener's resolver, if it was given one.
    pub(crate) fn resolver(&self) -> Option<&ConflictResolver> {
        self.resolver.as_ref()
    }

    /// The state as `S`; a listener without state gives `()`.
    pub(crate) fn get<S: 'static>(&self) -> Option<&S> {
        self.state
            .downcast_ref::<S>()
            .or_else(|| (&() as &dyn Any).downcast_ref::<S>())
    }
}

impl fmt::Debug for DynState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynState")
    }
}

/// A state type a handler needs. Not public API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateNeed {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
}

impl StateNeed {
    /// The need of `State<T>`.
    pub fn of<T: 'static>() -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        }
    }
}
