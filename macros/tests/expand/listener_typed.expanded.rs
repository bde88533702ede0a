use conflictkit::event_listener;
/// One event, its data decoded into `Update`, with a timeout.
async fn on_tx(update: Update) -> Result<(), conflictkit::Error> {
    record(update).await
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
        let __ck_arg0 = <Update as ::conflictkit::__private::events::FromEvent<
            ::conflictkit::__private::events::DynState,
        >>::from_event(__ck_event, __ck_context, __ck_state)?;
        ::core::result::Result::Ok(
            ::conflictkit::__private::events::call_async(on_tx, (__ck_arg0,)),
        )
    }
    ::conflictkit::__private::inventory::submit! {
        ::conflictkit::__private::events::Registration::new(::core::option::Option::Some("txupdate"),
        ::core::concat!(::core::module_path!(), "::", "on_tx"),
        ::core::option::Option::Some(50), __ck_prepare, & [< Update as
        ::conflictkit::__private::events::FromEvent <
        ::conflictkit::__private::events::DynState >> ::state_need as
        ::conflictkit::__private::events::NeedFn],)
    }
};
/// A blocking handler returning nothing.
fn on_ping(_ping: serde_json::Value) {}
const _: () = {
    fn __ck_prepare(
        __ck_event: &::conflictkit::__private::events::Event,
        __ck_context: &::conflictkit::__private::events::EventContext,
        __ck_state: &::conflictkit::__private::events::DynState,
    ) -> ::core::result::Result<
        ::conflictkit::__private::events::HandlerFuture,
        ::conflictkit::__private::events::ExtractError,
    > {
        let __ck_arg0 = <serde_json::Value as ::conflictkit::__private::events::FromEvent<
            ::conflictkit::__private::events::DynState,
        >>::from_event(__ck_event, __ck_context, __ck_state)?;
        ::core::result::Result::Ok(
            ::conflictkit::__private::events::call_blocking(on_ping, (__ck_arg0,)),
        )
    }
    ::conflictkit::__private::inventory::submit! {
        ::conflictkit::__private::events::Registration::new(::core::option::Option::Some("ping"),
        ::core::concat!(::core::module_path!(), "::", "on_ping"),
        ::core::option::Option::None, __ck_prepare, & [< serde_json::Value as
        ::conflictkit::__private::events::FromEvent <
        ::conflictkit::__private::events::DynState >> ::state_need as
        ::conflictkit::__private::events::NeedFn],)
    }
};
