//! The error type of the tunnel module.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// A boxed error from a library that reports its own error type (bore-cli's `anyhow`).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong while starting or stopping a tunnel.
///
/// The authtoken never appears in these errors: every line taken from the agent
/// is redacted before it is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// The ngrok agent binary does not exist.
    #[error(
        "the ngrok agent `{}` was not found: install ngrok (https://ngrok.com/download, or \
         `npm install @expo/ngrok-bin-linux-x64`), then put it on PATH, set NGROK_BIN or call \
         Ngrok::binary",
        binary.display()
    )]
    NgrokNotFound {
        /// The binary that was looked for.
        binary: PathBuf,
        /// The error from spawning it.
        source: io::Error,
    },

    /// The ngrok agent binary exists but could not be run.
    #[error(
        "could not run the ngrok agent `{}`: check that it is an executable ngrok binary",
        binary.display()
    )]
    Spawn {
        /// The binary that was run.
        binary: PathBuf,
        /// The error from spawning it or reading its output.
        source: io::Error,
    },

    /// `ngrok version` did not print a version this wrapper understands.
    #[error(
        "could not tell the version of the ngrok agent `{}` from `ngrok version` (it printed \
         {output:?}): use an ngrok 2 or 3 agent",
        binary.display()
    )]
    UnknownVersion {
        /// The binary that was asked.
        binary: PathBuf,
        /// What it printed (trimmed, redacted).
        output: String,
    },

    /// The agent is of a major version this wrapper cannot drive.
    #[error("ngrok agent version {version} is not supported: install ngrok 3 (or 2)")]
    UnsupportedVersion {
        /// The version the agent reported.
        version: String,
    },

    /// The agent logged an `ERR_NGROK_<code>` error.
    #[error("the ngrok agent failed with ERR_NGROK_{code}: {hint}; the agent said: {message}")]
    Agent {
        /// The numeric part of `ERR_NGROK_<code>`.
        code: u32,
        /// The agent's own error text (redacted).
        message: String,
        /// What to do about it.
        hint: String,
    },

    /// The agent exited before it reported a tunnel.
    #[error(
        "the ngrok agent exited ({status}) before it reported a tunnel; its last log lines:{}",
        indent(last_lines)
    )]
    Exited {
        /// How it exited.
        status: ExitStatus,
        /// Its last output lines, stdout and stderr interleaved (redacted).
        last_lines: Vec<String>,
    },

    /// The agent reported no tunnel before the startup deadline; it was stopped.
    #[error("{}", timeout_message(*after, web_addr.as_deref(), last_error.as_deref(), last_lines))]
    Timeout {
        /// The startup timeout that passed.
        after: Duration,
        /// The address of the agent's web service, when it reported one.
        web_addr: Option<String>,
        /// The last error the agent logged without an `ERR_NGROK` code (redacted),
        /// e.g. that it cannot reach ngrok's servers.
        last_error: Option<String>,
        /// Its last output lines (redacted).
        last_lines: Vec<String>,
    },

    /// Signalling or reaping the agent failed.
    #[error("could not stop the ngrok agent (pid {pid}); it may still be running")]
    Stop {
        /// The agent's process id.
        pid: u32,
        /// The error from the system call.
        source: io::Error,
    },

    /// [`Bore::start`](super::Bore::start) was called without a local port.
    #[error("no local port to expose through bore: call Bore::local_port")]
    MissingLocalPort,

    /// The bore tunnel could not be opened.
    #[error(
        "could not open a bore tunnel from {server} to local port {local_port}: check the server \
         address, that a bore server runs there and that the secret matches"
    )]
    BoreConnect {
        /// The bore server's host.
        server: String,
        /// The local port that was to be exposed.
        local_port: u16,
        /// bore's error.
        source: BoxError,
    },

    /// The port range given to a bore server is empty.
    #[error("the bore port range {start}..={end} is empty: give a range with start <= end")]
    EmptyPortRange {
        /// First port of the range.
        start: u16,
        /// Last port of the range.
        end: u16,
    },

    /// The bore server could not listen on its control port.
    #[error(
        "the bore server could not listen on {addr}: bore's control port is fixed, so only one \
         bore server can run per address (is another one running?)"
    )]
    BoreServer {
        /// The control address it tried.
        addr: SocketAddr,
        /// The bind error.
        source: BoxError,
    },

    /// A background thread for bore could not be started.
    #[error("could not start the background thread that runs bore")]
    BoreThread {
        /// The error from the system.
        source: io::Error,
    },
}

/// Indents log lines under an error message, or says there were none.
fn indent(lines: &[String]) -> String {
    if lines.is_empty() {
        return " (none)".to_owned();
    }
    let mut out = String::new();
    for line in lines {
        let _ = write!(out, "\n    {line}");
    }
    out
}

fn timeout_message(
    after: Duration,
    web_addr: Option<&str>,
    last_error: Option<&str>,
    last_lines: &[String],
) -> String {
    let mut msg = format!("the ngrok agent reported no tunnel within {after:?}");
    if let Some(addr) = web_addr {
        let _ = write!(msg, " (its web service started on {addr})");
    }
    match last_error {
        Some(err) => {
            let _ = write!(
                msg,
                "; its last error was: {err}; check that the agent can reach ngrok's servers"
            );
        }
        None => msg.push_str(
            "; raise Ngrok::startup_timeout if the network is slow, or check the agent's output",
        ),
    }
    let _ = write!(msg, "; its last log lines:{}", indent(last_lines));
    msg
}

/// What to do about an `ERR_NGROK_<code>`.
pub(crate) fn hint_for(code: u32) -> String {
    match code {
        4018 => "the agent needs an authtoken: set NGROK_AUTHTOKEN or call Ngrok::authtoken \
                 (get one at https://dashboard.ngrok.com/get-started/your-authtoken)"
            .to_owned(),
        105 | 107 => "the authtoken is not valid: check NGROK_AUTHTOKEN or Ngrok::authtoken \
                      against https://dashboard.ngrok.com/get-started/your-authtoken"
            .to_owned(),
        108 => "the account allows no more simultaneous agent sessions: stop the other ngrok \
                agent (https://dashboard.ngrok.com/agents) or upgrade the plan"
            .to_owned(),
        334 => "that endpoint is already online in another agent session: stop it or choose \
                another domain"
            .to_owned(),
        313 => "an option you asked for needs a paid ngrok plan: drop it (e.g. Ngrok::domain or \
                Ngrok::region) or upgrade"
            .to_owned(),
        _ => format!("see https://ngrok.com/docs/errors/err_ngrok_{code}"),
    }
}
