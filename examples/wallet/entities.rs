//! The wallet's tables: accounts and the ledger of transactions.

use conflictkit::AutoNumber;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Schema};

/// Where a ledger entry is in its life; stored as an integer column (1, 2, 3).
#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Seen, not yet final.
    Pending = 1,
    /// Final on the network.
    Confirmed,
    /// Applied to the account balance.
    Credited,
}

/// What moved the money; also stored as an integer.
#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    /// Money in from outside (a top-up).
    TopUp = 1,
    /// The debit half of a transfer.
    TransferOut,
    /// The credit half of a transfer.
    TransferIn,
    /// A deposit reported by a `txupdate` event.
    Deposit,
    /// The fee of a transfer, credited to the fee account.
    Fee,
}

pub mod account {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "wallet_accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        /// Balance in cents.
        pub balance: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ledger {
    use sea_orm::entity::prelude::*;

    use super::{TxKind, TxState};

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "wallet_ledger")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub account: i32,
        /// Signed amount in cents.
        pub amount: i64,
        pub kind: TxKind,
        pub state: TxState,
        /// The network transaction id of a deposit (unique), none otherwise.
        #[sea_orm(unique)]
        pub txid: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Drops and creates the tables, then opens `accounts` accounts with `initial` cents each.
pub async fn migrate(db: &DatabaseConnection, accounts: i32, initial: i64) -> Result<(), DbErr> {
    use sea_orm::{ActiveModelTrait, Set};
    let backend = db.get_database_backend();
    let schema = Schema::new(backend);
    // The event tables are dropped too, so every run starts with an empty
    // inbox and outbox.
    for table in [
        "wallet_ledger",
        "wallet_accounts",
        conflictkit::events::INBOX_TABLE,
        conflictkit::events::OUTBOX_TABLE,
    ] {
        db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
            .await?;
    }
    db.execute(&schema.create_table_from_entity(account::Entity))
        .await?;
    db.execute(&schema.create_table_from_entity(ledger::Entity))
        .await?;
    conflictkit::events::migrate_inbox(db).await?;
    conflictkit::events::migrate_outbox(db).await?;
    for id in 1..=accounts {
        account::ActiveModel {
            id: Set(id),
            balance: Set(initial),
        }
        .insert(db)
        .await?;
    }
    // the fee account, which every transfer credits, opens empty
    account::ActiveModel {
        id: Set(crate::bank::FEE_ACCOUNT),
        balance: Set(0),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Waits (30 s at most) until `db`, another node of the cluster `migrate`
/// ran on, has the accounts: a node applies replicated DDL and rows a moment
/// after the node that ran them.
pub async fn wait_for_accounts(db: &DatabaseConnection, accounts: i32) -> Result<(), DbErr> {
    use sea_orm::{EntityTrait, PaginatorTrait};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match account::Entity::find().count(db).await {
            // and the fee account
            Ok(n) if n == accounts as u64 + 1 => return Ok(()),
            Ok(_) | Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Ok(n) => {
                return Err(DbErr::Custom(format!(
                    "another node has {n} of the {accounts} accounts after 30 s"
                )));
            }
            Err(e) => return Err(e),
        }
    }
}
