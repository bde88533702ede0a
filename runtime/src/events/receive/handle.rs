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

/// A listener running in the background on a tokio runtime.
///
/// Dropping it starts a graceful shutdown in the background.
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
