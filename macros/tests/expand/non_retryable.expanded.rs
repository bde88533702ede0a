async fn migrate(
    resolver: &(impl ::conflictkit::__private::Caller + ?::core::marker::Sized),
) -> Result<(), conflictkit::Error> {
    ::conflictkit::__private::run_managed(
            resolver,
            ::conflictkit::__private::CallOptions::new(
                    ::core::concat!(::core::module_path!(), "::", "migrate"),
                )
                .sqlite_mode(::conflictkit::__private::SqliteMode::Exclusive)
                .non_retryable(),
            move |txn: &Txn| {
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
                        txn.execute_unprepared(
                                "CREATE TABLE account (id INTEGER PRIMARY KEY)",
                            )
                            .await?;
                        Ok(())
                    }
                })
            },
        )
        .await
}
