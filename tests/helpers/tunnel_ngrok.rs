//! The ngrok agent wrapper, against a scripted stand-in agent
//! (`tests/fixtures/fake-ngrok.sh`) for the success and fast-fail paths, and
//! against the real agent (ngrok 2.3.41) run offline, inside a network
//! namespace that has nothing but loopback.
//!
//! The real agent comes from `CONFLICTKIT_NGROK_BIN` (set by `scripts/test.sh`
//! from `scripts/install-ngrok.sh`). Under `CONFLICTKIT_REQUIRE_SERVERS` (or `CI=true`) a
//! missing agent fails the test; otherwise that one test is skipped with a reason.
#![cfg(feature = "tunnel")]

use crate::common;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conflictkit::tunnel::{Ngrok, TunnelError};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// A deadline far beyond anything the fixture needs: a test that hits it fails
/// on the error variant, it does not wait for it.
const NEVER: Duration = Duration::from_secs(120);

/// One stand-in agent: a wrapper script that runs the fixture with a scenario,
/// and the file the fixture records its pids, argv and environment in.
struct Fake {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    record: PathBuf,
}

impl Fake {
    fn new(scenario: &str, version: &str) -> Self {
        Self::in_dir(tempfile::tempdir().expect("temp dir"), scenario, version)
    }

    fn in_dir(dir: tempfile::TempDir, scenario: &str, version: &str) -> Self {
        let bin = dir.path().join("ngrok");
        let record = dir.path().join("record");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-ngrok.sh");
        let script = format!(
            "#!/bin/sh\nFAKE_NGROK_SCENARIO={} FAKE_NGROK_VERSION={} FAKE_NGROK_RECORD={} \
             FAKE_NGROK_SIGNAL={} exec sh {} \"$@\"\n",
            quote(scenario),
            quote(version),
            quote(record.to_str().expect("utf-8 path")),
            quote(dir.path().join("signal").to_str().expect("utf-8 path")),
            quote(fixture.to_str().expect("utf-8 path")),
        );
        write_executable(&bin, &script);
        Self {
            _dir: dir,
            bin,
            record,
        }
    }

    /// The recorded values of `key` lines, in order.
    fn recorded(&self, key: &str) -> Vec<String> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        let prefix = format!("{key} ");
        text.lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .map(str::to_owned)
            .collect()
    }

    fn pids(&self, key: &str) -> Vec<u32> {
        self.recorded(key)
            .iter()
            .map(|pid| pid.parse().expect("pid"))
            .collect()
    }

    /// Every process the stand-in started (for `version` and for `http`) is gone.
    fn assert_no_process_left(&self) {
        let pids = self.pids("pid");
        assert!(!pids.is_empty(), "the stand-in recorded no pid");
        for pid in pids {
            assert!(
                !exists(pid),
                "agent pid {pid} still exists (running or unreaped)"
            );
        }
        // Its child was killed with its process group. It is not our child, so
        // we cannot reap it, and the kernel may still be tearing it down: wait
        // for its exit through a pidfd (the deadline only detects a failure).
        for pid in self.pids("grandchild") {
            wait_for_exit(pid, Duration::from_secs(10));
            assert!(!running(pid), "the agent's child {pid} is still running");
        }
    }
}

fn quote(s: &str) -> String {
    assert!(!s.contains('\''), "no quotes in test paths: {s}");
    format!("'{s}'")
}

fn write_executable(path: &Path, text: &str) {
    let mut file = std::fs::File::create(path).expect("create script");
    file.write_all(text.as_bytes()).expect("write script");
    drop(file);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// `kill(pid, 0)`: true while the process exists, zombie or not.
fn exists(pid: u32) -> bool {
    let pid = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Blocks until `pid` (any process, not only a child) has exited, or panics
/// after `deadline`.
fn wait_for_exit(pid: u32, deadline: Duration) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::ESRCH),
            "pidfd_open({pid}): {err}"
        );
        return; // already gone
    }
    let fd = libc::c_int::try_from(fd).expect("fd fits");
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(deadline.as_millis()).expect("deadline fits");
    // SAFETY: one valid pollfd; the descriptor is closed right after.
    let ready = unsafe { libc::poll(&mut pfd, 1, millis) };
    // SAFETY: `fd` is ours and not used again.
    unsafe { libc::close(fd) };
    assert_eq!(ready, 1, "pid {pid} did not exit within {deadline:?}");
}

/// Exists and is not a zombie.
fn running(pid: u32) -> bool {
    if !exists(pid) {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit(") ")
        .next()
        .and_then(|rest| rest.chars().next());
    state.is_some_and(|s| s != 'Z' && s != 'X')
}

/// Collects everything logged through `tracing` on this thread while the guard lives.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log sink").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

fn logs(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().expect("log sink")).into_owned()
}

#[tokio::test]
async fn v3_tunnel_url_and_web_addr_come_from_the_log_and_the_token_from_the_environment() {
    let fake = Fake::new("v3-ok", "3.18.4");
    let tunnel = Ngrok::http(8080)
        .binary(&fake.bin)
        .authtoken("tok_v3_secret")
        .startup_timeout(NEVER)
        .start()
        .await
        .expect("start");
    assert_eq!(
        tunnel.public_url(),
        "https://a1b2-203-0-113-5.ngrok-free.app"
    );
    // logged as {"IP":"127.0.0.1","Port":4049,"Zone":""}
    assert_eq!(tunnel.web_addr(), Some("127.0.0.1:4049"));
    assert_eq!(tunnel.agent_version(), "3.18.4");

    let argv = fake.recorded("argv");
    assert_eq!(argv.len(), 2, "`version`, then `http`: {argv:?}");
    assert_eq!(argv[0], "version");
    assert_eq!(
        argv[1],
        "http 8080 --log stdout --log-format json --log-level info"
    );
    assert!(
        argv.iter().all(|a| !a.contains("tok_v3_secret")),
        "token on argv: {argv:?}"
    );
    assert_eq!(
        fake.recorded("env").last().map(String::as_str),
        Some("tok_v3_secret")
    );

    let pid = tunnel.pid();
    assert!(running(pid));
    tunnel.stop().await.expect("stop");
    assert!(!exists(pid));
    fake.assert_no_process_left();
}

#[tokio::test]
async fn v2_prefers_the_https_tunnel_and_takes_the_token_on_its_command_line() {
    let fake = Fake::new("v2-ok", "2.3.41");
    let (buf, _guard) = capture_logs();
    let tunnel = Ngrok::http(8080)
        .binary(&fake.bin)
        .authtoken("tok_v2_secret")
        .region("eu")
        .startup_timeout(NEVER)
        .start()
        .await
        .expect("start");
    // The http tunnel is reported first; the wrapper waits for the https one.
    assert_eq!(tunnel.public_url(), "https://5f0e2b.ngrok.io");
    assert_eq!(tunnel.web_addr(), Some("127.0.0.1:4040"));
    assert_eq!(
        fake.recorded("argv").last().map(String::as_str),
        Some(
            "http -log=stdout -log-format=json -log-level=info -authtoken=tok_v2_secret -region=eu 8080"
        )
    );
    tunnel.stop().await.expect("stop");
    fake.assert_no_process_left();

    let logs = logs(&buf);
    assert!(
        logs.contains("-authtoken=[REDACTED]"),
        "command line not logged: {logs}"
    );
    assert!(
        logs.contains("started tunnel"),
        "agent output not logged: {logs}"
    );
    assert!(!logs.contains("tok_v2_secret"), "token in logs: {logs}");
}

#[tokio::test]
async fn the_agent_output_is_drained_after_start_so_it_never_blocks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("signal");
    let c_path = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).expect("c path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    // Read-write, so the FIFO has a writer and reading waits for the agent's line.
    let signal = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&fifo)
        .expect("open fifo");
    let fake = Fake::in_dir(dir, "chatty", "3.18.4");

    let tunnel = Ngrok::http(8080)
        .binary(&fake.bin)
        .startup_timeout(NEVER)
        .start()
        .await
        .expect("start");
    assert_eq!(tunnel.public_url(), "https://chatty.ngrok-free.app");
    // About 600 KiB of log after the tunnel line: the agent writes "drained"
    // only if the wrapper kept reading. The timeout only detects a blocked agent.
    let mut line = String::new();
    let mut signal = BufReader::new(signal);
    let read = signal.read_line(&mut line);
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the agent is blocked writing its log")
        .expect("read fifo");
    assert_eq!(line.trim(), "drained");
    tunnel.stop().await.expect("stop");
    fake.assert_no_process_left();
}

#[tokio::test]
async fn err_ngrok_4018_fails_at_once_with_the_code_and_a_hint() {
    let fake = Fake::new("err-4018", "3.18.4");
    let err = Ngrok::http(8080)
        .binary(&fake.bin)
        .startup_timeout(NEVER)
        .start()
        .await
        .expect_err("the agent reported ERR_NGROK_4018");
    match &err {
        TunnelError::Agent {
            code,
            message,
            hint,
        } => {
            assert_eq!(*code, 4018);
            assert!(
                message.contains("requires a verified account and authtoken"),
                "{message}"
            );
            assert!(hint.contains("NGROK_AUTHTOKEN"), "{hint}");
        }
        other => panic!("expected an Agent error, got {other:?}"),
    }
    assert!(err.to_string().contains("ERR_NGROK_4018"), "{err}");
    fake.assert_no_process_left();
}

#[tokio::test]
async fn err_ngrok_108_at_crit_level_fails_at_once() {
    let fake = Fake::new("err-108", "2.3.41");
    let err = Ngrok::http(8080)
        .binary(&fake.bin)
        .authtoken("tok")
        .startup_timeout(NEVER)
        .start()
        .await
        .expect_err("the agent reported ERR_NGROK_108");
    match &err {
        TunnelError::Agent {
            code,
            message,
            hint,
        } => {
            assert_eq!(*code, 108);
            assert!(
                message.contains("limited to 1 simultaneous ngrok client session"),
                "{message}"
            );
            assert!(hint.contains("stop the other ngrok agent"), "{hint}");
        }
        other => panic!("expected an Agent error, got {other:?}"),
    }
    fake.assert_no_process_left();
}

#[tokio::test]
async fn an_early_exit_reports_the_exit_status_and_the_last_lines() {
    let fake = Fake::new("early-exit", "3.18.4");
    let err = Ngrok::http(8080)
        .binary(&fake.bin)
        .startup_timeout(NEVER)
        .start()
        .await
        .expect_err("the agent exited");
    match &err {
        TunnelError::Exited { status, last_lines } => {
            assert_eq!(status.code(), Some(3));
            assert!(
                last_lines
                    .iter()
                    .any(|l| l.contains("Failed to start the web interface")),
                "stderr line missing: {last_lines:?}"
            );
            assert!(
                last_lines
                    .iter()
                    .any(|l| l.contains("bind: address already in use")),
                "stdout line missing: {last_lines:?}"
            );
        }
        other => panic!("expected an Exited error, got {other:?}"),
    }
    assert!(err.to_string().contains("exit status: 3"), "{err}");
    fake.assert_no_process_left();
}

#[tokio::test]
async fn a_silent_agent_that_ignores_sigterm_is_killed_at_the_deadline() {
    let fake = Fake::new("silence", "3.18.4");
    let err = Ngrok::http(8080)
        .binary(&fake.bin)
        // The deadline is what this test is about.
        .startup_timeout(Duration::from_millis(500))
        .stop_grace(Duration::from_millis(100))
        .start()
        .await
        .expect_err("the agent said nothing");
    match &err {
        TunnelError::Timeout {
            after,
            web_addr,
            last_error,
            last_lines,
        } => {
            assert_eq!(*after, Duration::from_millis(500));
            assert_eq!(web_addr, &None);
            assert_eq!(last_error, &None);
            assert!(last_lines.is_empty(), "{last_lines:?}");
        }
        other => panic!("expected a Timeout error, got {other:?}"),
    }
    // It ignored SIGTERM, so only the SIGKILL after the grace period ended it.
    fake.assert_no_process_left();
}

#[tokio::test]
async fn dropping_the_tunnel_stops_and_reaps_the_agent() {
    let fake = Fake::new("v3-ok", "3.18.4");
    let tunnel = Ngrok::http(8080)
        .binary(&fake.bin)
        .startup_timeout(NEVER)
        .start()
        .await
        .expect("start");
    let pid = tunnel.pid();
    assert!(running(pid));
    drop(tunnel);
    assert!(!exists(pid), "pid {pid} exists after drop");
    fake.assert_no_process_left();
}

#[tokio::test]
async fn the_token_never_appears_in_errors_or_logs() {
    let fake = Fake::new("err-105", "3.18.4");
    let token = "2AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789secret";
    let (buf, _guard) = capture_logs();
    let err = Ngrok::http(8080)
        .binary(&fake.bin)
        .authtoken(token)
        .startup_timeout(NEVER)
        .start()
        .await
        .expect_err("the agent reported ERR_NGROK_105");
    // The agent echoed the token back ("Your authtoken: …").
    assert_eq!(fake.recorded("env").last().map(String::as_str), Some(token));
    assert!(
        matches!(err, TunnelError::Agent { code: 105, .. }),
        "{err:?}"
    );
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(display.contains("Your authtoken: [REDACTED]"), "{display}");
    assert!(
        !display.contains(token) && !debug.contains(token),
        "{debug}"
    );

    let logs = logs(&buf);
    assert!(
        logs.contains("ERR_NGROK_105"),
        "agent output not logged: {logs}"
    );
    assert!(!logs.contains(token), "token in logs: {logs}");
    fake.assert_no_process_left();
}

#[tokio::test]
async fn a_missing_binary_says_how_to_install_ngrok() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = Ngrok::http(8080)
        .binary(dir.path().join("no-such-ngrok"))
        .start()
        .await
        .expect_err("no binary");
    assert!(matches!(err, TunnelError::NgrokNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("install ngrok") && msg.contains("NGROK_BIN"),
        "{msg}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "io error kept as source"
    );
}

#[tokio::test]
async fn agent_versions_it_cannot_drive_are_typed_errors() {
    let v1 = Fake::new("v3-ok", "1.7.1");
    let err = Ngrok::http(8080)
        .binary(&v1.bin)
        .start()
        .await
        .expect_err("v1");
    assert!(
        matches!(&err, TunnelError::UnsupportedVersion { version } if version == "1.7.1"),
        "{err:?}"
    );

    let garbage = Fake::new("v3-ok", "garbage");
    let err = Ngrok::http(8080)
        .binary(&garbage.bin)
        .start()
        .await
        .expect_err("no version");
    assert!(
        matches!(&err, TunnelError::UnknownVersion { output, .. } if output == "usage: ngrok [command]"),
        "{err:?}"
    );
    // Only `version` ran.
    assert_eq!(v1.recorded("argv"), ["version"]);
    v1.assert_no_process_left();
    garbage.assert_no_process_left();
}

/// The real agent's binary, or `None` (printing why) when it is not installed
/// and the servers are not required.
fn real_ngrok() -> Option<PathBuf> {
    match std::env::var_os("CONFLICTKIT_NGROK_BIN") {
        Some(bin) if !bin.is_empty() => Some(PathBuf::from(bin)),
        _ if common::servers_required() => panic!(
            "CONFLICTKIT_NGROK_BIN is not set but servers are required (CONFLICTKIT_REQUIRE_SERVERS or CI): run \
             `export CONFLICTKIT_NGROK_BIN=$(./scripts/install-ngrok.sh)`"
        ),
        _ => {
            eprintln!(
                "skipped: CONFLICTKIT_NGROK_BIN is not set (export \
                 CONFLICTKIT_NGROK_BIN=$(./scripts/install-ngrok.sh) to run the real agent offline)"
            );
            None
        }
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

#[tokio::test]
async fn the_real_agent_offline_reports_that_it_cannot_reach_ngrok() {
    let Some(real) = real_ngrok() else { return };
    assert!(
        real.is_file(),
        "CONFLICTKIT_NGROK_BIN={} is not a file",
        real.display()
    );
    for tool in ["unshare", "ip"] {
        assert!(
            on_path(tool),
            "`{tool}` is not on PATH: the real agent runs only inside a network namespace \
             (apt-get install util-linux iproute2)"
        );
    }
    // The wrapper records its pid (kept through both execs: unshare without
    // --fork execs in place), then runs the agent in a new network namespace
    // with only loopback, up. Never on the host network.
    let dir = tempfile::tempdir().expect("temp dir");
    let pids = dir.path().join("pids");
    let wrapper = dir.path().join("ngrok-offline");
    write_executable(
        &wrapper,
        &format!(
            "#!/bin/sh\necho \"$$\" >> {pids}\nexec unshare -n sh -c 'ip link set lo up && exec \"$0\" \"$@\"' {real} \"$@\"\n",
            pids = quote(pids.to_str().expect("utf-8 path")),
            real = quote(real.to_str().expect("utf-8 path")),
        ),
    );

    let (buf, _guard) = capture_logs();
    let err = Ngrok::http(8080)
        .binary(&wrapper)
        .authtoken("offline_token_never_sent")
        // long enough for a slow agent start on a loaded machine to log its
        // web address and its first session error (the test waits it out)
        .startup_timeout(Duration::from_secs(10))
        .start()
        .await
        .expect_err("there is no network in the namespace");

    match &err {
        TunnelError::Timeout {
            web_addr,
            last_error,
            last_lines,
            ..
        } => {
            let addr: std::net::SocketAddr = web_addr
                .as_deref()
                .unwrap_or_else(|| panic!("no `starting web service` seen: {last_lines:?}"))
                .parse()
                .expect("the web service address is a socket address");
            assert!(addr.ip().is_loopback(), "{addr}");
            let last_error = last_error
                .as_deref()
                .unwrap_or_else(|| panic!("no agent error kept: {last_lines:?}"));
            // The agent's own words: its session cannot reach ngrok's servers
            // (the `err` text varies: DNS lookups of different hosts fail).
            assert!(
                last_error.contains("failed to reconnect session"),
                "{last_error}"
            );
            let from_agent = last_lines.iter().any(|line| {
                serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
                    v["lvl"] == "eror"
                        && format!(
                            "{}: {}",
                            v["msg"].as_str().unwrap_or(""),
                            v["err"].as_str().unwrap_or("")
                        ) == last_error
                })
            });
            assert!(
                from_agent,
                "{last_error:?} is not one of the agent's lines: {last_lines:#?}"
            );
        }
        other => panic!("expected a Timeout error with the agent's error, got {other:?}"),
    }
    eprintln!("the wrapper reported: {err}");
    let message = err.to_string();
    assert!(message.contains("failed to reconnect session"), "{message}");

    let logs = logs(&buf);
    assert!(
        logs.contains("starting web service"),
        "agent output not logged: {logs}"
    );
    assert!(!logs.contains("offline_token_never_sent"), "token in logs");

    let pids: Vec<u32> = std::fs::read_to_string(&pids)
        .expect("the wrapper recorded its pids")
        .lines()
        .map(|l| l.trim().parse().expect("pid"))
        .collect();
    assert_eq!(pids.len(), 2, "`version`, then `http`: {pids:?}");
    for pid in pids {
        assert!(!exists(pid), "agent pid {pid} still exists");
    }
}
