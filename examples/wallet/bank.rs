//! The money-moving functions: each is a `#[managed_transaction]`, replayed
//! by the resolver when the database reports a serialization conflict.
//!
//! Their bodies are plain SeaORM on any connection (the `*_on` functions):
//! `--without-conflictkit` runs the same bodies in `db.transaction(…)` (see
//! `plain`), so the two runs differ only in what runs them.

use conflictkit::events::Publish as _;
use conflictkit::{CannotResolveDatabaseConflict, Txn, managed_transaction};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

use crate::entities::{TxKind, TxState, account, ledger};

/// Errors of the wallet's operations.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("account {0} does not exist")]
    NoSuchAccount(i32),
    #[error("account {account} has {balance} cents, cannot send {amount}")]
    InsufficientFunds {
        account: i32,
        balance: i64,
        amount: i64,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Unresolved(#[from] CannotResolveDatabaseConflict),
}

async fn balance_of<C: ConnectionTrait>(txn: &C, id: i32) -> Result<i64, WalletError> {
    Ok(account::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or(WalletError::NoSuchAccount(id))?
        .balance)
}

async fn set_balance<C: ConnectionTrait>(
    txn: &C,
    id: i32,
    balance: i64,
) -> Result<(), WalletError> {
    account::ActiveModel {
        id: Set(id),
        balance: Set(balance),
    }
    .update(txn)
    .await?;
    Ok(())
}

async fn record<C: ConnectionTrait>(
    txn: &C,
    account: i32,
    amount: i64,
    kind: TxKind,
    txid: Option<String>,
) -> Result<(), WalletError> {
    ledger::ActiveModel {
        account: Set(account),
        amount: Set(amount),
        kind: Set(kind),
        state: Set(TxState::Credited),
        txid: Set(txid),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Adds `amount` cents to `account`; returns the new balance.
///
/// PostgreSQL and MariaDB run it SERIALIZABLE: concurrent top-ups of one
/// account conflict and are replayed. SQLite runs it `BEGIN IMMEDIATE`
/// behind the resolver's writer queue: top-ups wait their turn and never
/// conflict inside the process.
///
/// Top-ups and transfers share one label: they fight over the same rows, so
/// the resolver must see them as one hot spot. They share one batch too
/// (`batch`, no key: one lane per label), see [`transfer`].
#[managed_transaction(label = "wallet::accounts", batch)]
pub async fn top_up(txn: &Txn, account: i32, amount: i64) -> Result<i64, WalletError> {
    top_up_on(txn, account, amount).await
}

/// The body of [`top_up`] on any connection: read the balance, write back
/// the sum, record the entry.
pub async fn top_up_on<C: ConnectionTrait>(
    c: &C,
    account: i32,
    amount: i64,
) -> Result<i64, WalletError> {
    let balance = balance_of(c, account).await? + amount;
    set_balance(c, account, balance).await?;
    record(c, account, amount, TxKind::TopUp, None).await?;
    Ok(balance)
}

/// Takes `amount` cents from `account`, refusing to overdraw. It writes its
/// ledger entry first and checks the balance after, as a ledger service
/// would: a refusal returns `Err`, and the entry goes with it.
///
/// Called with a resolver it runs its own transaction; called with a managed
/// body's `txn` (as `transfer` does) it runs as a savepoint of that
/// transaction: a refused debit takes back its own writes and nothing else,
/// and the caller decides what the refusal means.
#[managed_transaction(label = "wallet::accounts")]
pub async fn debit(txn: &Txn, account: i32, amount: i64, kind: TxKind) -> Result<i64, WalletError> {
    debit_on(txn, account, amount, kind).await
}

/// The body of [`debit`] on any connection.
pub async fn debit_on<C: ConnectionTrait>(
    c: &C,
    account: i32,
    amount: i64,
    kind: TxKind,
) -> Result<i64, WalletError> {
    record(c, account, -amount, kind, None).await?;
    let balance = balance_of(c, account).await?;
    if balance < amount {
        return Err(WalletError::InsufficientFunds {
            account,
            balance,
            amount,
        });
    }
    set_balance(c, account, balance - amount).await?;
    Ok(balance - amount)
}

/// The account every transfer's fee goes to: one row that every transfer
/// writes, the wallet's hottest.
pub const FEE_ACCOUNT: i32 = 0;

/// What a transfer costs its sender, in cents, on top of the amount.
pub const TRANSFER_FEE: i64 = 1;

/// Moves `amount` cents from `from` to `to` and [`TRANSFER_FEE`] from
/// `from` to the fee account, refusing to overdraw: the debit is `debit`,
/// run as a savepoint of this transaction.
///
/// Every transfer writes the fee account, so one call per transaction
/// would make transfers wait for each other's `COMMIT`. `batch` runs the
/// calls that queue meanwhile in one transaction (each in a savepoint of
/// its own, so a refused one takes back only its own writes) with one
/// `COMMIT`: group commit on the hot row. Top-ups run in the same batches
/// (same label, no key): with a handful of hot accounts every call touches
/// rows the others touch, and one batch at a time never conflicts with
/// another, where a batch beside per-call top-ups would.
#[managed_transaction(label = "wallet::accounts", batch)]
pub async fn transfer(txn: &Txn, from: i32, to: i32, amount: i64) -> Result<(), WalletError> {
    debit(txn, from, amount + TRANSFER_FEE, TxKind::TransferOut).await?;
    credit_on(txn, to, amount).await
}

/// The rest of a transfer after its debit, on any connection: `amount` to
/// `to`, [`TRANSFER_FEE`] to the fee account, each read, written back and
/// recorded.
pub async fn credit_on<C: ConnectionTrait>(c: &C, to: i32, amount: i64) -> Result<(), WalletError> {
    let to_balance = balance_of(c, to).await?;
    set_balance(c, to, to_balance + amount).await?;
    record(c, to, amount, TxKind::TransferIn, None).await?;
    let fees = balance_of(c, FEE_ACCOUNT).await?;
    set_balance(c, FEE_ACCOUNT, fees + TRANSFER_FEE).await?;
    record(c, FEE_ACCOUNT, TRANSFER_FEE, TxKind::Fee, None).await?;
    Ok(())
}

/// A balance check: `account`'s balance and the sum of its ledger entries,
/// read in one snapshot, so they agree (balance = opening + ledger) unless
/// an update was lost. Read-only: on a resolver built with replicas it runs
/// on a replica (see `--replica`), else on the primary.
///
/// REPEATABLE READ is the snapshot a read needs: at SERIALIZABLE, MariaDB
/// turns every SELECT into a locking read, and a check would take shared
/// locks on the hot rows and deadlock with the transfers.
#[managed_transaction(
    label = "wallet::balance_check",
    read_only,
    isolation = "repeatable_read"
)]
pub async fn balance_check(txn: &Txn, account: i32) -> Result<(i64, i64), WalletError> {
    balance_check_on(txn, account).await
}

/// The body of [`balance_check`] on any connection.
pub async fn balance_check_on<C: ConnectionTrait>(
    c: &C,
    account: i32,
) -> Result<(i64, i64), WalletError> {
    let balance = balance_of(c, account).await?;
    let entries = ledger::Entity::find()
        .filter(ledger::Column::Account.eq(account))
        .all(c)
        .await?;
    Ok((balance, entries.iter().map(|e| e.amount).sum()))
}

/// Credits a network deposit once: a `txid` already in the ledger is a
/// replayed notification and changes nothing. Returns whether it credited.
/// The `deposit_credited` notification goes to the outbox in the same
/// transaction: it is sent (by the relay) if and only if the credit
/// committed, even if the process dies right after the commit. The log line
/// is an after-commit hook: printed once, only if the credit committed.
#[managed_transaction]
pub async fn credit_deposit(
    txn: &Txn,
    account: i32,
    amount: i64,
    txid: &str,
) -> Result<bool, WalletError> {
    let seen = ledger::Entity::find()
        .filter(ledger::Column::Txid.eq(txid))
        .one(txn)
        .await?;
    if seen.is_some() {
        return Ok(false);
    }
    let balance = balance_of(txn, account).await? + amount;
    set_balance(txn, account, balance).await?;
    record(txn, account, amount, TxKind::Deposit, Some(txid.to_owned())).await?;
    txn.publish(
        "deposit_credited",
        &serde_json::json!({"account": account, "cents": amount, "txid": txid}),
    )
    .await?;
    let txid = txid.to_owned();
    txn.after_commit(move || tracing::info!(%txid, account, amount, "deposit credited"));
    Ok(true)
}

/// What `POST /transfer` answers (see `api`): the ledger entry that
/// credited `to`, and both balances right after the transfer.
#[derive(Debug, serde::Serialize)]
pub struct Receipt {
    pub entry: i64,
    pub from_balance: i64,
    pub to_balance: i64,
}

/// The receipt of the transfer from `from` to `to` just made in `txn`.
pub async fn receipt(txn: &Txn, from: i32, to: i32) -> Result<Receipt, WalletError> {
    let entry = ledger::Entity::find()
        .filter(ledger::Column::Account.eq(to))
        .filter(ledger::Column::Kind.eq(TxKind::TransferIn))
        .order_by_desc(ledger::Column::Id)
        .one(txn)
        .await?
        .ok_or(WalletError::NoSuchAccount(to))?
        .id;
    Ok(Receipt {
        entry,
        from_balance: balance_of(txn, from).await?,
        to_balance: balance_of(txn, to).await?,
    })
}
