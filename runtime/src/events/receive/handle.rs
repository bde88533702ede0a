//! Handles of a running listener: stop it, wait for it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

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

/// A listener running on its own thread; see
/// [`Listener::start_blocking_thread`](crate::events::Listener::start_blocking_thread).
///
/// Dropping it shuts the listener down and waits for the thread, for a
/// bounded time: in-flight requests get the shutdown timeout, handlers still
/// running on the blocking pool another shutdown timeout; a thread still not
/// done after that (a sync handler that never returns) is logged and left
/// behind rather than blocking the caller forever.
#[derive(Debug)]
pub struct BlockingListenerHandle {
    pub(crate) addr: SocketAddr,
    pub(crate) shutdown_tx: watch::Sender<bool>,
    pub(crate) closed_rx: watch::Receiver<bool>,
    pub(crate) done_rx: std::sync::mpsc::Receiver<Shutdown>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

impl BlockingListenerHandle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the listening socket is closed.
    pub fn is_closed(&self) -> bool {
        *self.closed_rx.borrow()
    }

    /// Shuts down as [`ListenerHandle::shutdown`] does, blocking the caller.
    pub fn shutdown(mut self) -> Shutdown {
        self.stop()
    }

    fn stop(&mut self) -> Shutdown {
        let _ = self.shutdown_tx.send(true);
        let Some(thread) = self.thread.take() else {
            return Shutdown::Graceful;
        };
        // Draining, then the blocking pool: two shutdown timeouts, and a margin.
        let bound = self
            .shutdown_timeout
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(1));
        match self.done_rx.recv_timeout(bound) {
            Ok(outcome) => {
                let _ = thread.join();
                outcome
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                tracing::error!(
                    waited_ms = bound.as_millis(),
                    "the event listener thread did not stop in time (a handler that never returns?); leaving it behind"
                );
                Shutdown::Forced { aborted: 0 }
            }
            // The thread ended without an outcome: it panicked.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                Shutdown::Forced { aborted: 0 }
            }
        }
    }
}

impl Drop for BlockingListenerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
