//! What an operator sees: the metrics a scripted run records (through
//! metrics-util's debugging recorder, installed for this test's thread
//! only), the lifecycle callbacks and the per-label counters.

use crate::common;
use common::Backend;
use common::sql::{exec, server};
use conflictkit::resolver::{CallOptions, FailedAttempt, InjectConflicts, Phase};
use conflictkit::{ConflictResolver, Error, Txn};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sea_orm::DbErr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `f` on a current-thread runtime with `recorder` as this thread's
/// recorder: every task of the runtime records into it, and no other test.
fn recorded<F: std::future::Future<Output = ()>>(
    recorder: &DebuggingRecorder,
    f: impl FnOnce() -> F,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(recorder, || rt.block_on(f()));
}

/// The metrics of a snapshot, as (kind, name, sorted labels) → value.
type Seen = Vec<(MetricKind, String, Vec<(String, String)>, DebugValue)>;

fn seen(snapshotter: &Snapshotter) -> Seen {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(ck, _, _, value)| {
            let (kind, key) = ck.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            (kind, key.name().to_owned(), labels, value)
        })
        .collect()
}

/// The values of metric `name` whose labels include every one of `with`.
fn values<'a>(seen: &'a Seen, name: &str, with: &[(&str, &str)]) -> Vec<&'a DebugValue> {
    seen.iter()
        .filter(|(_, n, labels, _)| {
            n == name
                && with
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, _, v)| v)
        .collect()
}

fn counter(seen: &Seen, name: &str, with: &[(&str, &str)]) -> u64 {
    values(seen, name, with)
        .into_iter()
        .map(|v| match v {
            DebugValue::Counter(n) => *n,
            other => panic!("{name} is no counter: {other:?}"),
        })
        .sum()
}

fn histogram(seen: &Seen, name: &str, with: &[(&str, &str)]) -> Vec<f64> {
    values(seen, name, with)
        .into_iter()
        .flat_map(|v| match v {
            DebugValue::Histogram(h) => h.iter().map(|x| x.into_inner()).collect::<Vec<_>>(),
            other => panic!("{name} is no histogram: {other:?}"),
        })
        .collect()
}

/// What an `on_give_up` callback saw: the label and every run.
type GiveUp = (String, Vec<FailedAttempt>);

const LABEL: (&str, &str) = ("conflictkit.label", "metrics::scripted");

/// Two conflicts, then a commit: one call counted `committed`, 3 attempts,
/// three runs of the body, each waiting in the queue and for the SQLite
/// slot, one COMMIT; a call that gives up and one that runs out of time are
/// counted by their outcomes; no key label unless asked for.
#[test]
fn a_scripted_run_records_exact_counts() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorded(&recorder, || async {
        let tdb = server(Backend::Sqlite, "metrics_scripted", 2).await;
        exec(&tdb.db, "CREATE TABLE item (id INTEGER)")
            .await
            .unwrap();
        let r = ConflictResolver::builder(tdb.db.clone())
            .inject_conflicts(InjectConflicts::rate(1.0))
            .retries(2)
            .build();
        r.run(CallOptions::new(LABEL.1).key(&7_i64), |txn: &Txn| {
            Box::pin(async move {
                exec(txn, "INSERT INTO item VALUES (1)").await?;
                Ok::<_, Error>(())
            })
        })
        .await
        .unwrap();
        // a give-up: every run fails with an error the resolver retries on
        let r = ConflictResolver::builder(tdb.db.clone())
            .retry_if(|e| e.to_string().contains("scripted conflict"))
            .retries(1)
            .build();
        let gave_up = r
            .run(CallOptions::new("metrics::gives_up"), |_txn: &Txn| {
                Box::pin(async {
                    Err::<(), _>(Error::from(DbErr::Custom("scripted conflict".into())))
                })
            })
            .await;
        assert!(matches!(gave_up, Err(Error::Unresolved(_))), "{gave_up:?}");
        let late = r
            .run(
                CallOptions::new("metrics::late")
                    .timeout(Duration::from_millis(50))
                    .unwrap(),
                |_txn: &Txn| {
                    Box::pin(async {
                        std::future::pending::<()>().await;
                        Ok::<_, Error>(())
                    })
                },
            )
            .await;
        assert!(late.unwrap_err().is_deadline_exceeded());
    });
    let seen = seen(&snapshotter);
    let sqlite = ("db.system.name", "sqlite");
    assert_eq!(
        counter(
            &seen,
            "conflictkit.calls",
            &[LABEL, ("outcome", "committed"), sqlite]
        ),
        1
    );
    assert_eq!(
        counter(&seen, "conflictkit.calls", &[LABEL]),
        1,
        "one call, no other outcome"
    );
    assert_eq!(
        histogram(&seen, "conflictkit.call.attempts", &[LABEL]),
        [3.0]
    );
    assert_eq!(
        histogram(&seen, "conflictkit.body.duration", &[LABEL]).len(),
        3
    );
    assert_eq!(
        histogram(
            &seen,
            "conflictkit.wait.duration",
            &[LABEL, ("wait", "queue")]
        )
        .len(),
        3
    );
    assert_eq!(
        histogram(
            &seen,
            "conflictkit.wait.duration",
            &[LABEL, ("wait", "sqlite_slot")]
        )
        .len(),
        3
    );
    assert_eq!(
        histogram(
            &seen,
            "db.client.operation.duration",
            &[LABEL, ("db.operation.name", "COMMIT")]
        )
        .len(),
        1,
        "injected conflicts roll back: one COMMIT"
    );
    assert!(
        !values(&seen, "conflictkit.contention.limit", &[LABEL]).is_empty(),
        "the gate's limit is a gauge"
    );
    assert!(
        seen.iter()
            .all(|(_, _, labels, _)| labels.iter().all(|(k, _)| k != "conflictkit.key")),
        "no key label unless asked for"
    );
    assert_eq!(
        counter(
            &seen,
            "conflictkit.calls",
            &[
                ("conflictkit.label", "metrics::gives_up"),
                ("outcome", "gave_up")
            ]
        ),
        1
    );
    assert_eq!(
        histogram(
            &seen,
            "conflictkit.call.attempts",
            &[("conflictkit.label", "metrics::gives_up")]
        ),
        [2.0]
    );
    assert_eq!(
        counter(
            &seen,
            "conflictkit.calls",
            &[
                ("conflictkit.label", "metrics::late"),
                ("outcome", "deadline")
            ]
        ),
        1
    );
}

/// With `metrics_per_key`, the call's key is a label.
#[test]
fn keys_are_labels_only_when_asked_for() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorded(&recorder, || async {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let r = ConflictResolver::builder(db).metrics_per_key(true).build();
        r.run(
            CallOptions::new("metrics::keyed").key(&7_i64),
            |_txn: &Txn| Box::pin(async { Ok::<_, Error>(()) }),
        )
        .await
        .unwrap();
    });
    let seen = seen(&snapshotter);
    let keyed = values(
        &seen,
        "conflictkit.calls",
        &[("conflictkit.label", "metrics::keyed")],
    );
    assert_eq!(keyed.len(), 1);
    assert!(
        seen.iter().any(|(_, n, labels, _)| n == "conflictkit.calls"
            && labels
                .iter()
                .any(|(k, v)| k == "conflictkit.key" && v.len() == 16)),
        "the key's hash is a label"
    );
}

/// `on_commit` sees the runs of the call, `on_give_up` every run's error
/// and phase, `on_deadline` the deadline error; `stats_by_label` counts per
/// label.
#[tokio::test]
async fn lifecycle_callbacks_get_the_right_data() {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    let commits = Arc::new(Mutex::new(Vec::new()));
    let give_ups: Arc<Mutex<Vec<GiveUp>>> = Arc::default();
    let deadlines = Arc::new(Mutex::new(Vec::new()));
    let (c, g, d) = (commits.clone(), give_ups.clone(), deadlines.clone());
    let r = ConflictResolver::builder(db)
        .inject_conflicts(InjectConflicts::rate(1.0))
        .retries(2)
        .retry_if(|e| e.to_string().contains("scripted conflict"))
        .on_commit(move |e| c.lock().unwrap().push((e.label.to_owned(), e.attempts)))
        .on_give_up(move |e| {
            g.lock()
                .unwrap()
                .push((e.label.to_owned(), e.attempts.to_vec()))
        })
        .on_deadline(move |e| d.lock().unwrap().push((e.label().to_owned(), e.phase())))
        .build();
    r.run(CallOptions::new("cb::commits"), |_txn: &Txn| {
        Box::pin(async { Ok::<_, Error>(()) })
    })
    .await
    .unwrap();
    let _ = r
        .run(CallOptions::new("cb::gives_up"), |txn: &Txn| {
            let n = txn.attempt();
            Box::pin(async move {
                Err::<(), _>(Error::from(DbErr::Custom(format!("scripted conflict {n}"))))
            })
        })
        .await
        .unwrap_err();
    let _ = r
        .run(
            CallOptions::new("cb::late")
                .timeout(Duration::from_millis(50))
                .unwrap(),
            |_txn: &Txn| {
                Box::pin(async {
                    std::future::pending::<()>().await;
                    Ok::<_, Error>(())
                })
            },
        )
        .await
        .unwrap_err();
    assert_eq!(*commits.lock().unwrap(), [("cb::commits".to_owned(), 3)]);
    let give_ups = give_ups.lock().unwrap();
    assert_eq!(give_ups.len(), 1);
    assert_eq!(give_ups[0].0, "cb::gives_up");
    let runs = &give_ups[0].1;
    assert_eq!(
        runs.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(runs.iter().all(|a| a.phase == Phase::Body));
    for (i, a) in runs.iter().enumerate() {
        assert!(
            a.error.contains(&format!("scripted conflict {}", i + 1)),
            "run {}'s own error: {}",
            i + 1,
            a.error
        );
    }
    assert_eq!(
        *deadlines.lock().unwrap(),
        [("cb::late".to_owned(), Phase::Body)]
    );
    let by_label = r.stats_by_label();
    assert_eq!(by_label["cb::commits"].success, 1);
    assert_eq!(by_label["cb::commits"].retries, 2);
    assert_eq!(by_label["cb::gives_up"].unresolved, 1);
    assert_eq!(by_label["cb::gives_up"].retries, 3);
    assert_eq!(by_label["cb::late"].errors, 1);
    assert_eq!(r.stats().success, 1);
}

fn gauge(seen: &Seen, name: &str) -> f64 {
    match values(seen, name, &[]).as_slice() {
        [DebugValue::Gauge(g)] => g.into_inner(),
        other => panic!("{name}: one gauge expected, found {other:?}"),
    }
}

/// The events wing over real loopback HTTP: a listener answers three
/// requests (one a repeated `webhook-id`, counted as a duplicate), and relays
/// give one outbox event up (its receiver refuses connections, the schedule
/// has no step left), deliver another, and sample the backlog.
#[test]
fn the_events_wing_records_requests_duplicates_and_the_relay() {
    use conflictkit::events::{
        EventPoster, Listener, ListenerConfig, OutboxRelay, Publish, migrate_outbox,
    };
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorded(&recorder, || async {
        let listener = Listener::new(ListenerConfig {
            registered_handlers: false,
            ..ListenerConfig::new("127.0.0.1:0".parse().unwrap())
        });
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        listener.on("paid", move |data: serde_json::Value| {
            log.lock().unwrap().push(data);
            async {}
        });
        let handle = listener.start().await.unwrap();
        let url = format!("http://{}", handle.local_addr());
        let poster = EventPoster::new(&url).unwrap().retries(0);
        for _ in 0..2 {
            poster
                .post_with_id("msg_metrics_1", "paid", &serde_json::json!({"n": 1}))
                .await
                .unwrap();
        }

        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        migrate_outbox(&db).await.unwrap();
        let resolver = ConflictResolver::new(db.clone());
        let publish = |stream: &'static str| {
            resolver.managed(move |txn: &Txn| {
                Box::pin(async move {
                    txn.publish_in(stream, "paid", &serde_json::json!({"n": 2}))
                        .await?;
                    Ok::<_, Error>(())
                })
            })
        };
        // a port nothing listens on: connections are refused, and with no
        // step left in the schedule the event is given up at once
        let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = format!("http://{}", refused.local_addr().unwrap());
        drop(refused);
        let failing =
            OutboxRelay::new(db.clone(), EventPoster::new(&dead).unwrap().retries(0)).schedule([]);
        publish("given_up").await.unwrap();
        assert_eq!(failing.deliver_pending().await.unwrap(), 0);
        publish("delivered").await.unwrap();
        let relay = OutboxRelay::new(db.clone(), poster.clone());
        assert_eq!(relay.deliver_pending().await.unwrap(), 1);
        let backlog = relay.backlog().await.unwrap();
        assert_eq!(
            (backlog.pending, backlog.failed, backlog.oldest_pending),
            (0, 1, None)
        );
        // one left pending: counted, with an age
        publish("pending").await.unwrap();
        let backlog = relay.backlog().await.unwrap();
        assert_eq!((backlog.pending, backlog.failed), (1, 1));
        assert!(backlog.oldest_pending.is_some(), "{backlog:?}");
        assert_eq!(received.lock().unwrap().len(), 2);
        handle.shutdown().await;
    });
    let seen = seen(&snapshotter);
    let ok = [("http.response.status_code", "200")];
    assert_eq!(counter(&seen, "conflictkit.events.requests", &ok), 3);
    assert_eq!(
        histogram(&seen, "http.server.request.duration", &ok).len(),
        3
    );
    assert_eq!(
        counter(
            &seen,
            "conflictkit.events.duplicates",
            &[("source", "listener")]
        ),
        1
    );
    let attempts = |outcome| {
        counter(
            &seen,
            "conflictkit.events.relay.attempts",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(
        (
            attempts("delivered"),
            attempts("retry"),
            attempts("given_up")
        ),
        (1, 0, 1)
    );
    assert_eq!(gauge(&seen, "conflictkit.events.outbox.pending"), 0.0);
    assert_eq!(gauge(&seen, "conflictkit.events.outbox.failed"), 1.0);
    assert_eq!(
        gauge(&seen, "conflictkit.events.outbox.oldest_pending_age"),
        0.0
    );
}
