impl<S: Store + Sync> Ledger<S> {
    /// The resolver comes from the caller.
    async fn total(
        &self,
        resolver: &(impl ::conflictkit::__private::Caller + ?::core::marker::Sized),
    ) -> Result<i64, conflictkit::Error> {
        ::conflictkit::__private::run_managed(
                resolver,
                ::conflictkit::__private::CallOptions::new(
                    ::std::format!(
                        "{}::{}", ::core::any::type_name:: < Self > (), "total"
                    ),
                ),
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
                            let __ck_return: Result<i64, conflictkit::Error> = loop {};
                            return __ck_return;
                        }
                        { self.store.sum(txn).await }
                    })
                },
            )
            .await
    }
}
