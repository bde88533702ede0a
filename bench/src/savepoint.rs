//! Scenario **savepoint**: what a nested managed call costs. One task runs
//! managed calls of 8 row updates each, uncontended, three ways:
//!
//! - `flat`: the 8 updates in the body itself;
//! - `nested`: each update in a nested managed call (`bump(txn, …)`), so
//!   each one opens and releases a `SAVEPOINT`;
//! - `begin`: each update inside `txn.begin()` … `commit()` (SeaORM's own
//!   savepoint, through the `Txn`).
//!
//! The cost of one nested call is `(nested − flat) / 8` per call of the
//! outer function (the `begin` column likewise): two extra round trips
//! (`SAVEPOINT`, `RELEASE`) plus the resolver's bookkeeping.

use std::time::Instant;

use conflictkit::{ConflictResolver, Txn, managed_transaction};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use serde_json::json;

use crate::Config;
use crate::db::{PoolOpts, Target, stmt};
use crate::report::{JsonSink, Table, median, num};

/// Updates per outer call.
const INNER: usize = 8;
/// Default outer calls per run.
const DEFAULT_OPS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Flat,
    Nested,
    Begin,
}

impl Way {
    const ALL: [Way; 3] = [Way::Flat, Way::Nested, Way::Begin];

    fn name(self) -> &'static str {
        match self {
            Way::Flat => "flat",
            Way::Nested => "nested managed calls",
            Way::Begin => "txn.begin() savepoints",
        }
    }
}

async fn update(c: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    let backend = c.get_database_backend();
    c.execute_raw(stmt(
        backend,
        "UPDATE ck_sp SET n = n + 1 WHERE id = $1",
        vec![id.into()],
    ))
    .await?;
    Ok(())
}

/// One update as a nested managed call.
#[managed_transaction(label = "bench::bump")]
async fn bump(txn: &Txn, id: i64) -> Result<(), conflictkit::Error> {
    update(txn, id).await?;
    Ok(())
}

#[managed_transaction(label = "bench::outer")]
async fn outer(txn: &Txn, way: Way) -> Result<(), conflictkit::Error> {
    for i in 0..INNER as i64 {
        match way {
            Way::Flat => update(txn, i).await?,
            Way::Nested => bump(txn, i).await?,
            Way::Begin => {
                let sp = txn.begin().await?;
                update(&sp, i).await?;
                sp.commit().await?;
            }
        }
    }
    Ok(())
}

async fn setup(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("DROP TABLE IF EXISTS ck_sp").await?;
    db.execute_unprepared("CREATE TABLE ck_sp (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
        .await?;
    for i in 0..INNER as i64 {
        db.execute_raw(stmt(
            db.get_database_backend(),
            "INSERT INTO ck_sp (id, n) VALUES ($1, 0)",
            vec![i.into()],
        ))
        .await?;
    }
    Ok(())
}

pub(crate) async fn run(
    target: &Target,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let label = target.label();
    let backend = label.as_str();
    let ops = cfg.ops.unwrap_or(DEFAULT_OPS);
    let db = target
        .pool(PoolOpts {
            ping: false,
            session_serializable: false,
            max_connections: 2,
        })
        .await?;
    setup(&db).await?;
    let resolver = ConflictResolver::new(db.clone());
    // warm-up
    for way in Way::ALL {
        for _ in 0..ops / 10 + 1 {
            outer(&resolver, way).await?;
        }
    }
    let mut per_call: Vec<Vec<f64>> = vec![Vec::new(); Way::ALL.len()];
    for rep in 0..cfg.repeat {
        let mut order = Way::ALL.to_vec();
        let shift = rep % order.len();
        order.rotate_left(shift);
        for way in order {
            let started = Instant::now();
            for _ in 0..ops {
                outer(&resolver, way).await?;
            }
            let us = started.elapsed().as_secs_f64() * 1e6 / ops as f64;
            eprintln!(
                "  savepoint {backend} {:<24} rep {}: {us:>8.1} µs per outer call",
                way.name(),
                rep + 1
            );
            sink.write(json!({
                "scenario": "savepoint", "kind": "run", "backend": backend, "way": way.name(),
                "rep": rep, "ops": ops, "inner": INNER, "us_per_outer_call": us,
            }))?;
            per_call[way as usize].push(us);
        }
    }
    let medians: Vec<f64> = per_call.into_iter().map(median).collect();
    let flat = medians[Way::Flat as usize];
    let mut table = Table::new(
        format!(
            "savepoint cost on {backend}: {INNER} updates per call, {ops} calls x {} runs (medians)",
            cfg.repeat
        ),
        vec!["way", "µs per outer call", "µs per savepoint over flat"],
    );
    for way in Way::ALL {
        let m = medians[way as usize];
        let extra = if way == Way::Flat {
            "–".to_owned()
        } else {
            num((m - flat) / INNER as f64, 1)
        };
        table.row(vec![way.name().to_owned(), num(m, 1), extra]);
        sink.write(json!({
            "scenario": "savepoint", "kind": "median", "backend": backend, "way": way.name(),
            "us_per_outer_call": m, "us_per_savepoint": (m - flat) / INNER as f64,
        }))?;
    }
    table.print();
    db.close().await?;
    Ok(())
}
