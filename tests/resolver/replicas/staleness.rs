//! Staleness and faults: a lagging replica sends reads to the primary,
//! read-your-writes waits for the replay (or reads the primary), and a
//! replica stopped midway loses no read.

use super::*;

#[tokio::test]
async fn reads_go_to_the_primary_while_the_replica_lags_past_the_bound() {
    if let Some(pair) = Pair::open("ro_lag", 100).await {
        lagging_replica_sends_reads_to_the_primary(&pair).await;
    }
}

/// Replay paused past the bound: reads go to the primary; a lenient bound
/// still reads the replica; resumed, reads come back to it. (Every engine.)
pub(super) async fn lagging_replica_sends_reads_to_the_primary(pair: &Pair) {
    let max_lag = Duration::from_millis(300);
    let resolver = pair.resolver(max_lag).await;
    let t = pair.table.as_str();
    assert_eq!(
        read(&resolver, t, CallOptions::new("fresh")).await.unwrap(),
        (true, 100)
    );
    pair.pause().await;
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
    assert!(resolver.replica_status()[0].up, "paused is not down");
    assert_eq!(
        read(&resolver, t, CallOptions::new("bounded"))
            .await
            .unwrap(),
        (false, 200),
        "over the bound: the primary, and the new balance"
    );
    assert_eq!(resolver.replica_stats().primary_lagging, 1);
    // a call that accepts an hour of lag reads the paused replica's old data:
    // the bound decided, not the pause
    let lenient = CallOptions::new("lenient").max_lag(Duration::from_secs(3600));
    assert_eq!(read(&resolver, t, lenient).await.unwrap(), (true, 100));
    pair.resume().await;
    let until = tokio::time::Instant::now() + BOUND;
    loop {
        let (on_replica, balance) = read(&resolver, t, CallOptions::new("again")).await.unwrap();
        if on_replica {
            assert_eq!(
                balance, 200,
                "back on the replica within the bound: it has the write"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "reads never went back to the replica"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = resolver.replica_stats();
    assert!(
        stats.primary_lagging >= 1 && stats.on_replica >= 3,
        "{stats:?}"
    );
}

#[tokio::test]
async fn read_your_writes_waits_for_the_replay_and_reads_the_primary_when_the_wait_runs_out() {
    if let Some(pair) = Pair::open("ro_ryw", 100).await {
        read_your_writes(&pair).await;
    }
}

/// A read carrying the token of a commit the paused replica lacks waits
/// for the replay, resumed; with a short wait it reads the primary. (Every
/// engine.)
pub(super) async fn read_your_writes(pair: &Pair) {
    let resolver = pair.resolver(Duration::from_secs(3600)).await;
    let t = pair.table.clone();
    pair.pause().await;
    set_balance(&resolver, &t, 300).await;
    let token = resolver.commit_position().await.unwrap();
    // the token travels as text (a cookie) and comes back
    let token: CommitPosition = token.to_string().parse().unwrap();
    let reader = {
        let (resolver, t) = (resolver.clone(), t.clone());
        tokio::spawn(async move {
            let opts = CallOptions::new("mine").after(token).replica_wait(BOUND);
            read(&resolver, &t, opts).await
        })
    };
    let until = tokio::time::Instant::now() + BOUND;
    while resolver.replica_stats().waiting == 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "the call never waited for the replica"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !reader.is_finished(),
        "the call waits while replay is paused"
    );
    pair.resume().await;
    assert_eq!(
        reader.await.unwrap().unwrap(),
        (true, 300),
        "on the replica, once it replayed the write"
    );
    let stats = resolver.replica_stats();
    assert_eq!(
        (stats.waited, stats.on_replica, stats.primary_wait_expired),
        (1, 1, 0)
    );

    // replay stays paused: the wait runs out and the primary answers
    pair.pause().await;
    set_balance(&resolver, &t, 400).await;
    let token = resolver.commit_position().await.unwrap();
    let opts = CallOptions::new("mine")
        .after(token)
        .replica_wait(Duration::from_millis(300));
    assert_eq!(read(&resolver, &t, opts).await.unwrap(), (false, 400));
    let stats = resolver.replica_stats();
    assert_eq!(
        (stats.waited, stats.primary_wait_expired),
        (2, 1),
        "{stats:?} {:?}",
        resolver.replica_status()
    );
    // without the token, the same call reads the replica's old balance
    assert_eq!(
        read(&resolver, &t, CallOptions::new("anyone"))
            .await
            .unwrap(),
        (true, 300)
    );
    pair.resume().await;
}

#[tokio::test]
async fn reads_go_on_on_the_primary_when_the_replica_is_stopped_midway() {
    let Some(pair) = Pair::open("ro_kill", 100).await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(5)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (resolver, t, stop) = (resolver.clone(), pair.table.clone(), stop.clone());
            tokio::spawn(async move {
                let mut calls = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let (_, balance) = read(&resolver, &t, CallOptions::new("reader")).await?;
                    assert_eq!(balance, 100);
                    calls += 1;
                }
                Ok::<_, conflictkit::Error>(calls)
            })
        })
        .collect();
    let until = tokio::time::Instant::now() + BOUND;
    while resolver.replica_stats().on_replica < 50 {
        assert!(
            tokio::time::Instant::now() < until,
            "the readers never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    replica_server("stop").await;
    let on_primary = |s: conflictkit::resolver::ReplicaStats| s.primary_down + s.primary_fell_back;
    let until = tokio::time::Instant::now() + BOUND;
    while on_primary(resolver.replica_stats()) < 50 {
        assert!(
            tokio::time::Instant::now() < until,
            "reads did not go on on the primary: {:?}",
            resolver.replica_stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let calls = reader.await.unwrap().expect("no read failed");
        assert!(calls > 0);
    }
    assert!(
        !resolver.replica_status()[0].up,
        "the replica is known down"
    );
    assert_eq!(resolver.stats().errors, 0, "{:?}", resolver.stats());
    // back up: reads return to it
    replica_server("start").await;
    let until = tokio::time::Instant::now() + BOUND;
    loop {
        let (on_replica, _) = read(&resolver, &pair.table, CallOptions::new("back"))
            .await
            .unwrap();
        if on_replica {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "reads never returned to the restarted replica"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
