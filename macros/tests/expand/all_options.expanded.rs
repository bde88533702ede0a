async fn daily(
    resolver: &(impl ::conflictkit::__private::Caller + ?::core::marker::Sized),
    day: u32,
) -> Result<Vec<i64>, ReportError> {
    ::conflictkit::__private::run_managed(
            resolver,
            ::conflictkit::__private::CallOptions::new("reports::daily")
                .retries(5)
                .isolation(::conflictkit::__private::Isolation::RepeatableRead)
                .read_only(true)
                .sqlite_mode(::conflictkit::__private::SqliteMode::Deferred)
                .contention(::conflictkit::__private::Contention::Off),
            move |txn: &conflictkit::Txn| {
                let day = ::conflictkit::__private::ReplayArg::replay(&day);
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
                        let __ck_return: Result<Vec<i64>, ReportError> = loop {};
                        return __ck_return;
                    }
                    { totals(txn, day).await }
                })
            },
        )
        .await
}
