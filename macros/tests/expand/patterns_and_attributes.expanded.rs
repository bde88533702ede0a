#[allow(clippy::too_many_arguments)]
#[allow(clippy::cast_sign_loss)]
async fn record(
    __ck_resolver: &(impl my_app::db::conflictkit::__private::Caller + ?::core::marker::Sized),
    log: Vec<String>,
    __ck_arg1: (i32, i32),
    resolver: &str,
) -> Result<usize, conflictkit::Error> {
    my_app::db::conflictkit::__private::run_managed(
            __ck_resolver,
            my_app::db::conflictkit::__private::CallOptions::new(
                ::core::concat!(::core::module_path!(), "::", "record"),
            ),
            move |_: &Txn| {
                let mut log = my_app::db::conflictkit::__private::ReplayArg::replay(
                    &log,
                );
                let (x, y) = my_app::db::conflictkit::__private::ReplayArg::replay(
                    &__ck_arg1,
                );
                let resolver = my_app::db::conflictkit::__private::ReplayArg::replay(
                    &resolver,
                );
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
                        let __ck_return: Result<usize, conflictkit::Error> = loop {};
                        return __ck_return;
                    }
                    {
                        log.push(format!("{resolver}: {x},{y}"));
                        Ok(log.len())
                    }
                })
            },
        )
        .await
}
