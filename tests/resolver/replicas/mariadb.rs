//! Read-only calls on the real MariaDB replica of `scripts/replicas.sh`
//! (server_id 2, read_only, replicating server_id 1 by GTID): they land
//! there, a write there is `WriteOnReplica`, a stopped SQL thread sends
//! them to the primary and starting it brings them back, read-your-writes
//! waits in `MASTER_GTID_WAIT` or reads the primary, and `build_checked`
//! refuses a primary and a replica of another server.

use super::*;

/// The MariaDB primary and replica for one test, with a table of its own
/// holding account 1 with `balance`, replicated.
struct MariaPair {
    primary_url: String,
    replica_url: String,
    /// A plain pool on the replica, to stop and start its SQL thread.
    replica_admin: DatabaseConnection,
    table: String,
}

fn mariadb_urls() -> Option<(String, String)> {
    urls_of(
        "CONFLICTKIT_MARIADB_PRIMARY_URL",
        "CONFLICTKIT_MARIADB_REPLICA_URL",
    )
}

impl MariaPair {
    async fn open(test: &str, balance: i64) -> Option<MariaPair> {
        let (primary_url, replica_url) = mariadb_urls()?;
        let replica_admin = pool(&replica_url, 2).await;
        // a failed test may have left the SQL thread stopped
        sql(&replica_admin, "START SLAVE")
            .await
            .expect("start replication");
        let table = common::unique_name(test);
        let primary = pool(&primary_url, 2).await;
        sql(
            &primary,
            &format!(
                "CREATE TABLE {table} (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB"
            ),
        )
        .await
        .expect("create the table");
        sql(
            &primary,
            &format!("INSERT INTO {table} VALUES (1, {balance})"),
        )
        .await
        .expect("insert the account");
        let pair = MariaPair {
            primary_url,
            replica_url,
            replica_admin,
            table,
        };
        let at = one_text(&primary, "SELECT @@gtid_binlog_pos AS v")
            .await
            .unwrap();
        pair.applied(&at).await;
        Some(pair)
    }

    /// Waits (in the server, bounded) until the replica has applied `gtids`.
    async fn applied(&self, gtids: &str) {
        let reached = one_text(
            &self.replica_admin,
            &format!(
                "SELECT CAST(MASTER_GTID_WAIT('{gtids}', {}) AS CHAR) AS v",
                BOUND.as_secs()
            ),
        )
        .await
        .expect("MASTER_GTID_WAIT");
        assert_eq!(
            reached, "0",
            "the replica did not apply {gtids} in {BOUND:?}"
        );
    }

    /// A resolver on the primary with the replica, checked, its lag sampled
    /// every 20 ms, returned once its sampler has seen the replica fresh.
    async fn resolver(&self, max_lag: Duration) -> ConflictResolver {
        let resolver = ConflictResolver::builder(pool(&self.primary_url, 8).await)
            .replica(pool(&self.replica_url, 8).await)
            .max_lag(max_lag)
            .lag_sample_interval(Duration::from_millis(20))
            .build_checked()
            .await
            .expect("the MariaDB replica of scripts/replicas.sh replicates its primary");
        until_fresh(&resolver).await;
        resolver
    }

    /// `STOP SLAVE SQL_THREAD` (it returns once the thread has stopped).
    async fn stop_sql_thread(&self) {
        sql(&self.replica_admin, "STOP SLAVE SQL_THREAD")
            .await
            .expect("stop the SQL thread");
    }

    async fn start_sql_thread(&self) {
        sql(&self.replica_admin, "START SLAVE SQL_THREAD")
            .await
            .expect("start the SQL thread");
    }
}

/// Where a body ran (`@@server_id`: 1 the primary, 2 the replica) and the
/// balance of account 1 it read there.
async fn server_and_balance(txn: &Txn, table: &str) -> Result<(u32, i64), conflictkit::Error> {
    let row = txn
        .query_one_raw(Statement::from_string(
            txn.get_database_backend(),
            format!(
                "SELECT CAST(@@server_id AS CHAR) AS s, \
                 CAST((SELECT balance FROM {table} WHERE id = 1) AS CHAR) AS b"
            ),
        ))
        .await?
        .expect("one row");
    let (s, b): (String, String) = (row.try_get("", "s")?, row.try_get("", "b")?);
    Ok((s.parse().unwrap(), b.parse().unwrap()))
}

async fn read_on(
    resolver: &ConflictResolver,
    table: &str,
    opts: CallOptions,
) -> Result<(u32, i64), conflictkit::Error> {
    resolver
        .run(opts.read_only(true), |txn: &Txn| {
            Box::pin(server_and_balance(txn, table))
        })
        .await
}

const PRIMARY: u32 = 1;
const REPLICA: u32 = 2;

#[managed_transaction(read_only)]
async fn server_and_read_only(txn: &Txn) -> Result<String, conflictkit::Error> {
    Ok(one_text(txn, "SELECT CONCAT(@@server_id, ' ', @@read_only) AS v").await?)
}

#[tokio::test]
async fn read_only_calls_run_on_the_mariadb_replica_and_the_others_on_the_primary() {
    let Some(pair) = MariaPair::open("my_ro_on_replica", 100).await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(5)).await;
    let t = pair.table.as_str();
    assert_eq!(
        read_on(&resolver, t, CallOptions::new("read"))
            .await
            .unwrap(),
        (REPLICA, 100)
    );
    assert_eq!(
        server_and_read_only(&resolver).await.unwrap(),
        "2 ON",
        "#[managed_transaction(read_only)] runs on the read_only replica"
    );
    let wrote = resolver
        .managed(|txn: &Txn| Box::pin(server_and_balance(txn, t)))
        .await
        .unwrap();
    assert_eq!(
        wrote,
        (PRIMARY, 100),
        "a read-write call runs on the primary"
    );
    let stats = resolver.replica_stats();
    assert_eq!(
        (stats.on_replica, stats.primary_lagging, stats.primary_down),
        (2, 0, 0)
    );
    let status = resolver.replica_status()[0];
    assert!(status.up);
    let replayed = status.replayed.expect("the replica's GTID");
    assert!(
        replayed.to_string().starts_with("0-1-"),
        "a GTID of the primary's domain and server: {replayed}"
    );
}

#[tokio::test]
async fn a_write_in_a_call_routed_to_the_mariadb_replica_is_a_typed_error() {
    let Some(pair) = MariaPair::open("my_ro_write", 100).await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(5)).await;
    let t = pair.table.as_str();
    let err = resolver
        .run(CallOptions::new("sneaky").read_only(true), |txn: &Txn| {
            Box::pin(async move {
                sql(txn, &format!("UPDATE {t} SET balance = 0 WHERE id = 1")).await?;
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await
        .unwrap_err();
    let found = WriteOnReplica::find(&err).expect("a WriteOnReplica");
    assert_eq!(found.label(), "sneaky");
    let message = err.to_string();
    assert!(message.contains("Drop `read_only`"), "{message}");
    assert!(
        message.contains("READ ONLY"),
        "the server's refusal (1792) is kept: {message}"
    );
    let stats = resolver.replica_stats();
    assert_eq!(stats.on_replica, 1);
    assert_eq!(
        stats.primary_fell_back + stats.primary_down + stats.primary_lagging,
        0,
        "never run again on the primary"
    );
    let (_, balance) = resolver
        .managed(|txn: &Txn| Box::pin(server_and_balance(txn, t)))
        .await
        .unwrap();
    assert_eq!(balance, 100, "nothing was written on the primary");
}

#[tokio::test]
async fn a_stopped_sql_thread_sends_reads_to_the_primary_and_starting_it_brings_them_back() {
    let Some(pair) = MariaPair::open("my_ro_lag", 100).await else {
        return;
    };
    let max_lag = Duration::from_millis(300);
    let resolver = pair.resolver(max_lag).await;
    let t = pair.table.as_str();
    assert_eq!(
        read_on(&resolver, t, CallOptions::new("fresh"))
            .await
            .unwrap(),
        (REPLICA, 100)
    );
    pair.stop_sql_thread().await;
    set_balance(&resolver, t, 200).await;
    // the sampler sees the lag grow (a signal, bounded, not a sleep)
    let until = tokio::time::Instant::now() + BOUND;
    while resolver.replica_status()[0]
        .lag
        .is_none_or(|lag| lag <= max_lag)
    {
        assert!(
            tokio::time::Instant::now() < until,
            "the lag never passed {max_lag:?}: {:?}",
            resolver.replica_status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(resolver.replica_status()[0].up, "stopped is not down");
    assert_eq!(
        read_on(&resolver, t, CallOptions::new("bounded"))
            .await
            .unwrap(),
        (PRIMARY, 200),
        "over the bound: the primary, and the new balance"
    );
    assert_eq!(resolver.replica_stats().primary_lagging, 1);
    // a call that accepts an hour of lag reads the stopped replica's old data
    let lenient = CallOptions::new("lenient").max_lag(Duration::from_secs(3600));
    assert_eq!(
        read_on(&resolver, t, lenient).await.unwrap(),
        (REPLICA, 100)
    );
    pair.start_sql_thread().await;
    let until = tokio::time::Instant::now() + BOUND;
    loop {
        let (server, balance) = read_on(&resolver, t, CallOptions::new("again"))
            .await
            .unwrap();
        if server == REPLICA {
            assert_eq!(
                balance, 200,
                "back on the replica within the bound: it has the write"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "reads never went back to the replica: {:?}",
            resolver.replica_status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn read_your_writes_on_mariadb_waits_for_the_sql_thread_and_reads_the_primary_when_the_wait_runs_out()
 {
    let Some(pair) = MariaPair::open("my_ro_ryw", 100).await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(3600)).await;
    let t = pair.table.clone();
    pair.stop_sql_thread().await;
    set_balance(&resolver, &t, 300).await;
    let token = resolver.commit_position().await.unwrap();
    // the token travels as text (a cookie: a GTID) and comes back
    let text = token.to_string();
    assert!(text.starts_with("0-1-"), "{text}");
    let token: CommitPosition = text.parse().unwrap();
    let reader = {
        let (resolver, t) = (resolver.clone(), t.clone());
        tokio::spawn(async move {
            let opts = CallOptions::new("mine").after(token).replica_wait(BOUND);
            read_on(&resolver, &t, opts).await
        })
    };
    let until = tokio::time::Instant::now() + BOUND;
    while resolver.replica_stats().waiting == 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "the call never waited for the replica: {:?}",
            resolver.replica_stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !reader.is_finished(),
        "the call waits while the SQL thread is stopped"
    );
    pair.start_sql_thread().await;
    assert_eq!(
        reader.await.unwrap().unwrap(),
        (REPLICA, 300),
        "on the replica, once it applied the write"
    );
    let stats = resolver.replica_stats();
    assert_eq!(
        (stats.waited, stats.on_replica, stats.primary_wait_expired),
        (1, 1, 0)
    );

    // the SQL thread stays stopped: the wait runs out and the primary answers
    pair.stop_sql_thread().await;
    set_balance(&resolver, &t, 400).await;
    let token = resolver.commit_position().await.unwrap();
    let opts = CallOptions::new("mine")
        .after(token)
        .replica_wait(Duration::from_millis(300));
    assert_eq!(read_on(&resolver, &t, opts).await.unwrap(), (PRIMARY, 400));
    let stats = resolver.replica_stats();
    assert_eq!((stats.waited, stats.primary_wait_expired), (2, 1));
    // without the token, the same call reads the replica's old balance
    assert_eq!(
        read_on(&resolver, &t, CallOptions::new("anyone"))
            .await
            .unwrap(),
        (REPLICA, 300)
    );
    pair.start_sql_thread().await;
}

#[tokio::test]
async fn a_mariadb_primary_given_as_a_replica_is_refused() {
    let Some((primary_url, _)) = mariadb_urls() else {
        return;
    };
    let refused = ConflictResolver::builder(pool(&primary_url, 2).await)
        .replica(pool(&primary_url, 2).await)
        .build_checked()
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ReplicaRefused::NotAReplica { replica: 0 }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("SHOW SLAVE STATUS is empty"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_replica_of_another_mariadb_server_is_refused() {
    let (Some((_, replica_url)), Some(other_primary)) =
        (mariadb_urls(), common::server_url(Backend::MySql))
    else {
        return;
    };
    let refused = ConflictResolver::builder(pool(&other_primary, 2).await)
        .replica(pool(&replica_url, 2).await)
        .build_checked()
        .await
        .unwrap_err();
    let ReplicaRefused::OtherPrimary {
        replica,
        primary,
        replicates,
    } = &refused
    else {
        panic!("{refused:?}");
    };
    assert_eq!(*replica, 0);
    assert_ne!(primary, replicates);
    assert!(
        refused.to_string().contains("replicates another server")
            && refused.to_string().contains("CHANGE MASTER TO"),
        "{refused}"
    );
}
