use conflictkit::{Txn, managed_transaction};
/// Credits `amount` to `account`.
pub async fn top_up(
    resolver: &(impl ::conflictkit::__private::Caller + ?::core::marker::Sized),
    account: i32,
    amount: i64,
) -> Result<i64, conflictkit::Error> {
    ::conflictkit::__private::run_managed(
            resolver,
            ::conflictkit::__private::CallOptions::new(
                ::core::concat!(::core::module_path!(), "::", "top_up"),
            ),
            move |txn: &Txn| {
                let account = ::conflictkit::__private::ReplayArg::replay(&account);
                let amount = ::conflictkit::__private::ReplayArg::replay(&amount);
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
                    {
                        let balance = load(txn, account).await? + amount;
                        store(txn, account, balance).await?;
                        Ok(balance)
                    }
                })
            },
        )
        .await
}
