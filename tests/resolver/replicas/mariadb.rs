//! Read-only calls on the real MariaDB replica of `scripts/replicas.sh`
//! (server_id 2, read_only, replicating server_id 1 by GTID), through the
//! scenarios the PostgreSQL tests run (`Pair::open_on(Backend::MySql, …)`,
//! where pausing replay is `STOP SLAVE SQL_THREAD`): they land there, a
//! write there is `WriteOnReplica`, a stopped SQL thread sends them to the
//! primary and starting it brings them back, read-your-writes waits in
//! `MASTER_GTID_WAIT` or reads the primary. (Its refusals are in
//! `refusals`.)

use super::routing::a_write_on_the_replica_is_a_typed_error;
use super::staleness::{lagging_replica_sends_reads_to_the_primary, read_your_writes};
use super::*;

async fn open(test: &str) -> Option<Pair> {
    Pair::open_on(Backend::MySql, test, 100).await
}

#[managed_transaction(read_only)]
async fn server_and_read_only(txn: &Txn) -> Result<String, conflictkit::Error> {
    Ok(one_text(txn, "SELECT CONCAT(@@server_id, ' ', @@read_only) AS v").await?)
}

#[tokio::test]
async fn read_only_calls_run_on_the_mariadb_replica_and_the_others_on_the_primary() {
    let Some(pair) = open("my_ro_on_replica").await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(5)).await;
    let t = pair.table.as_str();
    assert_eq!(
        read(&resolver, t, CallOptions::new("read")).await.unwrap(),
        (true, 100)
    );
    assert_eq!(
        server_and_read_only(&resolver).await.unwrap(),
        "2 ON",
        "#[managed_transaction(read_only)] runs on the replica (server_id 2, read_only)"
    );
    let wrote = resolver
        .managed(|txn: &Txn| Box::pin(where_and_balance(txn, t)))
        .await
        .unwrap();
    assert_eq!(wrote, (false, 100), "a read-write call runs on the primary");
    let stats = resolver.replica_stats();
    assert_eq!(
        (stats.on_replica, stats.primary_lagging, stats.primary_down),
        (2, 0, 0)
    );
    // positions are GTIDs of the primary's domain 0 and server 1, and the
    // sampler follows the replica's up to the primary's
    let token = resolver.commit_position().await.unwrap();
    assert!(token.to_string().starts_with("0-1-"), "{token}");
    let until = tokio::time::Instant::now() + BOUND;
    while resolver.replica_status()[0]
        .replayed
        .is_none_or(|r| r < token)
    {
        assert!(
            tokio::time::Instant::now() < until,
            "the sampler never saw the replica at {token}: {:?}",
            resolver.replica_status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_write_in_a_call_routed_to_the_mariadb_replica_is_a_typed_error() {
    if let Some(pair) = open("my_ro_write").await {
        a_write_on_the_replica_is_a_typed_error(&pair).await;
    }
}

#[tokio::test]
async fn a_stopped_sql_thread_sends_reads_to_the_primary_and_starting_it_brings_them_back() {
    if let Some(pair) = open("my_ro_lag").await {
        lagging_replica_sends_reads_to_the_primary(&pair).await;
    }
}

#[tokio::test]
async fn read_your_writes_on_mariadb_waits_for_the_sql_thread_and_reads_the_primary_when_the_wait_runs_out()
 {
    if let Some(pair) = open("my_ro_ryw").await {
        read_your_writes(&pair).await;
    }
}
