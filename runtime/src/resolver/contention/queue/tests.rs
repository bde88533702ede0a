use super::*;
use futures::FutureExt;
use std::sync::atomic::AtomicUsize;

pub(crate) type NoPrep = std::future::Ready<()>;

pub(crate) async fn enter(gate: &Arc<Gate>) -> Permit {
    gate.admit(Turn::First, None::<NoPrep>).await.0
}

pub(crate) fn set_limit(gate: &Gate, limit: f64) {
    lock(&gate.state).limiter.set_limit(limit);
}

/// Waits until `n` callers are queued at `gate`.
pub(crate) async fn queued(gate: &Gate, n: usize) {
    while lock(&gate.state).waiting.len() < n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn where_lockers_deadlock_only_a_conflict_no_run_of_the_gate_could_cause_makes_it_hot() {
    let gate = Arc::new(Gate::default());
    set_limit(&gate, 4.0);
    let a = enter(&gate).await;
    let b = enter(&gate).await;
    // b sends COMMIT while a runs: a's conflict may be b's doing
    b.committing();
    let a_at = a.admission();
    drop(b);
    gate.on_commit();
    gate.on_conflict(a_at, false, true);
    assert!(!gate.hot(), "a conflict within the process");
    drop(a);
    // d and e run together; d fails without any COMMIT (a deadlock
    // victim of e, say): not from outside either
    let d = enter(&gate).await;
    let e = enter(&gate).await;
    let d_at = d.admission();
    drop(d);
    gate.on_conflict(d_at, false, true);
    assert!(
        !gate.hot(),
        "a run that had company, where lockers deadlock"
    );
    drop(e);
    let c = enter(&gate).await;
    c.committing();
    let c_at = c.admission();
    drop(c);
    gate.on_conflict(c_at, true, true);
    assert!(
        gate.hot(),
        "no other run reached COMMIT during c: the conflict came from outside"
    );
    let cold = Arc::new(Gate::default());
    let f = enter(&cold).await;
    let g = enter(&cold).await;
    g.committing();
    let f_at = f.admission();
    drop((f, g));
    cold.on_conflict(f_at, false, false);
    assert!(cold.hot(), "where lockers do not deadlock, any conflict");
}

#[tokio::test]
async fn a_cancelled_waiter_leaves_the_queue_at_once() {
    let gate = Arc::new(Gate::default());
    set_limit(&gate, 2.0);
    let _running = enter(&gate).await;
    // a last replay waits for the label to empty; its caller gives up
    let g = gate.clone();
    let last = tokio::spawn(async move { g.admit(Turn::Last, None::<NoPrep>).await });
    queued(&gate, 1).await;
    last.abort();
    assert!(last.await.unwrap_err().is_cancelled());
    assert_eq!(lock(&gate.state).waiting.len(), 0, "purged when cancelled");
    // a slot is free: the next first run is admitted without waiting
    let admitted = gate.admit(Turn::First, None::<NoPrep>).now_or_never();
    assert!(
        admitted.is_some(),
        "not held up behind the cancelled waiter"
    );
}

#[tokio::test]
async fn unlimited_until_a_conflict() {
    let gate = Arc::new(Gate::default());
    let permits: Vec<Permit> = futures::future::join_all((0..100).map(|_| enter(&gate))).await;
    assert_eq!(lock(&gate.state).in_flight, 100);
    drop(permits);
    assert_eq!(lock(&gate.state).in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn no_run_waits_longer_than_the_longest_queue_wait() {
    let gate = Arc::new(Gate::default());
    set_limit(&gate, 1.0);
    let first = enter(&gate).await;
    let g = gate.clone();
    let second = tokio::spawn(async move { enter(&g).await });
    queued(&gate, 1).await;
    tokio::time::advance(MAX_QUEUE_WAIT - Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    assert!(!second.is_finished(), "still queued just before the bound");
    tokio::time::advance(Duration::from_millis(2)).await;
    let second = second.await.unwrap();
    assert_eq!(lock(&gate.state).in_flight, 2, "admitted over the limit");
    drop(first);
    drop(second);
    let s = lock(&gate.state);
    assert_eq!(s.in_flight, 0, "the skipped queue entry took no room");
    assert!(s.waiting.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_moving_queue_is_waited_for_however_long() {
    let gate = Arc::new(Gate::default());
    set_limit(&gate, 1.0);
    let running = enter(&gate).await;
    let (ga, gb) = (gate.clone(), gate.clone());
    let a = tokio::spawn(async move { enter(&ga).await });
    queued(&gate, 1).await;
    let b = tokio::spawn(async move { enter(&gb).await });
    queued(&gate, 2).await;
    // the queue moves just before the bound: the head is admitted
    tokio::time::advance(MAX_QUEUE_WAIT - Duration::from_millis(100)).await;
    drop(running);
    let a = a.await.unwrap();
    // past the bound of the second waiter, but the queue moved since
    tokio::time::advance(Duration::from_millis(200)).await;
    tokio::task::yield_now().await;
    assert!(
        !b.is_finished(),
        "not admitted over the limit while the queue moves"
    );
    assert_eq!(lock(&gate.state).in_flight, 1);
    // the queue moves again: the second waiter gets the slot in turn
    tokio::time::advance(MAX_QUEUE_WAIT - Duration::from_millis(200)).await;
    drop(a);
    let b = b.await.unwrap();
    assert_eq!(lock(&gate.state).in_flight, 1, "never over the limit");
    drop(b);
}

#[tokio::test]
async fn limit_one_queues_and_wakes_in_turn() {
    let gate = Arc::new(Gate::default());
    set_limit(&gate, 1.0);
    let first = enter(&gate).await;
    let g = gate.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let waiter = tokio::spawn(async move {
        let p = enter(&g).await;
        tx.send(()).unwrap();
        p
    });
    queued(&gate, 1).await;
    assert!(
        rx.try_recv().is_err(),
        "second caller waits while the first holds the only slot"
    );
    drop(first);
    rx.recv()
        .await
        .expect("admitted after the first permit was dropped");
    drop(waiter.await.unwrap());
    assert_eq!(lock(&gate.state).in_flight, 0);
}

#[tokio::test]
async fn waiters_are_served_in_order_and_cancelled_waits_take_no_room() {
    let gate = Arc::new(Gate::default());
    set_limit(&gate, 1.0);
    let first = enter(&gate).await;
    let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
    let mut waiters = Vec::new();
    for i in 0..3 {
        let g = gate.clone();
        let tx = tx.clone();
        waiters.push(tokio::spawn(async move {
            let p = enter(&g).await;
            tx.send(i).unwrap();
            drop(p);
        }));
        // let waiter i queue before the next one arrives
        queued(&gate, i + 1).await;
    }
    // a cancelled wait: queued, then dropped
    let cancelled = {
        let g = gate.clone();
        tokio::spawn(async move { enter(&g).await })
    };
    queued(&gate, 4).await;
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    drop(first);
    for w in waiters {
        w.await.unwrap();
    }
    let got: Vec<usize> = std::iter::from_fn(|| order.try_recv().ok()).collect();
    assert_eq!(got, vec![0, 1, 2], "first come, first served");
    let s = lock(&gate.state);
    assert_eq!(s.in_flight, 0, "the cancelled wait holds no room");
    assert!(s.waiting.is_empty());
}

#[tokio::test]
async fn replays_go_ahead_of_first_runs_and_the_last_runs_alone() {
    let gate = Arc::new(Gate::default());
    set_limit(&gate, 2.0);
    let a = enter(&gate).await;
    let b = enter(&gate).await;
    let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (i, turn) in [Turn::First, Turn::Last, Turn::Replay, Turn::First]
        .into_iter()
        .enumerate()
    {
        let g = gate.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let (p, _) = g.admit(turn, None::<NoPrep>).await;
            let alone = lock(&g.state).in_flight == 1;
            tx.send((i, turn, alone)).unwrap();
            // the last run holds its room until the test lets it go
            (turn == Turn::Last).then_some(p)
        }));
        queued(&gate, i + 1).await;
    }
    let turns: Vec<Turn> = lock(&gate.state).waiting.iter().map(|w| w.turn).collect();
    assert_eq!(
        turns,
        vec![Turn::Last, Turn::Replay, Turn::First, Turn::First],
        "replays (in arrival order) before first runs"
    );
    drop(a);
    // one slot free, but the last run waits for the other to finish too
    tokio::task::yield_now().await;
    assert!(order.try_recv().is_err());
    drop(b);
    let (i, turn, alone) = order.recv().await.unwrap();
    assert_eq!((i, turn, alone), (1, Turn::Last, true));
    assert!(
        order.try_recv().is_err(),
        "nothing is admitted beside a last run"
    );
    // one at a time from here, so the order is the queue's
    set_limit(&gate, 1.0);
    drop(tasks.remove(1).await.unwrap());
    for t in tasks {
        assert!(t.await.unwrap().is_none());
    }
    let got: Vec<usize> = std::iter::from_fn(|| order.try_recv().ok())
        .map(|(i, _, _)| i)
        .collect();
    assert_eq!(got, vec![2, 0, 3]);
}

#[tokio::test]
async fn queued_callers_prepare_while_they_wait_as_many_as_there_are_slots() {
    let gate = Arc::new(Gate::default());
    set_limit(&gate, 1.0);
    let first = enter(&gate).await;
    let prepared = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let g = gate.clone();
        let prepared = prepared.clone();
        tasks.push(tokio::spawn(async move {
            let prep = async move {
                prepared.fetch_add(1, Ordering::SeqCst);
                i
            };
            g.admit(Turn::First, Some(prep)).await
        }));
        queued(&gate, i + 1).await;
    }
    while prepared.load(Ordering::SeqCst) < 1 {
        tokio::task::yield_now().await;
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        prepared.load(Ordering::SeqCst),
        1,
        "one slot: only the head of the queue prepares"
    );
    drop(first);
    let (p0, out0) = tasks.remove(0).await.unwrap();
    assert_eq!(
        out0,
        Some(0),
        "the head got its prepared output with the permit"
    );
    // the next one was told when the head was admitted
    while prepared.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    drop(p0);
    let (p1, out1) = tasks.remove(0).await.unwrap();
    assert_eq!(out1, Some(1));
    drop(p1);
    let (p2, out2) = tasks.remove(0).await.unwrap();
    assert_eq!(out2, Some(2));
    drop(p2);
    let s = lock(&gate.state);
    assert_eq!((s.in_flight, s.told), (0, 0));
}

#[tokio::test]
async fn a_replay_skips_the_backoff_only_when_it_will_queue() {
    let gate = Arc::new(Gate::default());
    let first = enter(&gate).await;
    assert!(
        !gate.queue_spaces_replay(),
        "unlimited: only a backoff spaces it"
    );
    set_limit(&gate, 2.0);
    assert!(
        !gate.queue_spaces_replay(),
        "room left: it would run at once"
    );
    let second = enter(&gate).await;
    assert!(
        gate.queue_spaces_replay(),
        "full: it waits behind the others"
    );
    drop((first, second));
}

#[tokio::test(start_paused = true)]
async fn a_last_replay_is_never_admitted_over_the_limit_by_the_clock() {
    let gate = Arc::new(Gate::default());
    set_limit(&gate, 2.0);
    let running = enter(&gate).await;
    let g = gate.clone();
    let last = tokio::spawn(async move { g.admit(Turn::Last, None::<NoPrep>).await.0 });
    queued(&gate, 1).await;
    // the queue does not move for ten times the longest wait
    tokio::time::advance(MAX_QUEUE_WAIT * 10).await;
    tokio::task::yield_now().await;
    assert!(!last.is_finished(), "still waiting for the gate to empty");
    assert_eq!(lock(&gate.state).in_flight, 1);
    drop(running);
    let last = last.await.unwrap();
    assert_eq!(lock(&gate.state).in_flight, 1, "alone");
    drop(last);
}
