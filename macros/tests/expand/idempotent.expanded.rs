async fn transfer(
    resolver: &(impl ::conflictkit::__private::Caller + ?::core::marker::Sized),
    request_id: String,
    from: i32,
    to: i32,
    cents: i64,
) -> Result<Receipt, WalletError> {
    let __ck_idempotency_key = ::conflictkit::__private::ArgsFingerprint::new()
        .arg(&request_id)
        .arg(&from)
        .arg(&to)
        .arg(&cents)
        .key(&(request_id.as_str()));
    ::conflictkit::__private::run_idempotent_call(
            resolver,
            ::conflictkit::__private::CallOptions::new("wallet::transfer"),
            __ck_idempotency_key,
            move |txn: &Txn| {
                #[allow(unused_variables)]
                let request_id = ::conflictkit::__private::ReplayArg::replay(
                    &request_id,
                );
                #[allow(unused_variables)]
                let from = ::conflictkit::__private::ReplayArg::replay(&from);
                #[allow(unused_variables)]
                let to = ::conflictkit::__private::ReplayArg::replay(&to);
                #[allow(unused_variables)]
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
                        let __ck_return: Result<Receipt, WalletError> = loop {};
                        return __ck_return;
                    }
                    { move_money(txn, from, to, cents).await }
                })
            },
        )
        .await
}
async fn charge(
    resolver: &(impl ::conflictkit::__private::Caller + ?::core::marker::Sized),
    key: &str,
    order: u64,
    cents: i64,
) -> Result<Charge, PayError> {
    let __ck_idempotency_key = ::conflictkit::__private::idempotency_key(
        &(key),
        &((order, cents)),
    );
    ::conflictkit::__private::run_idempotent_call_storing_errors(
            resolver,
            ::conflictkit::__private::CallOptions::new(
                ::core::concat!(::core::module_path!(), "::", "charge"),
            ),
            __ck_idempotency_key,
            move |txn: &Txn| {
                #[allow(unused_variables)]
                let key = ::conflictkit::__private::ReplayArg::replay(&key);
                #[allow(unused_variables)]
                let order = ::conflictkit::__private::ReplayArg::replay(&order);
                #[allow(unused_variables)]
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
                        let __ck_return: Result<Charge, PayError> = loop {};
                        return __ck_return;
                    }
                    { charge_card(txn, order, cents).await }
                })
            },
        )
        .await
}
