use conflictkit::{Txn, managed_transaction};
async fn credit_fee(
    resolver: &(impl ::conflictkit::__private::Caller + ?::core::marker::Sized),
    account: i64,
    cents: i64,
) -> Result<(), conflictkit::Error> {
    ::conflictkit::__private::run_managed_batched(
            resolver,
            ::conflictkit::__private::CallOptions::new(
                    ::core::concat!(::core::module_path!(), "::", "credit_fee"),
                )
                .key(&(account))
                .batch(32),
            move |txn: &Txn| {
                let account = ::conflictkit::__private::ReplayArg::replay(&account);
                let cents = ::conflictkit::__private::ReplayArg::replay(&cents);
                ::std::boxed::Box::pin(async move {
                    #[allow(
                        unknown_lints,
                        unreachable_code,
                        clippy::diverging_sub_expression,
                        clippy::empty_loop,
                        clippy::let_unit_value,
                        clippy::needless_return,
                        clippy::unreachable
                    )]
                    if false {
                        let __ck_return: Result<(), conflictkit::Error> = loop {};
                        return __ck_return;
                    }
                    {
                        let _ = (txn, account, cents);
                        Ok(())
                    }
                })
            },
        )
        .await
}
