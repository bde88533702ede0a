//! Calling a user's function as an event handler: its parameters are
//! produced by their [`FromEvent`] implementations (in any order), then the
//! function runs, async or on the blocking pool.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use super::extract::{Event, EventContext, ExtractError, FromEvent};
use super::handler::{HandlerFuture, IntoHandlerResult, Ran, blocking};

/// A function (or closure) usable as an event handler of a listener with
/// state `S`, given to [`Listener::on`](crate::events::Listener::on) and
/// [`Listener::on_any`](crate::events::Listener::on_any).
///
/// Every parameter implements [`FromEvent<S>`] (the event data as any
/// `serde::Deserialize` type, [`State<S>`](crate::events::State),
/// [`EventContext`]), in any order, up to 8 of them. The function is either
///
/// - **async**: it returns a future whose output is `()` or
///   `Result<(), E: Display>`; the future runs on the listener's runtime; or
/// - **blocking**: it returns `()` or `Result<(), E: Display>` itself; it
///   runs on tokio's blocking pool, so it never stalls the server.
///
/// Which one is decided by the return type; `Marker` records it (and the
/// parameter types) and is always inferred: callers never name it.
///
/// ```
/// use conflictkit::events::{EventContext, IntoHandler, State};
///
/// fn assert_handler<M, H: IntoHandler<M, u32>>(_: H) {}
///
/// async fn on_tx(State(n): State<u32>, ctx: EventContext, data: serde_json::Value) {
///     let _ = (n, ctx, data);
/// }
/// fn on_tx_blocking(ctx: EventContext, data: serde_json::Value) -> Result<(), String> {
///     let _ = (ctx, data);
///     Ok(())
/// }
/// assert_handler(on_tx);
/// assert_handler(on_tx_blocking);
/// assert_handler(|data: serde_json::Value| async move { drop(data) });
/// assert_handler(|data: serde_json::Value| drop(data));
/// ```
#[diagnostic::on_unimplemented(
    message = "this is not an event handler of a listener with state `{S}`",
    label = "not an event handler",
    note = "an event handler's parameters are, in any order: the event data (a type implementing `serde::Deserialize`), `State<{S}>` and `EventContext`",
    note = "it returns `()` or `Result<(), E>` where `E: Display` (it runs on tokio's blocking pool), or a future of one of them (an async handler)"
)]
pub trait IntoHandler<Marker, S>: Send + Sync + 'static {
    /// Produces the parameters, then returns the future of the call.
    #[doc(hidden)]
    fn prepare(
        this: &Arc<Self>,
        event: &Event,
        context: &EventContext,
        state: &S,
    ) -> Result<HandlerFuture, ExtractError>;
}

/// The [`IntoHandler`] marker of an async function taking `Args`. Not
/// nameable outside the crate; inferred.
#[derive(Debug)]
pub struct Async<Args>(PhantomData<fn() -> Args>);

/// The [`IntoHandler`] marker of a blocking function taking `Args`. Not
/// nameable outside the crate; inferred.
#[derive(Debug)]
pub struct Blocking<Args>(PhantomData<fn() -> Args>);

// The two impls do not overlap for any one closure: a return type is either
// a `Future` or `IntoHandlerResult` (`()` / `Result`), never both, so trait
// selection keeps exactly one (the `tests/events_listener.rs` tests
// `one_on_*` check that each form picks its own).
macro_rules! impl_handlers {
    ($($t:ident),*) => {
        impl<F, Fut, S, $($t,)*> IntoHandler<Async<($($t,)*)>, S> for F
        where
            F: Fn($($t),*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: IntoHandlerResult,
            $($t: FromEvent<S> + Send + 'static,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn prepare(
                this: &Arc<Self>,
                event: &Event,
                context: &EventContext,
                state: &S,
            ) -> Result<HandlerFuture, ExtractError> {
                $(let $t = $t::from_event(event, context, state)?;)*
                let f = this.clone();
                Ok(Box::pin(async move {
                    f($($t),*).await.into_handler_result().map(|()| Ran::Applied)
                }))
            }
        }

        impl<F, R, S, $($t,)*> IntoHandler<Blocking<($($t,)*)>, S> for F
        where
            F: Fn($($t),*) -> R + Send + Sync + 'static,
            R: IntoHandlerResult + Send + 'static,
            $($t: FromEvent<S> + Send + 'static,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn prepare(
                this: &Arc<Self>,
                event: &Event,
                context: &EventContext,
                state: &S,
            ) -> Result<HandlerFuture, ExtractError> {
                $(let $t = $t::from_event(event, context, state)?;)*
                let f = this.clone();
                Ok(blocking(move || f($($t),*)))
            }
        }
    };
}

impl_handlers!();
impl_handlers!(T1);
impl_handlers!(T1, T2);
impl_handlers!(T1, T2, T3);
impl_handlers!(T1, T2, T3, T4);
impl_handlers!(T1, T2, T3, T4, T5);
impl_handlers!(T1, T2, T3, T4, T5, T6);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8);

/// A function called with a tuple of arguments (what `#[event_listener]`
/// functions are, whatever their arity). Not public API.
#[doc(hidden)]
pub trait CallWith<Args>: Send + 'static {
    /// What the function returns.
    type Output;
    /// Calls the function.
    fn call_with(self, args: Args) -> Self::Output;
}

macro_rules! impl_call_with {
    ($($t:ident),*) => {
        impl<F, R, $($t,)*> CallWith<($($t,)*)> for F
        where
            F: FnOnce($($t),*) -> R + Send + 'static,
        {
            type Output = R;

            #[allow(non_snake_case)]
            fn call_with(self, ($($t,)*): ($($t,)*)) -> R {
                self($($t),*)
            }
        }
    };
}

impl_call_with!();
impl_call_with!(T1);
impl_call_with!(T1, T2);
impl_call_with!(T1, T2, T3);
impl_call_with!(T1, T2, T3, T4);
impl_call_with!(T1, T2, T3, T4, T5);
impl_call_with!(T1, T2, T3, T4, T5, T6);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);

/// The future of an `#[event_listener]` async function called with its
/// parameters (when the future is first polled). Not public API.
#[doc(hidden)]
pub fn call_async<F, A>(f: F, args: A) -> HandlerFuture
where
    F: CallWith<A>,
    F::Output: Future + Send + 'static,
    <F::Output as Future>::Output: IntoHandlerResult,
    A: Send + 'static,
{
    Box::pin(async move {
        f.call_with(args)
            .await
            .into_handler_result()
            .map(|()| Ran::Applied)
    })
}

/// The future of an `#[event_listener]` blocking function called with its
/// parameters (on tokio's blocking pool). Not public API.
#[doc(hidden)]
pub fn call_blocking<F, A>(f: F, args: A) -> HandlerFuture
where
    F: CallWith<A>,
    F::Output: IntoHandlerResult + Send + 'static,
    A: Send + 'static,
{
    blocking(move || f.call_with(args))
}
