/// `crate = "…"` roots every generated path.
fn f(d: u8) {
    let _ = d;
}
const _: () = {
    fn __ck_prepare(
        __ck_event: &my::ck::__private::events::Event,
        __ck_context: &my::ck::__private::events::EventContext,
        __ck_state: &my::ck::__private::events::DynState,
    ) -> ::core::result::Result<
        my::ck::__private::events::HandlerFuture,
        my::ck::__private::events::ExtractError,
    > {
        let __ck_arg0 = <u8 as my::ck::__private::events::FromEvent<
            my::ck::__private::events::DynState,
        >>::from_event(__ck_event, __ck_context, __ck_state)?;
        ::core::result::Result::Ok(
            my::ck::__private::events::call_blocking(f, (__ck_arg0,)),
        )
    }
    my::ck::__private::inventory::submit! {
        my::ck::__private::events::Registration::new(::core::option::Option::Some("x"),
        ::core::concat!(::core::module_path!(), "::", "f"), ::core::option::Option::None,
        __ck_prepare, & [< u8 as my::ck::__private::events::FromEvent <
        my::ck::__private::events::DynState >> ::state_need as
        my::ck::__private::events::NeedFn],)
    }
};
