#[managed_transaction(crate = "my_app::db::conflictkit")]
#[allow(clippy::too_many_arguments)]
async fn record(
    _: &Txn,
    mut log: Vec<String>,
    (x, y): (i32, i32),
    resolver: &str,
) -> Result<usize, conflictkit::Error> {
    #![allow(clippy::cast_sign_loss)]
    log.push(format!("{resolver}: {x},{y}"));
    Ok(log.len())
}
