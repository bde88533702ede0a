//! Running a listener's own server: in the background on the caller's
//! runtime (`start`), or in the foreground until a signal (`serve`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::handle::{ListenerHandle, Shutdown};
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
    /// background) or with [`ListenerHandle::shutdown`]. To serve in the
    /// foreground instead, until a signal, see [`serve`](Self::serve).
    ///
    /// ```
    /// use conflictkit::events::{EventPoster, Listener, ListenerConfig, Shutdown};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
    /// listener.on("txupdate", |data: serde_json::Value| async move {
    ///     tracing::info!(%data, "transaction updated");
    /// });
    /// let handle = listener.start().await?;
    /// EventPoster::new(&format!("http://{}", handle.local_addr()))?
    ///     .post("txupdate", &1)
    ///     .await?;
    /// assert_eq!(handle.shutdown().await, Shutdown::Graceful);
    /// # Ok(()) }
    /// ```
    ///
    /// A program that is not async (the original ran its listener on a
    /// daemon thread) gives the listener a tokio runtime of its own: the
    /// runtime's worker threads serve in the background while the program
    /// goes on, and `block_on` is only needed to start and to shut down.
    /// Blocking handlers run on that runtime's blocking pool; give
    /// [`Runtime::shutdown_timeout`](tokio::runtime::Runtime::shutdown_timeout)
    /// a bound so that one that never returns cannot hold the program.
    ///
    /// ```
    /// use conflictkit::events::{Listener, ListenerConfig};
    /// use std::time::Duration;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
    /// listener.on("txupdate", |data: serde_json::Value| println!("{data}"));
    /// let handle = runtime.block_on(listener.start())?;
    /// println!("listening on {}", handle.local_addr());
    /// // ... the program's own, non-async work ...
    /// runtime.block_on(handle.shutdown());
    /// runtime.shutdown_timeout(Duration::from_secs(5));
    /// # Ok(()) }
    /// ```
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

    /// Binds and serves in the foreground until `signal` completes, then
    /// shuts down gracefully (as [`ListenerHandle::shutdown`] does) and
    /// returns how.
    ///
    /// Until Ctrl-C, the usual signal of a service:
    ///
    /// ```no_run
    /// use conflictkit::events::{Listener, ListenerConfig};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:8080".parse()?));
    /// listener.on("txupdate", |data: serde_json::Value| async move {
    ///     tracing::info!(%data, "transaction updated");
    /// });
    /// listener
    ///     .serve(async {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Any future is a signal, here a channel:
    ///
    /// ```
    /// use conflictkit::events::{Listener, ListenerConfig, Shutdown};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
    /// let server = tokio::spawn(listener.serve(async {
    ///     let _ = stopped.await;
    /// }));
    /// stop.send(()).unwrap();
    /// assert_eq!(server.await??, Shutdown::Graceful);
    /// # Ok(()) }
    /// ```
    pub async fn serve(
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
