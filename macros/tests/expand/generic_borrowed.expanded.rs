async fn deposit_all<'a, T>(
    resolver: &(impl ::conflictkit::__private::Caller + ?::core::marker::Sized),
    name: &'a str,
    amounts: &[T],
) -> Result<(&'a str, impl Display), Error>
where
    T: Copy + Into<i64> + Sync,
{
    ::conflictkit::__private::run_managed(
            resolver,
            ::conflictkit::__private::CallOptions::new(
                ::core::concat!(::core::module_path!(), "::", "deposit_all"),
            ),
            move |txn: &Txn| {
                let name = ::conflictkit::__private::ReplayArg::replay(&name);
                let amounts = ::conflictkit::__private::ReplayArg::replay(&amounts);
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
                        let __ck_return: Result<(&'a str, _), Error> = loop {};
                        return __ck_return;
                    }
                    {
                        let total: i64 = amounts.iter().map(|&a| a.into()).sum();
                        save(txn, name, total).await?;
                        Ok((name, total))
                    }
                })
            },
        )
        .await
}
