//! The ngrok agent, run as a child process and read, never guessed.

mod log;
mod version;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::log::{LogBook, LogEvent, Redactor};
use self::version::{Flags, Major};
use super::error::{TunnelError, hint_for};
use super::process::ProcessGroup;

/// Default [`Ngrok::startup_timeout`].
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Default [`Ngrok::stop_grace`].
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// Builder for an ngrok HTTP tunnel to a local port.
///
/// The agent binary is the one given to [`binary`](Self::binary), else the one
/// named by `NGROK_BIN`, else `ngrok` on `PATH`. The authtoken is the one given
/// to [`authtoken`](Self::authtoken), else `NGROK_AUTHTOKEN`, else
/// `NGROK_AUTH_TOKEN` (the original's name), else whatever the agent's own
/// configuration holds.
///
/// [`start`](Self::start) asks the agent for its version (`ngrok version`),
/// runs `ngrok http` with JSON logging on stdout, and waits for the agent to
/// report its public URL. ngrok 3 gets the token through its environment;
/// ngrok 2 only accepts it on its command line (`-authtoken=…`), where other
/// local users can see it in the process list. The token is redacted from
/// everything this module logs or returns.
///
/// ```no_run
/// # async fn run() -> Result<(), conflictkit::tunnel::TunnelError> {
/// use std::time::Duration;
/// use conflictkit::tunnel::Ngrok;
///
/// let tunnel = Ngrok::http(8080)
///     .region("eu")
///     .startup_timeout(Duration::from_secs(10))
///     .start()
///     .await?;
/// println!("public URL: {}", tunnel.public_url());
/// tunnel.stop().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Ngrok {
    port: u16,
    binary: Option<PathBuf>,
    authtoken: Option<String>,
    region: Option<String>,
    domain: Option<String>,
    config_files: Vec<PathBuf>,
    startup_timeout: Duration,
    stop_grace: Duration,
}

impl fmt::Debug for Ngrok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ngrok")
            .field("port", &self.port)
            .field("binary", &self.binary)
            .field("authtoken", &self.authtoken.as_ref().map(|_| "[REDACTED]"))
            .field("region", &self.region)
            .field("domain", &self.domain)
            .field("config_files", &self.config_files)
            .field("startup_timeout", &self.startup_timeout)
            .field("stop_grace", &self.stop_grace)
            .finish()
    }
}

impl Ngrok {
    /// An HTTP tunnel to `port` on the local machine.
    ///
    /// ```
    /// let builder = conflictkit::tunnel::Ngrok::http(8080).authtoken("secret");
    /// assert!(!format!("{builder:?}").contains("secret"));
    /// ```
    pub fn http(port: u16) -> Self {
        Self {
            port,
            binary: None,
            authtoken: None,
            region: None,
            domain: None,
            config_files: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            stop_grace: DEFAULT_STOP_GRACE,
        }
    }

    /// The agent binary to run (default: `NGROK_BIN`, else `ngrok` on `PATH`).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// The authtoken (default: `NGROK_AUTHTOKEN`, else `NGROK_AUTH_TOKEN`).
    pub fn authtoken(mut self, token: impl Into<String>) -> Self {
        self.authtoken = Some(token.into());
        self
    }

    /// The ngrok region (`us`, `eu`, `ap`, …).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// A reserved domain for the tunnel (`--domain` for ngrok 3, `-hostname` for ngrok 2).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// An agent configuration file; may be called several times. As with
    /// ngrok's own `--config`, once any file is given the default file is no
    /// longer read unless it is given too.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_files.push(path.into());
        self
    }

    /// How long [`start`](Self::start) waits for the agent to report its tunnel
    /// before stopping it and failing (default 20 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// How long a stop waits after SIGTERM before SIGKILL (default 5 s).
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Starts the agent and waits until it reports its public URL.
    ///
    /// Fails at once when the agent logs an `ERR_NGROK_<n>` error, when it
    /// exits (with its exit status and last log lines), or when the startup
    /// timeout passes (with its last error and log lines). On failure the
    /// agent is stopped and reaped before this returns.
    pub async fn start(self) -> Result<NgrokTunnel, TunnelError> {
        let deadline = Instant::now() + self.startup_timeout;
        let binary = resolve_binary(self.binary.clone(), env_var);
        let token = resolve_token(self.authtoken.clone(), env_var);
        let redactor = Redactor::new(token.as_deref());

        let (version, major) = self.detect_version(&binary, deadline).await?;
        let flags = Flags {
            port: self.port,
            authtoken: token.as_deref(),
            region: self.region.as_deref(),
            domain: self.domain.as_deref(),
            config_files: &self.config_files,
        };
        let args = version::http_args(major, &flags);
        let mut cmd = Command::new(&binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let (Major::V3, Some(token)) = (major, &token) {
            cmd.env("NGROK_AUTHTOKEN", token);
        }
        tracing::info!(
            binary = %binary.display(),
            version,
            args = %redactor.redact(&shown(&args)),
            "starting the ngrok agent"
        );
        let mut process = ProcessGroup::spawn(&mut cmd).map_err(|e| spawn_error(&binary, e))?;
        let pid = process.pid();

        let book = Arc::new(LogBook::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut readers = Vec::new();
        if let Some(out) = process.child_mut().stdout.take() {
            let pump = log::pump(
                out,
                "stdout",
                pid,
                redactor.clone(),
                book.clone(),
                tx.clone(),
            );
            readers.push(AbortOnDrop(tokio::spawn(pump)));
        }
        if let Some(err) = process.child_mut().stderr.take() {
            let pump = log::pump(
                err,
                "stderr",
                pid,
                redactor.clone(),
                book.clone(),
                tx.clone(),
            );
            readers.push(AbortOnDrop(tokio::spawn(pump)));
        }
        drop(tx);

        let startup = Startup {
            major,
            deadline,
            timeout: self.startup_timeout,
            book: &book,
            binary: &binary,
        };
        match startup.wait_for_tunnel(&mut process, &mut rx).await {
            Ok((public_url, web_addr)) => {
                tracing::info!(pid, public_url, web_addr, "ngrok tunnel started");
                Ok(NgrokTunnel {
                    public_url,
                    web_addr,
                    version,
                    process,
                    readers,
                    stop_grace: self.stop_grace,
                })
            }
            Err(err) => {
                match process.stop(self.stop_grace).await {
                    Ok(status) => {
                        tracing::debug!(pid, %status, "ngrok agent stopped after a failed start")
                    }
                    Err(e) => {
                        tracing::warn!(pid, error = %e, "could not stop the ngrok agent after a failed start")
                    }
                }
                Err(err)
            }
        }
    }

    /// Runs `ngrok version` and tells which command line the agent takes.
    async fn detect_version(
        &self,
        binary: &Path,
        deadline: Instant,
    ) -> Result<(String, Major), TunnelError> {
        let mut cmd = Command::new(binary);
        cmd.arg("version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut process = ProcessGroup::spawn(&mut cmd).map_err(|e| spawn_error(binary, e))?;
        let mut stdout = process.child_mut().stdout.take();
        let mut stderr = process.child_mut().stderr.take();
        let run = async {
            let (out, err) = tokio::join!(read_all(stdout.as_mut()), read_all(stderr.as_mut()));
            let status = process.wait().await?;
            Ok::<_, std::io::Error>((status, out?, err?))
        };
        let (status, out, err) = match tokio::time::timeout_at(deadline, run).await {
            Ok(result) => result.map_err(|e| spawn_error(binary, e))?,
            Err(_) => {
                let _ = process.stop(self.stop_grace).await;
                return Err(TunnelError::Timeout {
                    after: self.startup_timeout,
                    web_addr: None,
                    last_error: Some(format!("`{} version` did not finish", binary.display())),
                    last_lines: Vec::new(),
                });
            }
        };
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        )
        .trim()
        .to_owned();
        let parsed = status
            .success()
            .then(|| version::parse_version(&output))
            .flatten();
        let Some((version, major)) = parsed else {
            return Err(TunnelError::UnknownVersion {
                binary: binary.to_owned(),
                output,
            });
        };
        tracing::debug!(binary = %binary.display(), version, "detected the ngrok agent version");
        match major {
            0 | 1 => Err(TunnelError::UnsupportedVersion { version }),
            2 => Ok((version, Major::V2)),
            _ => Ok((version, Major::V3)),
        }
    }
}

/// What the startup loop needs besides the process and the events.
struct Startup<'a> {
    major: Major,
    deadline: Instant,
    timeout: Duration,
    book: &'a LogBook,
    binary: &'a Path,
}

impl Startup<'_> {
    /// Waits for the `started tunnel` line; returns the public URL and the web
    /// service address.
    async fn wait_for_tunnel(
        &self,
        process: &mut ProcessGroup,
        events: &mut mpsc::UnboundedReceiver<LogEvent>,
    ) -> Result<(String, Option<String>), TunnelError> {
        let mut web_addr: Option<String> = None;
        let mut http_url: Option<String> = None;
        let mut last_error: Option<String> = None;
        let mut exited: Option<ExitStatus> = None;
        let exited_error = |status| TunnelError::Exited {
            status,
            last_lines: self.book.lines(),
        };
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(LogEvent::WebService(addr)) => {
                        tracing::debug!(pid = process.pid(), addr, "ngrok web service started");
                        web_addr = Some(addr);
                    }
                    Some(LogEvent::Tunnel(url)) => {
                        if let Some(status) = exited {
                            return Err(exited_error(status));
                        }
                        // ngrok 2 opens an http and an https tunnel: wait for the https one.
                        if self.major == Major::V2 && !url.starts_with("https://") {
                            http_url = Some(url);
                        } else {
                            return Ok((url, web_addr));
                        }
                    }
                    Some(LogEvent::Failure { code: Some(code), text }) => {
                        return Err(TunnelError::Agent { code, message: text, hint: hint_for(code) });
                    }
                    Some(LogEvent::Failure { code: None, text }) => last_error = Some(text),
                    None => {
                        // Both pipes closed: the agent is exiting, or has exited.
                        let status = match exited {
                            Some(status) => status,
                            None => match tokio::time::timeout_at(self.deadline, process.wait()).await {
                                Ok(status) => status.map_err(|e| spawn_error(self.binary, e))?,
                                Err(_) => return Err(self.timed_out(web_addr, last_error)),
                            },
                        };
                        return Err(exited_error(status));
                    }
                },
                status = process.wait(), if exited.is_none() => {
                    // Keep reading: the lines it printed before exiting tell why.
                    exited = Some(status.map_err(|e| spawn_error(self.binary, e))?);
                }
                () = tokio::time::sleep_until(self.deadline) => {
                    if let Some(status) = exited {
                        return Err(exited_error(status));
                    }
                    if let Some(url) = http_url {
                        tracing::warn!(url, "ngrok reported no https tunnel before the deadline; using its http tunnel");
                        return Ok((url, web_addr));
                    }
                    return Err(self.timed_out(web_addr, last_error));
                }
            }
        }
    }

    fn timed_out(&self, web_addr: Option<String>, last_error: Option<String>) -> TunnelError {
        TunnelError::Timeout {
            after: self.timeout,
            web_addr,
            last_error,
            last_lines: self.book.lines(),
        }
    }
}

/// A running ngrok agent and its tunnel. Stopped by [`stop`](Self::stop), or
/// on drop (SIGTERM, a short grace period, SIGKILL, reap: drop blocks for at
/// most a quarter of a second unless the agent ignores SIGKILL).
#[derive(Debug)]
pub struct NgrokTunnel {
    public_url: String,
    web_addr: Option<String>,
    version: String,
    process: ProcessGroup,
    readers: Vec<AbortOnDrop>,
    stop_grace: Duration,
}

impl NgrokTunnel {
    /// The public URL the agent reported (`https://…` when it opened one).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The address of the agent's local web service (inspection UI and API),
    /// as the agent reported it; `None` if it reported none (e.g. disabled in
    /// its configuration).
    pub fn web_addr(&self) -> Option<&str> {
        self.web_addr.as_deref()
    }

    /// The agent's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The agent's version, as `ngrok version` printed it.
    pub fn agent_version(&self) -> &str {
        &self.version
    }

    /// Stops the agent: SIGTERM to its process group, up to the stop grace
    /// period, then SIGKILL; reaps it either way.
    pub async fn stop(mut self) -> Result<(), TunnelError> {
        let pid = self.process.pid();
        let status = self
            .process
            .stop(self.stop_grace)
            .await
            .map_err(|source| TunnelError::Stop { pid, source })?;
        // The pipes are closed now; let the readers log the agent's last lines.
        for reader in std::mem::take(&mut self.readers) {
            reader.finish(Duration::from_secs(1)).await;
        }
        tracing::info!(pid, %status, "ngrok agent stopped");
        Ok(())
    }
}

/// A task that is aborted when its handle is dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    async fn finish(mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, &mut self.0).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn read_all<R: AsyncRead + Unpin>(reader: Option<&mut R>) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(reader) = reader {
        reader.read_to_end(&mut buf).await?;
    }
    Ok(buf)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The explicit binary, else `NGROK_BIN`, else `ngrok` (searched on `PATH`).
fn resolve_binary(explicit: Option<PathBuf>, env: impl Fn(&str) -> Option<String>) -> PathBuf {
    explicit
        .or_else(|| {
            env("NGROK_BIN")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("ngrok"))
}

/// The explicit token, else `NGROK_AUTHTOKEN`, else `NGROK_AUTH_TOKEN`.
fn resolve_token(explicit: Option<String>, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    explicit.filter(|s| !s.is_empty()).or_else(|| {
        ["NGROK_AUTHTOKEN", "NGROK_AUTH_TOKEN"]
            .into_iter()
            .find_map(|name| env(name).filter(|s| !s.is_empty()))
    })
}

fn spawn_error(binary: &Path, source: std::io::Error) -> TunnelError {
    if source.kind() == std::io::ErrorKind::NotFound {
        TunnelError::NgrokNotFound {
            binary: binary.to_owned(),
            source,
        }
    } else {
        TunnelError::Spawn {
            binary: binary.to_owned(),
            source,
        }
    }
}

fn shown(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn binary_comes_from_builder_then_env_then_path() {
        let vars = [("NGROK_BIN", "/opt/ngrok")];
        assert_eq!(
            resolve_binary(Some("/x/ngrok".into()), env(&vars)),
            PathBuf::from("/x/ngrok")
        );
        assert_eq!(
            resolve_binary(None, env(&vars)),
            PathBuf::from("/opt/ngrok")
        );
        assert_eq!(resolve_binary(None, env(&[])), PathBuf::from("ngrok"));
    }

    #[test]
    fn token_comes_from_builder_then_both_env_names() {
        let both = [("NGROK_AUTHTOKEN", "new"), ("NGROK_AUTH_TOKEN", "old")];
        let old = [("NGROK_AUTHTOKEN", ""), ("NGROK_AUTH_TOKEN", "old")];
        assert_eq!(
            resolve_token(Some("mine".into()), env(&both)).as_deref(),
            Some("mine")
        );
        assert_eq!(resolve_token(None, env(&both)).as_deref(), Some("new"));
        assert_eq!(resolve_token(None, env(&old)).as_deref(), Some("old"));
        assert_eq!(resolve_token(None, env(&[])), None);
    }
}
