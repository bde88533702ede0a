use super::queue::tests::{enter, queued, set_limit};
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The control of a resolver on SQLite with a pool of `pool_size`.
fn control(pool_size: Option<u32>) -> Control {
    Control {
        gates: Mutex::new(GateMap {
            gates: HashMap::new(),
            count: 0,
            sweep_at: SweepAt::new(FIRST_SWEEP_AT),
        }),
        leases: None,
        budget: Arc::new(PrepareBudget::new(prepare_cap(pool_size))),
        warm: Warm::Never,
        begin_while_queued: false,
        lockers_deadlock: false,
    }
}

#[test]
fn idle_gates_are_forgotten_busy_ones_kept() {
    let gates = control(None);
    let held = gates.gate("held", None);
    for i in 1..FIRST_SWEEP_AT {
        drop(gates.gate(&format!("label-{i}"), Some(i as u64)));
    }
    let long_ago = std::time::Instant::now()
        .checked_sub(IDLE_GATE_EVICTED_AFTER * 2)
        .expect("the clock reaches back");
    for g in lock(&gates.gates).gates.values().flat_map(|k| k.values()) {
        g.backdate(long_ago);
    }
    drop(gates.gate("fresh", None));
    assert_eq!(gates.len(), 2, "only the held gate and the new one remain");
    assert!(Arc::ptr_eq(&held, &gates.gate("held", None)));
}

#[tokio::test]
async fn a_small_pool_lends_queued_runs_a_quarter_of_itself() {
    assert_eq!(prepare_cap(Some(3)), Some(0));
    assert_eq!(prepare_cap(Some(4)), Some(1));
    assert_eq!(prepare_cap(None), None);
    let gates = control(Some(4));
    let gate = gates.gate("hot", None);
    set_limit(&gate, 4.0);
    let _running: Vec<Permit> = futures::future::join_all((0..4).map(|_| enter(&gate))).await;
    let prepared = Arc::new(AtomicUsize::new(0));
    let mut waiting = Vec::new();
    for i in 0..6 {
        let (g, prepared) = (gate.clone(), prepared.clone());
        waiting.push(tokio::spawn(async move {
            let prep = async move {
                prepared.fetch_add(1, Ordering::SeqCst);
            };
            g.admit(Turn::First, Some(prep)).await
        }));
        queued(&gate, i + 1).await;
    }
    assert_eq!(gate.told(), 1, "one of six queued runs begins early");
    for w in waiting {
        w.abort();
    }
}

#[tokio::test]
async fn the_pool_share_for_queued_runs_is_one_for_all_gates() {
    // pool 8: queued runs may hold 2 connections, whatever the number of
    // hot keys (per gate it would be 2 each: 8 for four keys)
    let control = control(Some(8));
    let mut holders = Vec::new();
    let mut waiting = Vec::new();
    let mut gates = Vec::new();
    for key in 0..4_u64 {
        let gate = control.gate("hot", Some(key));
        set_limit(&gate, 1.0);
        holders.push(enter(&gate).await);
        for i in 0..3 {
            let g = gate.clone();
            waiting.push(tokio::spawn(async move {
                g.admit(Turn::First, Some(std::future::ready(()))).await
            }));
            queued(&gate, i + 1).await;
        }
        gates.push(gate);
    }
    let told: u32 = gates.iter().map(|g| g.told()).sum();
    assert_eq!(
        told, 2,
        "two of twelve queued runs begin early, all gates together"
    );
    assert_eq!(control.budget.used(), 2);
    // the first gate's holder leaves: its told waiter is admitted and
    // gives its room back, and the gate's next waiter takes it at once
    drop(holders.remove(0));
    let told: u32 = gates.iter().map(|g| g.told()).sum();
    assert_eq!((told, control.budget.used()), (2, 2), "the room went round");
    assert_eq!(gates[0].told(), 1);
    for w in waiting {
        w.abort();
    }
    for w in holders {
        drop(w);
    }
}
