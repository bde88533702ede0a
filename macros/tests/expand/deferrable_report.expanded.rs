async fn audit(
    resolver: &(impl ::conflictkit::__private::Caller + ?::core::marker::Sized),
) -> Result<i64, conflictkit::Error> {
    ::conflictkit::__private::run_managed(
            resolver,
            ::conflictkit::__private::CallOptions::new("reports::audit")
                .retries(0)
                .deferrable(true),
            move |txn: &conflictkit::Txn| {
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
                        let __ck_return: Result<i64, conflictkit::Error> = loop {};
                        return __ck_return;
                    }
                    { total(txn).await }
                })
            },
        )
        .await
}
