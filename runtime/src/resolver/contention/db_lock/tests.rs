use super::*;

/// The URL in `var`; `None` (skip) outside the test command and CI, a
/// panic under them ([`servers_required`]), as in the integration tests.
pub(crate) fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if servers_required() => {
            panic!(
                "{var} is not set, and servers are required here (CONFLICTKIT_REQUIRE_SERVERS or CI is set)"
            )
        }
        _ => {
            eprintln!("skipping: {var} is not set (run ./scripts/test.sh to start the servers)");
            None
        }
    }
}

/// Whether a missing server fails a test instead of skipping it: the rule
/// of the integration tests (`tests/common`): under `scripts/test.sh`
/// (`CONFLICTKIT_REQUIRE_SERVERS` set) and on CI (`CI` set to anything but
/// `false` / `0`), where a skipped server test would be reported as passed.
fn servers_required() -> bool {
    let set = |var: &str| {
        std::env::var(var)
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    std::env::var_os("CONFLICTKIT_REQUIRE_SERVERS").is_some() || set("CI")
}

/// The sessions whose lock requests on `id` wait, as the server sees
/// them (PostgreSQL backend pids, MariaDB thread ids), in order.
pub(crate) async fn waiting_sessions(db: &DatabaseConnection, id: i64) -> Vec<i64> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let stmt = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT pid::bigint AS s FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1 ORDER BY pid",
            [((id >> 32) & 0xffff_ffff).into(), (id & 0xffff_ffff).into()],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            "SELECT DISTINCT CAST(t.trx_mysql_thread_id AS SIGNED) AS s \
             FROM information_schema.INNODB_TRX t \
             JOIN information_schema.INNODB_LOCKS l ON l.lock_id = t.trx_requested_lock_id \
             WHERE t.trx_state = 'LOCK WAIT' \
             AND l.lock_table = CONCAT('`', DATABASE(), '`.`conflictkit_locks`') \
             AND l.lock_data = ? ORDER BY s",
            [id.to_string().into()],
        ),
    };
    db.query_all_raw(stmt)
        .await
        .expect("list the waiting lock requests")
        .iter()
        .map(|row| row.try_get("", "s").expect("a session id"))
        .collect()
}

/// Polls the server until `n` requests on `id` wait, or more, and
/// returns the sessions that wait: the wait is a state of the server,
/// with no signal to await.
pub(crate) async fn until_waiting(db: &DatabaseConnection, id: i64, n: usize) -> Vec<i64> {
    loop {
        let sessions = waiting_sessions(db, id).await;
        if sessions.len() >= n {
            return sessions;
        }
        tokio::time::sleep(poll_every(db)).await;
    }
}

/// InnoDB refills its lock views only when they were not read for 0.1 s
/// (`trx_i_s_cache`): polled faster, they never change. Polled slower,
/// they may still show what was true up to one poll ago: a helper that
/// must not see a request that no longer waits names the sessions it
/// has seen (see [`until_only_others_wait`]).
fn poll_every(db: &DatabaseConnection) -> std::time::Duration {
    match db.get_database_backend() {
        DbBackend::MySql => std::time::Duration::from_millis(250),
        _ => std::time::Duration::from_millis(5),
    }
}

/// Polls the server until exactly `n` requests on `id` wait, none of
/// them from the sessions in `seen` (which waited before and may still
/// show as waiting in InnoDB's lagging lock views after they were
/// granted); returns the sessions that wait.
pub(crate) async fn until_only_others_wait(
    db: &DatabaseConnection,
    id: i64,
    n: usize,
    seen: &[i64],
) -> Vec<i64> {
    loop {
        let sessions = waiting_sessions(db, id).await;
        if sessions.len() == n && sessions.iter().all(|s| !seen.contains(s)) {
            return sessions;
        }
        tokio::time::sleep(poll_every(db)).await;
    }
}

/// A holder; a request waits for it; a second request made after that
/// waits too; when the holder lets go, the first request is granted and
/// the second goes on waiting until the first lets go: a lease given
/// back and asked for again queues behind the processes already waiting.
async fn waiting_requests_are_granted_in_order(db: DatabaseConnection) {
    let backend = db.get_database_backend();
    let pools = std::sync::Arc::new(LockPools::default());
    let id = super::super::key::lock_id(
        &format!("coordination::tests::queue::{}", std::process::id()),
        None,
    );
    let take = || {
        let (db, pools) = (db.clone(), pools.clone());
        tokio::spawn(async move { lock(&db, &pools, id).await })
    };
    let holder = take()
        .await
        .expect("the task")
        .unwrap_or_else(|e| panic!("{backend:?}: the first lock: {e}"));
    assert!(!holder.contended, "{backend:?}: nobody held it");
    let first = take();
    let first_session = until_waiting(&db, id, 1).await;
    let mut second = take();
    tokio::select! {
        got = &mut second => panic!("{backend:?}: granted beside a holder: {got:?}"),
        _ = until_waiting(&db, id, 2) => {}
    }
    drop(holder);
    let first = first
        .await
        .expect("the task")
        .unwrap_or_else(|e| panic!("{backend:?}: the first request: {e}"));
    assert!(first.contended, "{backend:?}: it waited for the holder");
    // the first request no longer waits; the second one still does
    // (InnoDB's lock views lag behind: polled, not asserted once)
    tokio::select! {
        got = &mut second => panic!(
            "{backend:?}: the later request was granted first, or beside the earlier: {got:?}"
        ),
        _ = until_only_others_wait(&db, id, 1, &first_session) => {}
    }
    drop(first);
    let second = second
        .await
        .expect("the task")
        .unwrap_or_else(|e| panic!("{backend:?}: the second request: {e}"));
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_grants_lock_requests_in_order() {
    let Some(url) = server_url("CONFLICTKIT_PG_URL") else {
        return;
    };
    let db = sea_orm::Database::connect(url).await.expect("connect");
    waiting_requests_are_granted_in_order(db).await;
}

/// Also: the lock table and the row are made on first use, in a fresh
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_grants_lock_requests_in_order() {
    use sea_orm::ConnectionTrait;
    let Some(url) = server_url("CONFLICTKIT_MYSQL_URL") else {
        return;
    };
    let name = format!("ck_coordination_{}", std::process::id());
    let admin = sea_orm::Database::connect(&url).await.expect("connect");
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{name}`"))
        .await
        .expect("drop the test database");
    admin
        .execute_unprepared(&format!("CREATE DATABASE `{name}`"))
        .await
        .expect("create the test database");
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let base = path.rsplit_once('/').expect("a database in the URL").0;
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let db = sea_orm::Database::connect(format!("{base}/{name}{query}"))
        .await
        .expect("connect to the test database");
    waiting_requests_are_granted_in_order(db).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE `{name}`"))
        .await
        .expect("drop the test database");
}

/// `url` (`mysql://user:password@host:port/database`) for another user and
/// database on the same server.
fn mysql_url_as(url: &str, user: &str, password: &str, database: &str) -> String {
    let rest = url.strip_prefix("mysql://").expect("a mysql:// URL");
    let server = rest
        .split_once('@')
        .map_or(rest, |(_, server)| server)
        .split('/')
        .next()
        .expect("host:port");
    format!("mysql://{user}:{password}@{server}/{database}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_without_the_right_to_create_the_lock_table_says_what_to_grant_and_calls_go_on() {
    use sea_orm::{ConnectionTrait, Database};
    let Some(url) = server_url("CONFLICTKIT_MYSQL_URL") else {
        return;
    };
    let admin = Database::connect(&url).await.expect("connect as admin");
    let name = format!("ck_nocreate_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("DROP USER IF EXISTS '{name}'@'127.0.0.1'"),
        format!("CREATE DATABASE {name}"),
        format!("CREATE TABLE {name}.t (id INT PRIMARY KEY, n INT NOT NULL)"),
        format!("INSERT INTO {name}.t VALUES (1, 0)"),
        format!("CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY 'pw'"),
        // everything a managed call needs, but not CREATE
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {name}.* TO '{name}'@'127.0.0.1'"),
    ] {
        admin.execute_unprepared(&sql).await.expect(&sql);
    }
    let db = Database::connect(mysql_url_as(&url, &name, "pw", &name))
        .await
        .expect("connect as the user without CREATE");

    let err = lock(&db, &LockPools::default(), 42)
        .await
        .expect_err("the lock table cannot be created")
        .to_string();
    assert!(
        err.contains("could not create the table conflictkit_locks")
            && err.contains("grant the user CREATE, INSERT and SELECT on it")
            && err.contains("CREATE TABLE IF NOT EXISTS conflictkit_locks"),
        "{err}"
    );

    // A managed call's warm gate asks for the lock on its first run; without
    // it the call goes on (with a warning) and commits.
    let resolver = crate::resolver::ConflictResolver::new(db.clone());
    resolver
        .managed(|txn: &crate::resolver::Txn| {
            Box::pin(async move {
                txn.execute_unprepared("UPDATE t SET n = n + 1 WHERE id = 1")
                    .await?;
                Ok::<_, crate::resolver::Error>(())
            })
        })
        .await
        .expect("the call runs without the lock");
    let n: i32 = db
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::MySql,
            "SELECT n FROM t WHERE id = 1",
        ))
        .await
        .expect("read back")
        .expect("the row")
        .try_get("", "n")
        .expect("n");
    assert_eq!(n, 1, "the call committed once");

    db.close().await.expect("close");
    for sql in [
        format!("DROP USER '{name}'@'127.0.0.1'"),
        format!("DROP DATABASE {name}"),
    ] {
        admin.execute_unprepared(&sql).await.expect(&sql);
    }
}
