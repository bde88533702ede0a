//! Where read-only calls run: on the replica (the option, the builder's
//! default, the macro), a write there is a typed error, and the
//! `conflictkit.reads` metric counts where each ran.

use super::*;

#[tokio::test]
async fn read_only_calls_run_on_the_replica_and_the_others_on_the_primary() {
    let Some(pair) = Pair::open("ro_on_replica", 100).await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(5)).await;
    let t = pair.table.as_str();
    assert_eq!(
        read(&resolver, t, CallOptions::new("read")).await.unwrap(),
        (true, 100)
    );
    assert!(
        in_recovery(&resolver).await.unwrap(),
        "#[managed_transaction(read_only)] runs on the replica"
    );
    let wrote = resolver
        .managed(|txn: &Txn| Box::pin(where_and_balance(txn, t)))
        .await
        .unwrap();
    assert_eq!(wrote, (false, 100), "a read-write call runs on the primary");
    // the resolver's default read_only makes every call a replica read
    let reader = ConflictResolver::builder(pool(&pair.primary_url, 4).await)
        .replica(pool(&pair.replica_url, 4).await)
        .read_only(true)
        .build_checked()
        .await
        .unwrap();
    until_fresh(&reader).await;
    let (on_replica, _) = reader
        .managed(|txn: &Txn| Box::pin(where_and_balance(txn, t)))
        .await
        .unwrap();
    assert!(on_replica);
    let stats = resolver.replica_stats();
    assert_eq!(
        (stats.on_replica, stats.primary_lagging, stats.primary_down),
        (2, 0, 0)
    );
    assert_eq!(reader.replica_stats().on_replica, 1);
}

#[tokio::test]
async fn a_write_in_a_call_routed_to_the_replica_is_a_typed_error_and_never_runs_on_the_primary() {
    if let Some(pair) = Pair::open("ro_write", 100).await {
        a_write_on_the_replica_is_a_typed_error(&pair).await;
    }
}

/// A write in a call routed to the replica: `WriteOnReplica`, with the
/// server's refusal as its source, and nothing written. (Every engine.)
pub(super) async fn a_write_on_the_replica_is_a_typed_error(pair: &Pair) {
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
        message
            .to_lowercase()
            .replace('-', " ")
            .contains("read only transaction"),
        "the server's refusal is kept: {message}"
    );
    assert!(std::error::Error::source(found).is_some());
    let stats = resolver.replica_stats();
    assert_eq!(stats.on_replica, 1);
    assert_eq!(
        stats.primary_fell_back + stats.primary_down + stats.primary_lagging,
        0
    );
    let (_, balance) = resolver
        .managed(|txn: &Txn| Box::pin(where_and_balance(txn, t)))
        .await
        .unwrap();
    assert_eq!(balance, 100, "nothing was written on the primary");
}

/// The `conflictkit.reads` counter, by route (metrics-util's debugging
/// recorder, installed for this test's thread only).
#[test]
fn where_reads_ran_is_counted_in_the_reads_metric() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ran = metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let pair = Pair::open("ro_metrics", 100).await?;
            let resolver = pair.resolver(Duration::from_secs(5)).await;
            let t = pair.table.as_str();
            let on_replica = read(&resolver, t, CallOptions::new("m")).await.unwrap();
            // a zero bound: no sampled replica is ever fresh enough
            let zero = CallOptions::new("m").max_lag(Duration::ZERO);
            let on_primary = read(&resolver, t, zero).await.unwrap();
            Some((on_replica.0, on_primary.0))
        })
    });
    let Some(ran) = ran else {
        return;
    };
    assert_eq!(ran, (true, false));
    // one snapshot: taking one drains the counters
    let snapshot = snapshotter.snapshot().into_vec();
    let counted = |route: &str| {
        snapshot
            .iter()
            .filter(|(ck, _, _, _)| {
                let key = ck.key();
                key.name() == "conflictkit.reads"
                    && key
                        .labels()
                        .any(|l| l.key() == "route" && l.value() == route)
                    && key
                        .labels()
                        .any(|l| l.key() == "conflictkit.label" && l.value() == "m")
            })
            .map(|(_, _, _, v)| match v {
                DebugValue::Counter(n) => *n,
                other => panic!("a counter, not {other:?}"),
            })
            .sum::<u64>()
    };
    assert_eq!(counted("replica"), 1);
    assert_eq!(counted("primary_lagging"), 1);
    assert_eq!(counted("primary_down"), 0);
}
