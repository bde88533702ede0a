//! Running a listener's own server: in the background on the caller's
//! runtime, on a thread of its own, or in the foreground.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::handle::{BlockingListenerHandle, ListenerHandle, Shutdown};
use super::listener::Listener;
use super::serve::serve_on;
use crate::events::error::ListenerError;

impl<S: Send + Sync + 'static> Listener<S> {
    async fn bind(&self) -> Result<(TcpListener, SocketAddr), ListenerError> {
        self.check_state()?;
        let socket = TcpListener::bind(self.bind)
            .await
            .map_err(|source| ListenerError::Bind {
                addr: self.bind,
                source,
            })?;
        let addr = socket.local_addr().map_err(ListenerError::LocalAddr)?;
        tracing::info!(%addr, "event listener listening");
        Ok((socket, addr))
    }

    /// Binds and serves in the background on the current tokio runtime.
    ///
    /// The returned handle stops the server when dropped (gracefully, in the
    /// background) or with [`ListenerHandle::shutdown`].
    pub async fn start(self) -> Result<ListenerHandle, ListenerError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ListenerError::NoRuntime)?;
        let (socket, addr) = self.bind().await?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (closed_tx, closed_rx) = watch::channel(false);
        let task = runtime.spawn(serve_on(
            socket,
            Arc::new(self.shared),
            requested(shutdown_rx),
            closed_tx,
        ));
        Ok(ListenerHandle {
            addr,
            shutdown_tx,
            closed_rx,
            task: Some(task),
        })
    }

    /// Binds, then serves on a thread of its own with its own tokio runtime,
    /// for programs that are not async (the original's daemon thread).
    ///
    /// ```no_run
    /// use conflictkit::events::{Listener, ListenerConfig};
    ///
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse().unwrap()));
    /// listener.on_sync("txupdate", |data: serde_json::Value| println!("{data}"));
    /// let handle = listener.start_blocking_thread()?;
    /// println!("listening on {}", handle.local_addr());
    /// handle.shutdown();
    /// # Ok::<(), conflictkit::events::ListenerError>(())
    /// ```
    pub fn start_blocking_thread(self) -> Result<BlockingListenerHandle, ListenerError> {
        self.check_state()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("conflictkit-events")
            .enable_all()
            .build()
            .map_err(ListenerError::Thread)?;
        let (socket, addr) = runtime.block_on(self.bind())?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (closed_tx, closed_rx) = watch::channel(false);
        let shutdown_timeout = self.shared.config.shutdown_timeout;
        let shared = Arc::new(self.shared);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("conflictkit-event-listener".into())
            .spawn(move || {
                let outcome =
                    runtime.block_on(serve_on(socket, shared, requested(shutdown_rx), closed_tx));
                // A hung sync handler must not keep the runtime (and this
                // thread) alive forever: give the blocking pool the shutdown
                // timeout, then leave it.
                runtime.shutdown_timeout(shutdown_timeout);
                let _ = done_tx.send(outcome);
            })
            .map_err(ListenerError::Thread)?;
        Ok(BlockingListenerHandle {
            addr,
            shutdown_tx,
            closed_rx,
            done_rx,
            shutdown_timeout,
            thread: Some(thread),
        })
    }

    /// Binds and serves in the foreground until Ctrl-C, then shuts down
    /// gracefully.
    pub async fn serve(self) -> Result<Shutdown, ListenerError> {
        let (socket, _) = self.bind().await?;
        let (closed_tx, _) = watch::channel(false);
        let (signal_tx, signal_rx) = tokio::sync::oneshot::channel();
        let signal = async move {
            let result = tokio::signal::ctrl_c().await;
            let _ = signal_tx.send(result);
        };
        let outcome = serve_on(socket, Arc::new(self.shared), signal, closed_tx).await;
        match signal_rx.await {
            Ok(Err(e)) => Err(ListenerError::Signal(e)),
            _ => Ok(outcome),
        }
    }

    /// Binds and serves in the foreground until `signal` completes, then
    /// shuts down gracefully.
    pub async fn serve_with_shutdown(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Shutdown, ListenerError> {
        let (socket, _) = self.bind().await?;
        let (closed_tx, _) = watch::channel(false);
        Ok(serve_on(socket, Arc::new(self.shared), signal, closed_tx).await)
    }
}

/// Resolves when shutdown is requested or the requester is gone.
async fn requested(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
