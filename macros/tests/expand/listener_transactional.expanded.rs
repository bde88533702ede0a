use conflictkit::{Txn, event_listener};
use conflictkit::events::State;
/// Runs in a managed transaction that records the delivery in the inbox.
async fn credit(
    txn: &Txn,
    update: Update,
    State(app): State<App>,
) -> Result<(), conflictkit::Error> {
    app.credit(txn, update.account, update.cents).await
}
const _: () = {
    fn __ck_attempt<'t>(
        __ck_txn: &'t ::conflictkit::__private::events::Txn,
        __ck_event: &::conflictkit::__private::events::Event,
        __ck_context: &::conflictkit::__private::events::EventContext,
        __ck_state: &::conflictkit::__private::events::DynState,
    ) -> ::core::result::Result<
        ::conflictkit::__private::events::TxnFuture<
            't,
            <Result<
                (),
                conflictkit::Error,
            > as ::conflictkit::__private::events::TxnOutput>::Error,
        >,
        ::conflictkit::__private::events::ExtractError,
    > {
        let __ck_arg0 = <Update as ::conflictkit::__private::events::FromEvent<
            ::conflictkit::__private::events::DynState,
        >>::from_event(__ck_event, __ck_context, __ck_state)?;
        let __ck_arg1 = <State<
            App,
        > as ::conflictkit::__private::events::FromEvent<
            ::conflictkit::__private::events::DynState,
        >>::from_event(__ck_event, __ck_context, __ck_state)?;
        let __ck_txn: &'t Txn = __ck_txn;
        ::core::result::Result::Ok(
            ::std::boxed::Box::pin(credit(__ck_txn, __ck_arg0, __ck_arg1)),
        )
    }
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
        let __ck_arg1 = <State<
            App,
        > as ::conflictkit::__private::events::FromEvent<
            ::conflictkit::__private::events::DynState,
        >>::from_event(__ck_event, __ck_context, __ck_state)?;
        let _ = (__ck_arg0, __ck_arg1);
        ::conflictkit::__private::events::prepare_transactional::<
            <Result<
                (),
                conflictkit::Error,
            > as ::conflictkit::__private::events::TxnOutput>::Error,
        >(
            ::core::concat!(::core::module_path!(), "::", "credit"),
            __ck_event,
            __ck_context,
            __ck_state,
            __ck_attempt,
        )
    }
    ::conflictkit::__private::inventory::submit! {
        ::conflictkit::__private::events::Registration::new(::core::option::Option::Some("txupdate"),
        ::core::concat!(::core::module_path!(), "::", "credit"),
        ::core::option::Option::Some(5000), __ck_prepare, & [< Update as
        ::conflictkit::__private::events::FromEvent <
        ::conflictkit::__private::events::DynState >> ::state_need as
        ::conflictkit::__private::events::NeedFn, < State < App > as
        ::conflictkit::__private::events::FromEvent <
        ::conflictkit::__private::events::DynState >> ::state_need as
        ::conflictkit::__private::events::NeedFn],).transactional()
    }
};
