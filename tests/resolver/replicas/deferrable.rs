//! `deferrable` reports on the primary beside concurrent transfers.

use super::*;

#[tokio::test]
async fn deferrable_reports_beside_transfers_never_conflict() {
    let Some(pair) = Pair::open("ro_deferrable", 1000).await else {
        return;
    };
    let t = pair.table.clone();
    let primary = pool(&pair.primary_url, 16).await;
    sql(
        &primary,
        &format!("INSERT INTO {t} SELECT g, 1000 FROM generate_series(2, 8) g"),
    )
    .await
    .unwrap();
    let transfers = ConflictResolver::builder(primary.clone())
        .retries(1000)
        .build();
    // the reports' resolver has the replica: deferrable still runs on the primary
    let reports = pair.resolver(Duration::from_secs(5)).await;
    let done = Arc::new(AtomicBool::new(false));
    let movers: Vec<_> = (0..4)
        .map(|w: i64| {
            let (transfers, t) = (transfers.clone(), t.clone());
            tokio::spawn(async move {
                for n in 0..40i64 {
                    let (from, to) = ((w + n) % 8 + 1, (w * 3 + n + 1) % 8 + 1);
                    if from == to {
                        continue;
                    }
                    let t = t.as_str();
                    transfers
                        .managed(|txn: &Txn| {
                            Box::pin(async move {
                                let b = one_text(txn, &format!("SELECT balance::text AS v FROM {t} WHERE id = {from}")).await?;
                                let amount = b.parse::<i64>().unwrap().min(7);
                                sql(txn, &format!("UPDATE {t} SET balance = balance - {amount} WHERE id = {from}")).await?;
                                sql(txn, &format!("UPDATE {t} SET balance = balance + {amount} WHERE id = {to}")).await?;
                                Ok::<_, conflictkit::Error>(())
                            })
                        })
                        .await?;
                }
                Ok::<_, conflictkit::Error>(())
            })
        })
        .collect();
    let reporters: Vec<_> = (0..2)
        .map(|_| {
            let (reports, t, done) = (reports.clone(), t.clone(), done.clone());
            tokio::spawn(async move {
                let mut runs = 0u32;
                while !done.load(Ordering::Relaxed) || runs == 0 {
                    let t = t.as_str();
                    let opts = CallOptions::new("report").deferrable(true).retries(0);
                    let (total, mode, replica) = reports
                        .run(opts, |txn: &Txn| {
                            Box::pin(async move {
                                let total = one_text(txn, &format!("SELECT sum(balance)::text AS v FROM {t}")).await?;
                                let mode = one_text(txn, "SELECT current_setting('transaction_isolation') || ' ' || current_setting('transaction_read_only') || ' ' || current_setting('transaction_deferrable') AS v").await?;
                                let replica = one_text(txn, "SELECT pg_is_in_recovery()::text AS v").await?;
                                Ok::<_, conflictkit::Error>((total, mode, replica))
                            })
                        })
                        .await?;
                    assert_eq!(total, "8000", "a report sees a consistent snapshot");
                    assert_eq!(mode, "serializable on on");
                    assert_eq!(replica, "false", "deferrable reports run on the primary");
                    runs += 1;
                }
                Ok::<_, conflictkit::Error>(runs)
            })
        })
        .collect();
    for mover in movers {
        mover.await.unwrap().expect("transfers commit");
    }
    done.store(true, Ordering::Relaxed);
    let mut runs = 0;
    for reporter in reporters {
        runs += reporter
            .await
            .unwrap()
            .expect("no report failed (retries = 0: no conflict)");
    }
    let report = reports.stats_by_label()["report"];
    assert_eq!(report.retries, 0, "{report:?}");
    assert_eq!(report.success, u64::from(runs));
    assert_eq!(reports.replica_stats().on_replica, 0);
}

/// `#[managed_transaction(deferrable)]`: the transaction's mode, and where it ran.
#[managed_transaction(deferrable, retries = 0, label = "audit")]
async fn audit_mode(txn: &Txn) -> Result<(String, bool), conflictkit::Error> {
    let mode = one_text(
        txn,
        "SELECT current_setting('transaction_isolation') || ' ' || \
         current_setting('transaction_read_only') || ' ' || \
         current_setting('transaction_deferrable') AS v",
    )
    .await?;
    let replica = one_text(txn, "SELECT pg_is_in_recovery()::text AS v").await? == "true";
    Ok((mode, replica))
}

#[tokio::test]
async fn the_macro_s_deferrable_begins_a_deferrable_report_on_the_primary() {
    let Some(pair) = Pair::open("ro_deferrable_macro", 100).await else {
        return;
    };
    // with a replica fresh enough for any read: deferrable stays on the primary
    let resolver = pair.resolver(Duration::from_secs(3600)).await;
    let (mode, on_replica) = audit_mode(&resolver).await.unwrap();
    assert_eq!(
        mode, "serializable on on",
        "SERIALIZABLE READ ONLY DEFERRABLE"
    );
    assert!(!on_replica, "a deferrable report runs on the primary");
    assert!(
        in_recovery(&resolver).await.unwrap(),
        "a plain read_only call reads the replica"
    );
    let stats = resolver.replica_stats();
    assert_eq!(
        stats.on_replica, 1,
        "only the plain read_only call: {stats:?}"
    );
    assert_eq!(resolver.stats_by_label()["audit"].success, 1);
}
