//! Calling a user's function as an event handler: its parameters are
//! produced by their [`FromEvent`] implementations (in any order), then the
//! function runs, async or on the blocking pool.

use std::future::Future;
use std::sync::Arc;

use super::extract::{Event, EventContext, ExtractError, FromEvent};
use super::handler::{HandlerFuture, IntoHandlerResult, Ran, blocking};

/// An async function (or closure) usable as an event handler of a listener
/// with state `S`: every parameter implements [`FromEvent<S>`] and it returns
/// `()` or `Result<(), E: Display>`. Implemented for up to 8 parameters.
///
/// ```
/// use conflictkit::events::{EventContext, EventHandler, State};
///
/// fn assert_handler<A, H: EventHandler<A, u32>>(_: H) {}
///
/// async fn on_tx(State(n): State<u32>, ctx: EventContext, data: serde_json::Value) {
///     let _ = (n, ctx, data);
/// }
/// assert_handler(on_tx);
/// ```
#[diagnostic::on_unimplemented(
    message = "this is not an async event handler of a listener with state `{S}`",
    label = "not an event handler",
    note = "an async event handler's parameters are, in any order: the event data (a type implementing `serde::Deserialize`), `State<{S}>` and `EventContext`; it returns `()` or `Result<(), E>` where `E: Display`",
    note = "a blocking function is added with `on_sync`"
)]
pub trait EventHandler<Args, S>: Send + Sync + 'static {
    /// Produces the parameters, then returns the future of the call.
    #[doc(hidden)]
    fn prepare(
        this: &Arc<Self>,
        event: &Event,
        context: &EventContext,
        state: &S,
    ) -> Result<HandlerFuture, ExtractError>;
}

/// A blocking function (or closure) usable as an event handler of a listener
/// with state `S` (see [`EventHandler`]); it runs on tokio's blocking pool.
///
/// ```
/// use conflictkit::events::{BlockingEventHandler, EventContext};
///
/// fn assert_handler<A, H: BlockingEventHandler<A, ()>>(_: H) {}
///
/// fn on_tx(ctx: EventContext, data: serde_json::Value) -> Result<(), String> {
///     let _ = (ctx, data);
///     Ok(())
/// }
/// assert_handler(on_tx);
/// ```
#[diagnostic::on_unimplemented(
    message = "this is not a blocking event handler of a listener with state `{S}`",
    label = "not a blocking event handler",
    note = "a blocking event handler's parameters are, in any order: the event data (a type implementing `serde::Deserialize`), `State<{S}>` and `EventContext`; it returns `()` or `Result<(), E>` where `E: Display`",
    note = "an async function is added with `on`"
)]
pub trait BlockingEventHandler<Args, S>: Send + Sync + 'static {
    /// Produces the parameters, then returns the future of the call.
    #[doc(hidden)]
    fn prepare(
        this: &Arc<Self>,
        event: &Event,
        context: &EventContext,
        state: &S,
    ) -> Result<HandlerFuture, ExtractError>;
}

macro_rules! impl_handlers {
    ($($t:ident),*) => {
        impl<F, Fut, S, $($t,)*> EventHandler<($($t,)*), S> for F
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

        impl<F, R, S, $($t,)*> BlockingEventHandler<($($t,)*), S> for F
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
