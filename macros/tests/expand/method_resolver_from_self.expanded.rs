impl Wallet {
    pub async fn transfer(
        &self,
        from: i32,
        to: i32,
        amount: Decimal,
    ) -> Result<(), WalletError> {
        let __ck_resolver: &::conflictkit::__private::ConflictResolver = &(self
            .resolver);
        ::conflictkit::__private::run_managed(
                __ck_resolver,
                ::conflictkit::__private::CallOptions::new(
                        ::std::format!(
                            "{}::{}", ::core::any::type_name:: < Self > (), "transfer"
                        ),
                    )
                    .retries(5),
                move |txn: &Txn| {
                    let from = ::conflictkit::__private::ReplayArg::replay(&from);
                    let to = ::conflictkit::__private::ReplayArg::replay(&to);
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
                            let __ck_return: Result<(), WalletError> = loop {};
                            return __ck_return;
                        }
                        {
                            debit(txn, from, amount).await?;
                            credit(txn, to, amount).await
                        }
                    })
                },
            )
            .await
    }
}
