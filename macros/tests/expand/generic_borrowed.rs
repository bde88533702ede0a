#[managed_transaction]
async fn deposit_all<'a, T>(txn: &Txn, name: &'a str, amounts: &[T]) -> Result<(&'a str, impl Display), Error>
where
    T: Copy + Into<i64> + Sync,
{
    let total: i64 = amounts.iter().map(|&a| a.into()).sum();
    save(txn, name, total).await?;
    Ok((name, total))
}
