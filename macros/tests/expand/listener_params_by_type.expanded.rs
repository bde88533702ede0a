use conflictkit::event_listener;
use conflictkit::events::{EventContext, State};
/// Parameters are produced by type, in any order, each spanned on its own.
async fn on_tx(State(app): State<App>, ctx: EventContext, update: Update) {
    app.apply(ctx.event_name(), update).await;
}
const _: () = {
    fn __ck_prepare(
        __ck_event: &::conflictkit::__private::events::Event,
        __ck_context: &::conflictkit::__private::events::EventContext,
        __ck_state: &::conflictkit::__private::events::DynState,
    ) -> ::core::result::Result<
        ::conflictkit::__private::events::HandlerFuture,
        ::conflictkit::__private::events::ExtractError,
    > {
        let __ck_arg0 = <State<
            App,
        > as ::conflictkit::__private::events::FromEvent<
            ::conflictkit::__private::events::DynState,
        >>::from_event(__ck_event, __ck_context, __ck_state)?;
        let __ck_arg1 = <EventContext as ::conflictkit::__private::events::FromEvent<
            ::conflictkit::__private::events::DynState,
        >>::from_event(__ck_event, __ck_context, __ck_state)?;
        let __ck_arg2 = <Update as ::conflictkit::__private::events::FromEvent<
            ::conflictkit::__private::events::DynState,
        >>::from_event(__ck_event, __ck_context, __ck_state)?;
        ::core::result::Result::Ok(
            ::conflictkit::__private::events::call_async(
                on_tx,
                (__ck_arg0, __ck_arg1, __ck_arg2),
            ),
        )
    }
    ::conflictkit::__private::inventory::submit! {
        ::conflictkit::__private::events::Registration::new(::core::option::Option::Some("txupdate"),
        ::core::concat!(::core::module_path!(), "::", "on_tx"),
        ::core::option::Option::None, __ck_prepare, & [< State < App > as
        ::conflictkit::__private::events::FromEvent <
        ::conflictkit::__private::events::DynState >> ::state_need as
        ::conflictkit::__private::events::NeedFn, < EventContext as
        ::conflictkit::__private::events::FromEvent <
        ::conflictkit::__private::events::DynState >> ::state_need as
        ::conflictkit::__private::events::NeedFn, < Update as
        ::conflictkit::__private::events::FromEvent <
        ::conflictkit::__private::events::DynState >> ::state_need as
        ::conflictkit::__private::events::NeedFn],)
    }
};
