//! Tunnels: expose a local port (e.g. an event listener) on a public URL.
//!
//! - [`Ngrok`] runs the ngrok agent as a child process and reads its JSON log:
//!   the public URL comes from the agent's `started tunnel` line, never from a
//!   guess; `ERR_NGROK_*` errors, an early exit and a startup deadline fail
//!   fast with the agent's own words; the agent runs in a process group of its
//!   own and is stopped with SIGTERM, a grace period, SIGKILL and a reap, also
//!   on drop and when starting fails.
//! - [`Bore`] opens a tunnel through a self-hosted [bore](https://github.com/ekzhang/bore)
//!   relay; [`testing::BoreServer`] runs such a relay inside the process, so a
//!   real tunnel can run end to end on one machine in tests.
//!
//! ```no_run
//! # async fn run() -> Result<(), conflictkit::tunnel::TunnelError> {
//! // token from NGROK_AUTHTOKEN, binary from NGROK_BIN or PATH
//! let tunnel = conflictkit::tunnel::Ngrok::http(8080).start().await?;
//! println!("{}", tunnel.public_url());
//! tunnel.stop().await?; // also stops on drop
//! # Ok(()) }
//! ```

mod bore;
mod error;
mod ngrok;
mod process;

pub use self::bore::{BORE_CONTROL_PORT, Bore, BoreTunnel};
pub use self::error::{BoxError, TunnelError};
pub use self::ngrok::{DEFAULT_STARTUP_TIMEOUT, DEFAULT_STOP_GRACE, Ngrok, NgrokTunnel};

/// What tests need to run a tunnel end to end without a server elsewhere.
///
/// In production, run the relay with the `bore server` command on the
/// public host and point [`Bore`] at it.
pub mod testing {
    pub use super::bore::BoreServer;
}
