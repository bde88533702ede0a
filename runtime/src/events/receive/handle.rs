//! The handle of a running listener: stop it, wait for it.

use std::future::Future;
use std::net::SocketAddr;

use tokio::sync::watch;

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shutdown {
    /// Every in-flight request completed within the timeout.
    Graceful,
    /// The timeout passed; this many connections were aborted.
    Forced {
        /// Connections still open when the timeout passed.
        aborted: usize,
    },
}

/// A listener running in the background on a tokio runtime, from
/// [`Listener::start`](crate::events::Listener::start).
///
/// Dropping it starts a graceful shutdown in the background;
/// [`shutdown`](Self::shutdown) does it and waits. From code that is not
/// async, `runtime.block_on(handle.shutdown())` on the runtime it was started on.
///
/// ```
/// use conflictkit::events::{Listener, ListenerConfig, Shutdown};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let handle = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?)).start().await?;
/// let addr = handle.local_addr();
/// assert_ne!(addr.port(), 0);
/// let closed = handle.closed();
/// assert_eq!(handle.shutdown().await, Shutdown::Graceful);
/// closed.await;
/// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ListenerHandle {
    pub(crate) addr: SocketAddr,
    pub(crate) shutdown_tx: watch::Sender<bool>,
    pub(crate) closed_rx: watch::Receiver<bool>,
    pub(crate) task: Option<tokio::task::JoinHandle<Shutdown>>,
}

impl ListenerHandle {
    /// The address the listener is bound to (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resolves once the listening socket is closed (new connections are
    /// refused), after a shutdown has begun.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.closed_rx.clone();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Stops accepting connections, waits for in-flight requests up to the
    /// configured shutdown timeout, then aborts the remaining connections.
    /// Handlers those requests were running are not cancelled half-way: they
    /// finish in the background on the runtime (or end at their own timeout).
    pub async fn shutdown(mut self) -> Shutdown {
        let _ = self.shutdown_tx.send(true);
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Shutdown::Forced { aborted: 0 }),
            None => Shutdown::Graceful,
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}
