use conflictkit::event_listener;
/// Every event, blocking: the name, then the data.
fn all(name: &str, data: serde_json::Value) {
    log(name, data);
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
        let _ = (__ck_context, __ck_state);
        ::conflictkit::__private::events::prepare_any_sync(
            __ck_event,
            |__ck_name, __ck_data| all(&__ck_name, __ck_data),
        )
    }
    ::conflictkit::__private::inventory::submit! {
        ::conflictkit::__private::events::Registration::new(::core::option::Option::None,
        ::core::concat!(::core::module_path!(), "::", "all"),
        ::core::option::Option::None, __ck_prepare, & [],)
    }
};
/// Every event, async, with a timeout.
async fn all_async(
    name: &str,
    data: serde_json::Value,
) -> Result<(), conflictkit::Error> {
    forward(name, data).await
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
        let _ = (__ck_context, __ck_state);
        ::conflictkit::__private::events::prepare_any_async(
            __ck_event,
            |__ck_name, __ck_data| async move { all_async(&__ck_name, __ck_data).await },
        )
    }
    ::conflictkit::__private::inventory::submit! {
        ::conflictkit::__private::events::Registration::new(::core::option::Option::None,
        ::core::concat!(::core::module_path!(), "::", "all_async"),
        ::core::option::Option::Some(1000), __ck_prepare, & [],)
    }
};
