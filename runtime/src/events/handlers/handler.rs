//! Event handlers: the type-erased form the dispatcher runs, the conversions
//! from user functions (sync or async, typed or every-event), and the outcome
//! of running one.
//!
//! A handler runs in two steps. *Prepare* decodes the event's data into the
//! handler's type (a failure is the sender's fault: 400) and returns a future;
//! *run* awaits it with panics caught and an optional timeout (a failure is
//! the receiver's fault: 500). Every handler of an event is prepared before
//! any runs, so a 400 means nothing ran.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::mpsc;

use super::extract::{Event, EventContext, ExtractError};
use super::state::{DynState, StateNeed};
use crate::panic::panic_message;
use serde_json::Value;

/// The future a prepared handler returns: `Err` carries the failure message.
/// Not public API.
#[doc(hidden)]
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Ran, String>> + Send + 'static>>;

/// How a handler that did not fail ended. Not public API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// It ran.
    Applied,
    /// A transactional handler found the delivery in its inbox: it was
    /// applied before (here, in another process, before a restart) and ran
    /// nothing now.
    AlreadyApplied,
}

/// What a handler may return: `()` or `Result<(), E>` with `E: Display`.
#[diagnostic::on_unimplemented(
    message = "event handlers must return `()` or `Result<(), E>` where `E: Display`, not `{Self}`",
    label = "`{Self}` is not `()` or `Result<(), impl Display>`"
)]
pub trait IntoHandlerResult {
    /// Converts the return value; `Err` carries the failure's message.
    fn into_handler_result(self) -> Result<(), String>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// The type-erased prepare step of a handler: produces its parameters from
/// the delivery and the listener's state, and returns the future of the call.
pub(crate) type Prepare =
    dyn Fn(&Event, &EventContext, &DynState) -> Result<HandlerFuture, ExtractError> + Send + Sync;

/// A registered handler.
#[derive(Clone)]
pub(crate) struct Handler {
    /// Names the handler in logs and 500 replies (function path or closure type).
    pub(crate) name: Cow<'static, str>,
    /// The event it handles; `None` = every event.
    pub(crate) event: Option<Cow<'static, str>>,
    /// Overrides the listener's handler timeout.
    pub(crate) timeout: Option<Duration>,
    pub(crate) prepare: Arc<Prepare>,
    /// State types it needs that only a started listener can check.
    pub(crate) needs: Vec<StateNeed>,
    /// It runs in a managed transaction: the listener needs a resolver.
    pub(crate) transactional: bool,
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.name)
            .field("event", &self.event)
            .field("timeout", &self.timeout)
            .field("transactional", &self.transactional)
            .finish_non_exhaustive()
    }
}

/// Why one handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    Returned(String),
    Panicked(String),
    TimedOut(Duration),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Returned(msg) => write!(f, "returned an error: {msg}"),
            Failure::Panicked(msg) => write!(f, "panicked: {msg}"),
            Failure::TimedOut(d) => write!(f, "did not finish within {} ms", d.as_millis()),
        }
    }
}

impl Handler {
    /// Prepare step with panics caught (a panicking `Deserialize` impl is a
    /// handler failure, not a crash).
    pub(crate) fn prepare(
        &self,
        event: &Event,
        context: &EventContext,
        state: &DynState,
    ) -> Result<Result<HandlerFuture, ExtractError>, Failure> {
        std::panic::catch_unwind(AssertUnwindSafe(|| (self.prepare)(event, context, state)))
            .map_err(|p| Failure::Panicked(panic_message(&*p)))
    }
}

/// Runs a prepared handler future with panics caught and an optional timeout.
pub(crate) async fn run(fut: HandlerFuture, timeout: Option<Duration>) -> Result<Ran, Failure> {
    let caught = AssertUnwindSafe(fut).catch_unwind();
    let outcome = match timeout {
        Some(limit) => match tokio::time::timeout(limit, caught).await {
            Ok(outcome) => outcome,
            Err(_) => return Err(Failure::TimedOut(limit)),
        },
        None => caught.await,
    };
    match outcome {
        Ok(Ok(ran)) => Ok(ran),
        Ok(Err(msg)) => Err(Failure::Returned(msg)),
        Err(panic) => Err(Failure::Panicked(panic_message(&*panic))),
    }
}

tokio::task_local! {
    /// Set while [`BlockingTasks::run`] runs a handler: what its blocking
    /// task holds until it really ends.
    static STILL_RUNNING: StillRunning;
}

/// Held by a sync handler's blocking task until it returns. A timeout drops
/// the handler's future, not the thread running it.
#[derive(Clone, Debug)]
struct StillRunning {
    _ended_when_dropped: mpsc::Sender<Infallible>,
}

/// The blocking tasks of the sync handlers of one request that may outlive
/// their futures (past their timeout), so that the request's delivery is
/// settled only once they have all ended.
#[derive(Debug)]
pub(crate) struct BlockingTasks {
    running: StillRunning,
    ended: mpsc::Receiver<Infallible>,
}

impl BlockingTasks {
    pub(crate) fn new() -> Self {
        // Nothing is ever sent: the channel closes when the last holder ends.
        let (running, ended) = mpsc::channel(1);
        Self {
            running: StillRunning {
                _ended_when_dropped: running,
            },
            ended,
        }
    }

    /// [`run`]s `fut`, the blocking task it starts (a sync handler's) tracked.
    pub(crate) async fn run(
        &self,
        fut: HandlerFuture,
        timeout: Option<Duration>,
    ) -> Result<Ran, Failure> {
        STILL_RUNNING
            .scope(self.running.clone(), run(fut, timeout))
            .await
    }

    /// `None` when every blocking task has ended; else a future that ends
    /// when they have.
    pub(crate) fn still_running(self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let Self { running, mut ended } = self;
        drop(running);
        match ended.try_recv() {
            Err(mpsc::error::TryRecvError::Empty) => Some(async move {
                let _ = ended.recv().await;
            }),
            _ => None,
        }
    }
}

/// Sync handlers run on tokio's blocking pool so they never stall the server;
/// a panic is re-raised in the future so [`run`] catches it. Run by
/// [`BlockingTasks::run`], the blocking task is tracked until it returns,
/// even once the future is dropped (a timeout).
pub(crate) fn blocking<R, F>(f: F) -> HandlerFuture
where
    F: FnOnce() -> R + Send + 'static,
    R: IntoHandlerResult + Send + 'static,
{
    Box::pin(async move {
        let running = STILL_RUNNING.try_with(StillRunning::clone).ok();
        let task = move || {
            // Dropped when `f` returns or unwinds.
            let _running = running;
            f().into_handler_result()
        };
        match tokio::task::spawn_blocking(task).await {
            Ok(result) => result.map(|()| Ran::Applied),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(format!("the blocking task was cancelled: {e}")),
        }
    })
}

/// Prepares an async every-event handler; `f` receives the name and the data
/// when the handler runs.
pub fn prepare_any_async<F, Fut>(event: &Event, f: F) -> Result<HandlerFuture, ExtractError>
where
    F: FnOnce(Arc<str>, Value) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoHandlerResult,
{
    let (name, data) = event.to_parts();
    Ok(Box::pin(async move {
        f(name, data)
            .await
            .into_handler_result()
            .map(|()| Ran::Applied)
    }))
}

/// Prepares a sync every-event handler (runs on the blocking pool).
pub fn prepare_any_sync<F, R>(event: &Event, f: F) -> Result<HandlerFuture, ExtractError>
where
    F: FnOnce(Arc<str>, Value) -> R + Send + 'static,
    R: IntoHandlerResult + Send + 'static,
{
    let (name, data) = event.to_parts();
    Ok(blocking(move || f(name, data)))
}

/// A readable name for a handler function or closure type.
pub(crate) fn type_name_of<F>() -> Cow<'static, str> {
    Cow::Borrowed(std::any::type_name::<F>())
}
