use super::super::db_lock::tests::{server_url, until_only_others_wait, until_waiting};
use super::super::key::lock_id;
use super::*;
use futures::FutureExt;

/// Leases on an in-memory database (with time paused) whose lease of
/// `id` is held, its tenure over and its runs last moved now, and a
/// ticket for it taken before.
async fn held_over_its_tenure(id: i64) -> (Leases, Arc<Lease>, Ticket) {
    let db = sea_orm::Database::connect("sqlite::memory:")
        .await
        .expect("connect");
    tokio::time::pause();
    let leases = Leases::new(db);
    let ticket = leases.ticket(id);
    let lease = lease_of(&leases, id);
    {
        let mut s = lock(&lease.state);
        s.hold = Hold::Held {
            _lock: HeldLock::none(),
        };
        s.tenure = TENURE;
        s.moved = Some(tokio::time::Instant::now());
    }
    (leases, lease, ticket)
}

fn lease_of(leases: &Leases, id: i64) -> Arc<Lease> {
    lock(&leases.map).leases[&id].clone()
}

/// Two processes (two resolvers' leases, each with its own lock
/// sessions) on one lock: the first takes it once for a whole tenure of
/// runs that follow each other; the second waits; at the end of the
/// tenure the lock goes to the second although the first still wants
/// it, and comes back when the second is done.
///
/// Every entry is patient (`enter(true)`: a 30 s bound on its wait for the
/// lock, the only thing `patient` changes) rather than held to the 5 s
/// bound of an ordinary run, which a loaded machine polling the servers'
/// lock views could reach; that bound has a paused-time test of its own
/// (`a_closed_tenure_that_does_not_move_lets_a_run_in_after_the_longest_wait`).
async fn a_lease_serves_a_tenure_then_goes_round(db: DatabaseConnection) {
    let backend = db.get_database_backend();
    let (a, b) = (Leases::new(db.clone()), Leases::new(db.clone()));
    let id = lock_id(
        &format!("lease::tests::round::{}", std::process::id()),
        None,
    );
    let mut inside = a
        .ticket(id)
        .enter(true)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: the first lease: {e}"));
    assert!(!inside.contended(), "{backend:?}: nobody else wanted it");
    for run in 1..TENURE {
        // the next run says it wants the lease before this one leaves
        let next = a.ticket(id);
        drop(inside);
        inside = next
            .enter(true)
            .now_or_never()
            .unwrap_or_else(|| panic!("{backend:?}: run {run} of the tenure waited"))
            .unwrap_or_else(|e| panic!("{backend:?}: run {run}: {e}"));
    }
    assert_eq!(
        lock(&lease_of(&a, id).state).attempts,
        1,
        "one lock for the tenure"
    );
    let other = b.ticket(id);
    let mut other = tokio::spawn(other.enter(true));
    let other_session = until_waiting(&db, id, 1).await;
    let again = a.ticket(id);
    let mut again = tokio::spawn(again.enter(true));
    // the tenure is over: the last run leaving gives the lock back though
    // the process still wants it, and asks again behind the other one
    drop(inside);
    let other_inside = (&mut other)
        .await
        .expect("the task")
        .unwrap_or_else(|e| panic!("{backend:?}: the other process's lease: {e}"));
    assert!(
        other_inside.contended(),
        "{backend:?}: it waited for the first process"
    );
    // The first process's request waits behind the other's tenure: seen
    // on the server, as a session other than the one the other process
    // waited on (InnoDB's lock views lag: they may still show that one
    // waiting, and giving the other's lease back before the first
    // process asked again would let it take the lock uncontended).
    tokio::select! {
        got = &mut again => panic!(
            "{backend:?}: the first process took the lease back past the other: {}",
            got.map(|r| r.is_ok()).unwrap_or(false)
        ),
        _ = until_only_others_wait(&db, id, 1, &other_session) => {}
    }
    drop(other_inside);
    let back = again
        .await
        .expect("the task")
        .unwrap_or_else(|e| panic!("{backend:?}: the lease back: {e}"));
    assert_eq!(lock(&lease_of(&a, id).state).attempts, 2);
    assert!(
        back.contended(),
        "{backend:?}: it waited for the other process"
    );
    drop(back);
    // nobody wants it any more: given back, so the other process takes
    // it at once
    let taken = b.ticket(id).enter(true).await;
    assert!(taken.is_ok(), "{backend:?}: {:?}", taken.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_leases_serve_a_tenure_then_go_round() {
    let Some(url) = server_url("CONFLICTKIT_PG_URL") else {
        return;
    };
    let db = sea_orm::Database::connect(url).await.expect("connect");
    a_lease_serves_a_tenure_then_goes_round(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_leases_serve_a_tenure_then_go_round() {
    let Some(url) = server_url("CONFLICTKIT_MYSQL_URL") else {
        return;
    };
    let db = sea_orm::Database::connect(url).await.expect("connect");
    a_lease_serves_a_tenure_then_goes_round(db).await;
}

/// A lock that cannot be taken fails the runs waiting for it, with the
/// reason, instead of leaving them waiting.
#[tokio::test]
async fn a_lock_that_cannot_be_taken_fails_the_entry() {
    let db = sea_orm::Database::connect("sqlite::memory:")
        .await
        .expect("connect");
    let leases = Leases::new(db);
    let err = leases
        .ticket(7)
        .enter(false)
        .await
        .expect_err("SQLite has no such lock");
    assert!(
        err.to_string()
            .contains("could not take the contention lock"),
        "{err}"
    );
    let lease = lease_of(&leases, 7);
    let s = lock(&lease.state);
    assert_eq!((s.expected, s.users), (0, 0), "the ticket was given back");
}

/// A run that waits for a tenure to end enters over it when no run
/// inside leaves for the longest queue wait (one of them may be waiting
/// for it), and not before.
#[tokio::test]
async fn a_closed_tenure_that_does_not_move_lets_a_run_in_after_the_longest_wait() {
    let (leases, lease, mut outer) = held_over_its_tenure(9).await;
    let outer_inside = {
        let mut s = lock(&lease.state);
        outer.inside(&mut s)
    };
    let inner = tokio::spawn(leases.ticket(9).enter(false));
    tokio::time::advance(MAX_QUEUE_WAIT - std::time::Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    assert!(!inner.is_finished(), "still waiting just before the bound");
    tokio::time::advance(std::time::Duration::from_millis(2)).await;
    let inner_inside = inner.await.expect("the task").expect("entered");
    assert_eq!(
        lock(&lease.state).users,
        2,
        "over the tenure, beside the outer run"
    );
    drop(inner_inside);
    drop(outer_inside);
    let s = lock(&lease.state);
    assert!(s.unused(), "given back when both left");
}

/// A run gives up waiting for another process's lock after the longest
/// wait and goes on without it; a last replay waits on, far longer, but
/// not forever (the holder may be waiting for it).
#[tokio::test]
async fn a_last_replay_waits_for_another_process_longer_but_not_forever() {
    let db = sea_orm::Database::connect("sqlite::memory:")
        .await
        .expect("connect");
    tokio::time::pause();
    let leases = Leases::new(db);
    let first = leases.ticket(11);
    let lease = lease_of(&leases, 11);
    // another process holds the lock: this one's request waits
    lock(&lease.state).hold = Hold::Acquiring;
    let impatient = tokio::spawn(first.enter(false));
    let last = tokio::spawn(leases.ticket(11).enter(true));
    tokio::time::advance(LONGEST_LOCK_WAIT - std::time::Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    assert!(
        !impatient.is_finished(),
        "still waiting just before the bound"
    );
    tokio::time::advance(std::time::Duration::from_millis(2)).await;
    let err = impatient
        .await
        .expect("the task")
        .expect_err("gave up waiting");
    assert!(err.to_string().contains("another process holds"), "{err}");
    tokio::time::advance(
        LONGEST_PATIENT_LOCK_WAIT - LONGEST_LOCK_WAIT - std::time::Duration::from_millis(2),
    )
    .await;
    tokio::task::yield_now().await;
    assert!(!last.is_finished(), "a last replay waits on");
    assert_eq!(
        lock(&lease.state).expected,
        1,
        "only the last replay wants it"
    );
    tokio::time::advance(std::time::Duration::from_millis(2)).await;
    let err = last
        .await
        .expect("the task")
        .expect_err("gave up waiting at its own bound");
    assert!(err.to_string().contains("waited 30 s"), "{err}");
    assert_eq!(lock(&lease.state).expected, 0, "the ticket was given back");
}

/// Runs that wait for a tenure that is over, while the runs inside do
/// not leave, are let in over it at most [`OVER_TENURE`] times; the next
/// one waits for the runs inside to leave (or gives up waiting), and
/// when they have left the lease is given back, to go round.
#[tokio::test]
async fn a_tenure_lets_only_a_few_runs_in_over_it() {
    let (leases, lease, mut first) = held_over_its_tenure(13).await;
    let mut inside = {
        let mut s = lock(&lease.state);
        first.inside(&mut s)
    };
    // each run enters over the tenure while the one before it is still
    // inside, then that one leaves
    for over in 1..=OVER_TENURE {
        let next = tokio::spawn(leases.ticket(13).enter(false));
        tokio::time::advance(MAX_QUEUE_WAIT).await;
        let next = next
            .await
            .expect("the task")
            .unwrap_or_else(|e| panic!("over-tenure entry {over}: {e}"));
        drop(inside);
        inside = next;
    }
    let refused = tokio::spawn(leases.ticket(13).enter(false));
    tokio::time::advance(MAX_QUEUE_WAIT * 2).await;
    tokio::task::yield_now().await;
    assert!(
        !refused.is_finished(),
        "no more runs over the tenure while the run inside stays"
    );
    assert_eq!(lock(&lease.state).users, 1);
    tokio::time::advance(LONGEST_LOCK_WAIT).await;
    let err = refused
        .await
        .expect("the task")
        .expect_err("gave up waiting");
    assert!(err.to_string().contains("do not leave"), "{err}");
    drop(inside);
    let s = lock(&lease.state);
    assert!(s.unused(), "given back when the last run left");
}

/// A process whose runs keep entering over a tenure that is over (each
/// run stays inside until the next one is in, or gave up waiting) gives
/// the lease to another process's last replay waiting for it after at
/// most [`OVER_TENURE`] such runs: it does not keep the lock forever.
async fn runs_over_the_tenure_do_not_keep_the_lease_from_a_last_replay(db: DatabaseConnection) {
    let backend = db.get_database_backend();
    let (a, b) = (Leases::new(db.clone()), Leases::new(db.clone()));
    let id = lock_id(&format!("lease::tests::over::{}", std::process::id()), None);
    let mut inside = a
        .ticket(id)
        .enter(false)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: the first lease: {e}"));
    for run in 1..TENURE {
        let next = a.ticket(id);
        drop(inside);
        inside = next
            .enter(false)
            .now_or_never()
            .unwrap_or_else(|| panic!("{backend:?}: run {run} of the tenure waited"))
            .unwrap_or_else(|e| panic!("{backend:?}: run {run}: {e}"));
    }
    // the other process's last replay waits for the lock on the server
    let mut last = tokio::spawn(b.ticket(id).enter(true));
    until_waiting(&db, id, 1).await;
    let mut inside = Some(inside);
    let mut over = 0;
    // (This rests on the library's clocks, not on the test's: a run
    // enters over the tenure after MAX_QUEUE_WAIT, 1 s, without a run
    // leaving, and gives up waiting after LONGEST_LOCK_WAIT, 5 s; the
    // last replay waits for LONGEST_PATIENT_LOCK_WAIT, 30 s.)
    let got = loop {
        let mut next = tokio::spawn(a.ticket(id).enter(false));
        tokio::select! {
            got = &mut last => {
                next.abort();
                break got.expect("the task");
            }
            entered = &mut next => match entered.expect("the task") {
                Ok(guard) => {
                    over += 1;
                    assert!(
                        over <= OVER_TENURE,
                        "{backend:?}: {over} runs entered over the tenure while another \
                         process's last replay waited for the lock"
                    );
                    // the run inside leaves once the next one is in
                    inside = Some(guard);
                }
                Err(e) => {
                    // refused, it gave up waiting (and would go on
                    // without the lock): the run inside leaves, and the
                    // lease goes round
                    assert!(e.to_string().contains("do not leave"), "{backend:?}: {e}");
                    drop(inside.take());
                    assert!(
                        matches!(lock(&lease_of(&a, id).state).hold, Hold::Free),
                        "{backend:?}: the first process gave the lease back"
                    );
                    break (&mut last).await.expect("the task");
                }
            },
        }
    };
    let got = got.unwrap_or_else(|e| panic!("{backend:?}: the last replay's lease: {e}"));
    assert!(
        got.contended(),
        "{backend:?}: it waited for the other process"
    );
    assert_eq!(over, OVER_TENURE, "{backend:?}: the runs over the tenure");
    drop(got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_runs_over_the_tenure_do_not_keep_the_lease() {
    let Some(url) = server_url("CONFLICTKIT_PG_URL") else {
        return;
    };
    let db = sea_orm::Database::connect(url).await.expect("connect");
    runs_over_the_tenure_do_not_keep_the_lease_from_a_last_replay(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_runs_over_the_tenure_do_not_keep_the_lease() {
    let Some(url) = server_url("CONFLICTKIT_MYSQL_URL") else {
        return;
    };
    let db = sea_orm::Database::connect(url).await.expect("connect");
    runs_over_the_tenure_do_not_keep_the_lease_from_a_last_replay(db).await;
}
