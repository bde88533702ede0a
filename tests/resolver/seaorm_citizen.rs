//! `&Txn` is a full SeaORM connection (DESIGN §7): helpers written for any
//! connection (`C: ConnectionTrait + TransactionTrait`, `C: StreamTrait`)
//! and `ActiveModelEx` saves of nested models run inside a managed body, on
//! PostgreSQL, MariaDB and SQLite. `begin()` opens a savepoint whose
//! statements still count: an error swallowed inside a savepoint that was
//! rolled back is handled, one swallowed without a rollback fails the call
//! where the engine aborted the transaction; hooks of a rolled-back savepoint
//! never run. Managed functions compose: called with a body's `txn` they
//! run as a savepoint of it; a `durable` one refuses to.

#![allow(unreachable_pub)] // the entity modules are `pub` for sea-orm's derives

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{self, Backend, TestDb};
use conflictkit::resolver::{
    Backoff, Contention, DurableNested, NestedOption, TxnOutsideItsBody, TxnSavepoint,
};
use conflictkit::{ConflictResolver, Txn, managed_transaction};
use futures::TryStreamExt;
use sea_orm::{
    AccessMode, ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, Schema, Set,
    StreamTrait, TransactionSession, TransactionTrait,
};

const ALL_ENGINES: [Backend; 3] = [Backend::Postgres, Backend::MySql, Backend::Sqlite];

pub mod item {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "citizen_item")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub amount: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod owner {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "citizen_owner")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
        #[sea_orm(has_many)]
        pub pets: HasMany<super::pet::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod pet {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "citizen_pet")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub owner_id: i32,
        pub name: String,
        #[sea_orm(belongs_to, from = "owner_id", to = "id")]
        pub owner: BelongsTo<super::owner::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

async fn setup(backend: Backend, test: &str) -> Option<TestDb> {
    let tdb = common::open(backend, test, 4).await?;
    let schema = Schema::new(tdb.db.get_database_backend());
    tdb.db
        .execute(&schema.create_table_from_entity(item::Entity))
        .await
        .expect("create item");
    tdb.db
        .execute(&schema.create_table_from_entity(owner::Entity))
        .await
        .expect("create owner");
    tdb.db
        .execute(&schema.create_table_from_entity(pet::Entity))
        .await
        .expect("create pet");
    Some(tdb)
}

fn resolver(tdb: &TestDb) -> ConflictResolver {
    ConflictResolver::builder(tdb.db.clone())
        .retries(2)
        .backoff(Backoff::none())
        .contention(Contention::Off)
        .build()
}

fn new_item(id: i32, amount: i64) -> item::ActiveModel {
    item::ActiveModel {
        id: Set(id),
        amount: Set(amount),
    }
}

async fn ids(tdb: &TestDb) -> Vec<i32> {
    let mut ids: Vec<i32> = item::Entity::find()
        .all(&tdb.db)
        .await
        .expect("read items")
        .into_iter()
        .map(|i| i.id)
        .collect();
    ids.sort_unstable();
    ids
}

// ---------------------------------------------------------------- helpers written for any connection

/// Books an item in a transaction of its own (`begin`), then commits it or
/// rolls it back.
async fn book<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    id: i32,
    keep: bool,
) -> Result<(), DbErr> {
    let t = db.begin().await?;
    new_item(id, 10).insert(&t).await?;
    if keep {
        t.commit().await
    } else {
        t.rollback().await
    }
}

/// Books an item through `transaction(|t| …)`: committed on `Ok`, rolled
/// back on `Err`.
async fn book_in_closure<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    id: i32,
    keep: bool,
) -> Result<(), sea_orm::TransactionError<DbErr>> {
    db.transaction::<_, (), DbErr>(move |t| {
        Box::pin(async move {
            new_item(id, 100).insert(t).await?;
            if keep {
                Ok(())
            } else {
                Err(DbErr::Custom("changed my mind".into()))
            }
        })
    })
    .await
}

/// The sum of every item's amount, streamed row by row.
async fn total<C: ConnectionTrait + StreamTrait>(db: &C) -> Result<i64, DbErr> {
    let mut rows = item::Entity::find().stream(db).await?;
    let mut sum = 0;
    while let Some(row) = rows.try_next().await? {
        sum += row.amount;
    }
    Ok(sum)
}

#[tokio::test]
async fn generic_helpers_take_the_managed_txn_savepoints_commit_and_roll_back_and_stream() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "citizen_helpers").await else {
            continue;
        };
        let r = resolver(&tdb);
        let seen = r
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    book(txn, 1, true).await?;
                    book(txn, 2, false).await?;
                    book_in_closure(txn, 3, true)
                        .await
                        .map_err(|e| DbErr::Custom(e.to_string()))?;
                    let refused = book_in_closure(txn, 4, false).await;
                    assert!(
                        matches!(refused, Err(sea_orm::TransactionError::Transaction(_))),
                        "{refused:?}"
                    );
                    // a savepoint of a savepoint
                    let outer = txn.begin().await?;
                    book(&outer, 5, true).await?;
                    book(&outer, 6, false).await?;
                    outer.commit().await?;
                    Ok::<_, conflictkit::Error>(total(txn).await?)
                })
            })
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(
            seen,
            10 + 100 + 10,
            "{backend:?}: the stream saw the transaction's own rows"
        );
        assert_eq!(
            ids(&tdb).await,
            [1, 3, 5],
            "{backend:?}: released savepoints committed, rolled-back ones left nothing"
        );
        assert_eq!(total(&tdb.db).await.unwrap(), 120, "{backend:?}");
    }
}

#[tokio::test]
async fn active_model_ex_saves_nested_models_inside_a_managed_body() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "citizen_model_ex").await else {
            continue;
        };
        let r = resolver(&tdb);
        let saved = r
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    let owner = owner::ActiveModel::builder()
                        .set_name("Ada")
                        .add_pet(pet::ActiveModel::builder().set_name("Rex"))
                        .add_pet(pet::ActiveModel::builder().set_name("Tom"))
                        .save(txn)
                        .await?;
                    Ok::<_, conflictkit::Error>(owner.id.unwrap())
                })
            })
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        let pets = pet::Entity::find().all(&tdb.db).await.unwrap();
        assert_eq!(pets.len(), 2, "{backend:?}");
        assert!(pets.iter().all(|p| p.owner_id == saved), "{backend:?}");

        // the same save in a body that then fails leaves nothing
        let failed = r
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    owner::ActiveModel::builder()
                        .set_name("Bob")
                        .add_pet(pet::ActiveModel::builder().set_name("Kit"))
                        .save(txn)
                        .await?;
                    Err::<(), _>(conflictkit::Error::from(DbErr::Custom("no".into())))
                })
            })
            .await;
        assert!(failed.is_err(), "{backend:?}");
        assert_eq!(owner::Entity::find().count(&tdb.db).await.unwrap(), 1);
        assert_eq!(pet::Entity::find().count(&tdb.db).await.unwrap(), 2);
    }
}

// ---------------------------------------------------------------- errors inside savepoints

#[tokio::test]
async fn an_error_swallowed_in_a_savepoint_that_was_rolled_back_is_handled() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "citizen_handled").await else {
            continue;
        };
        let r = resolver(&tdb);
        r.managed(|txn: &Txn| {
            Box::pin(async move {
                new_item(1, 1).insert(txn).await?;
                // rolled back explicitly
                let sp = txn.begin().await?;
                let duplicate = new_item(1, 2).insert(&sp).await;
                assert!(duplicate.is_err());
                sp.rollback().await?;
                new_item(2, 2).insert(txn).await?;
                // dropped by an early return (what `?` does in a helper)
                {
                    let sp = txn.begin().await?;
                    let _swallowed = new_item(2, 3).insert(&sp).await;
                }
                // the next statement proves the queued rollback went through
                new_item(3, 3).insert(txn).await?;
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(ids(&tdb).await, [1, 2, 3], "{backend:?}");
    }
}

#[tokio::test]
async fn an_error_swallowed_in_a_savepoint_without_rollback_still_counts() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "citizen_swallowed").await else {
            continue;
        };
        let r = resolver(&tdb);
        let outcome = r
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    new_item(1, 1).insert(txn).await?;
                    let sp = txn.begin().await?;
                    let _swallowed = new_item(1, 2).insert(&sp).await;
                    // PostgreSQL refuses the RELEASE (25P02); ignored too
                    let _release = sp.commit().await;
                    Ok::<_, conflictkit::Error>(())
                })
            })
            .await;
        if backend == Backend::Postgres {
            let err = outcome.expect_err("PostgreSQL aborted the transaction");
            assert!(err.is_aborted_transaction(), "{err}");
            assert_eq!(ids(&tdb).await, Vec::<i32>::new(), "nothing committed");
        } else {
            outcome.unwrap_or_else(|e| panic!("{backend:?}: {e}"));
            assert_eq!(
                ids(&tdb).await,
                [1],
                "{backend:?}: the duplicate failed alone and the rest committed"
            );
        }
    }
}

#[tokio::test]
async fn hooks_of_a_rolled_back_or_dropped_savepoint_never_run() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "citizen_hooks").await else {
            continue;
        };
        let r = resolver(&tdb);
        let ran = Arc::new([(); 4].map(|_| AtomicUsize::new(0)));
        let count = |i: usize| {
            let ran = ran.clone();
            move || {
                ran[i].fetch_add(1, Ordering::SeqCst);
            }
        };
        r.managed(|txn: &Txn| {
            let (outer, rolled_back, released, dropped) = (count(0), count(1), count(2), count(3));
            Box::pin(async move {
                txn.after_commit(outer);
                let sp = txn.begin().await?;
                sp.after_commit(rolled_back);
                new_item(1, 1).insert(&sp).await?;
                sp.rollback().await?;
                let sp = txn.begin().await?;
                sp.after_commit(released);
                new_item(2, 2).insert(&sp).await?;
                sp.commit().await?;
                let sp: TxnSavepoint = txn.begin().await?;
                sp.after_commit(dropped);
                drop(sp);
                new_item(3, 3).insert(txn).await?;
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        let ran: Vec<usize> = ran.iter().map(|n| n.load(Ordering::SeqCst)).collect();
        assert_eq!(
            ran,
            [1, 0, 1, 0],
            "{backend:?}: outer, rolled back, released, dropped"
        );
        assert_eq!(ids(&tdb).await, [2, 3], "{backend:?}");
    }
}

#[tokio::test]
async fn a_savepoint_refuses_an_isolation_or_access_mode_of_its_own() {
    let Some(tdb) = setup(Backend::Sqlite, "citizen_config").await else {
        return;
    };
    let r = resolver(&tdb);
    let err = r
        .managed(|txn: &Txn| {
            Box::pin(async move {
                txn.begin_with_config(None, Some(AccessMode::ReadOnly))
                    .await?;
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await
        .expect_err("a savepoint cannot change the access mode");
    let refusal = NestedOption::find(&err).expect("typed");
    assert_eq!(refusal.label(), "begin_with_config");
    assert!(err.to_string().contains("access mode"), "{err}");
}

// ---------------------------------------------------------------- calls that compose

/// Writes a ledger entry first, then refuses an amount over 50.
#[managed_transaction]
async fn debit(txn: &Txn, entry: i32, amount: i64) -> Result<i64, conflictkit::Error> {
    new_item(entry, -amount).insert(txn).await?;
    if amount > 50 {
        return Err(DbErr::Custom(format!("insufficient for {amount}")).into());
    }
    Ok(amount)
}

/// Writes its own entry, then debits through `debit(txn, …)` and handles a
/// refusal.
#[managed_transaction]
async fn transfer(txn: &Txn, entry: i32, amount: i64) -> Result<&'static str, conflictkit::Error> {
    new_item(entry, amount).insert(txn).await?;
    match debit(txn, entry + 1, amount).await {
        Ok(_) => Ok("paid"),
        Err(_) => Ok("refused"),
    }
}

#[tokio::test]
async fn a_managed_call_made_with_the_txn_runs_as_a_savepoint_of_it() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "citizen_compose").await else {
            continue;
        };
        let r = resolver(&tdb);
        assert_eq!(
            transfer(&r, 10, 80).await.unwrap(),
            "refused",
            "{backend:?}"
        );
        assert_eq!(
            ids(&tdb).await,
            [10],
            "{backend:?}: the refused debit's entry was rolled back, the caller's committed"
        );
        assert_eq!(transfer(&r, 20, 30).await.unwrap(), "paid", "{backend:?}");
        assert_eq!(ids(&tdb).await, [10, 20, 21], "{backend:?}");
        // outside a body, with the resolver: a transaction of its own
        assert_eq!(debit(&r, 30, 5).await.unwrap(), 5);
        assert_eq!(ids(&tdb).await, [10, 20, 21, 30], "{backend:?}");
        assert_eq!(
            r.stats().success,
            3,
            "{backend:?}: nested calls are not calls of their own"
        );

        // a guard's `Txn` is no managed body's: a typed refusal, nothing ran
        let guard = r.transaction().await.unwrap();
        let err = debit(&guard, 40, 1).await.unwrap_err();
        let refusal = TxnOutsideItsBody::find(&err).unwrap_or_else(|| panic!("{err}"));
        assert!(refusal.label().ends_with("debit"), "{err}");
        guard.rollback().await.unwrap();
        assert_eq!(ids(&tdb).await, [10, 20, 21, 30], "{backend:?}");
    }
}

/// Must commit when it returns: refuses to run nested.
#[managed_transaction(durable)]
async fn pay_out(txn: &Txn, entry: i32) -> Result<(), conflictkit::Error> {
    new_item(entry, 1).insert(txn).await?;
    Ok(())
}

#[managed_transaction]
async fn close_and_pay_out(txn: &Txn) -> Result<(), conflictkit::Error> {
    new_item(1, 1).insert(txn).await?;
    pay_out(txn, 2).await
}

#[tokio::test]
async fn a_durable_call_refuses_to_run_nested() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "citizen_durable").await else {
            continue;
        };
        let r = resolver(&tdb);
        let err = close_and_pay_out(&r).await.unwrap_err();
        let refusal = DurableNested::find(&err).unwrap_or_else(|| panic!("{backend:?}: {err}"));
        assert!(refusal.label().ends_with("pay_out"), "{err}");
        assert!(refusal.outer().ends_with("close_and_pay_out"), "{err}");
        assert!(err.to_string().contains("after"), "says what to do: {err}");
        assert_eq!(
            ids(&tdb).await,
            Vec::<i32>::new(),
            "{backend:?}: nothing ran"
        );
        // through the resolver's closure form and `CallOptions::durable`
        let inner = r.clone();
        let err = r
            .managed(move |_: &Txn| {
                let inner = inner.clone();
                Box::pin(async move {
                    inner
                        .run(
                            conflictkit::resolver::CallOptions::new("durable_closure")
                                .durable(true),
                            |_: &Txn| Box::pin(async { Ok::<_, conflictkit::Error>(()) }),
                        )
                        .await
                })
            })
            .await
            .unwrap_err();
        assert!(DurableNested::find(&err).is_some(), "{err}");
        // alone it runs
        pay_out(&r, 3).await.unwrap();
        assert_eq!(ids(&tdb).await, [3], "{backend:?}");
    }
}
