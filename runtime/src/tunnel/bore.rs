//! bore: a self-hosted TCP tunnel, with `bore-cli` used as a library.
//!
//! Each tunnel and each server runs on a small tokio runtime of its own, on a
//! thread of its own: bore spawns a task per connection, and dropping that
//! runtime is the only way to end them all. So stopping really closes every
//! socket the tunnel or server opened.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::pin::pin;
use std::task::Poll;

use bore_cli::client::Client;
use bore_cli::server::Server;
use tokio::sync::oneshot;

use super::error::{BoxError, TunnelError};

/// bore's control port. It is fixed by the protocol: one bore server per address.
pub const BORE_CONTROL_PORT: u16 = bore_cli::shared::CONTROL_PORT;

/// Builder for a tunnel through a bore server: a TCP port on the server
/// forwards to a port on this machine.
///
/// ```no_run
/// # async fn run() -> Result<(), conflictkit::tunnel::TunnelError> {
/// use conflictkit::tunnel::Bore;
///
/// let tunnel = Bore::to("relay.example.com").secret("shared secret").local_port(8080).start().await?;
/// println!("public URL: {}", tunnel.public_url()); // http://relay.example.com:<port>
/// tunnel.stop().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Bore {
    server: String,
    secret: Option<String>,
    local_host: String,
    local_port: Option<u16>,
    remote_port: u16,
}

impl fmt::Debug for Bore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bore")
            .field("server", &self.server)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("local_host", &self.local_host)
            .field("local_port", &self.local_port)
            .field("remote_port", &self.remote_port)
            .finish()
    }
}

impl Bore {
    /// A tunnel through the bore server at `server` (a host name or IP address;
    /// the control port is always [`BORE_CONTROL_PORT`]).
    pub fn to(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            secret: None,
            local_host: "127.0.0.1".to_owned(),
            local_port: None,
            remote_port: 0,
        }
    }

    /// The secret the server requires, if it requires one.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// The local port to expose (required).
    pub fn local_port(mut self, port: u16) -> Self {
        self.local_port = Some(port);
        self
    }

    /// The local host to forward to (default `127.0.0.1`).
    pub fn local_host(mut self, host: impl Into<String>) -> Self {
        self.local_host = host.into();
        self
    }

    /// The port to ask the server for (default 0: any port of its range).
    pub fn remote_port(mut self, port: u16) -> Self {
        self.remote_port = port;
        self
    }

    /// Connects to the server and starts forwarding; returns once the server
    /// has assigned the public port.
    pub async fn start(self) -> Result<BoreTunnel, TunnelError> {
        let local_port = self.local_port.ok_or(TunnelError::MissingLocalPort)?;
        let Bore {
            server,
            secret,
            local_host,
            remote_port,
            ..
        } = self;
        let (ready_tx, ready_rx) = oneshot::channel::<Result<u16, BoxError>>();
        let to = server.clone();
        let thread = BackgroundThread::spawn(
            "conflictkit-bore-tunnel",
            move |mut stop| async move {
                let connect =
                    Client::new(&local_host, local_port, &to, remote_port, secret.as_deref());
                let client = tokio::select! {
                    client = connect => client,
                    _ = &mut stop => return,
                };
                let client = match client {
                    Ok(client) => client,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.into()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(client.remote_port()));
                tokio::select! {
                    result = client.listen() => match result {
                        Ok(()) => tracing::warn!(server = to, "the bore server closed the tunnel"),
                        Err(err) => tracing::warn!(server = to, error = format!("{err:#}"), "the bore tunnel failed"),
                    },
                    _ = stop => {}
                }
            },
        )?;
        let connect_error = |source| TunnelError::BoreConnect {
            server: server.clone(),
            local_port,
            source,
        };
        let remote_port = match ready_rx.await {
            Ok(Ok(port)) => port,
            Ok(Err(source)) => return Err(connect_error(source)),
            Err(_) => {
                return Err(connect_error(
                    "the bore thread ended before it connected".into(),
                ));
            }
        };
        let public_url = format!("http://{}:{remote_port}", url_host(&server));
        tracing::info!(public_url, local_port, "bore tunnel started");
        Ok(BoreTunnel {
            public_url,
            remote_port,
            thread,
        })
    }
}

/// An open bore tunnel. Closed by [`stop`](Self::stop) or on drop.
#[derive(Debug)]
pub struct BoreTunnel {
    public_url: String,
    remote_port: u16,
    thread: BackgroundThread,
}

impl BoreTunnel {
    /// `http://<server>:<remote port>`.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The port the server assigned.
    pub fn remote_port(&self) -> u16 {
        self.remote_port
    }

    /// Closes the tunnel and every connection forwarded through it.
    pub async fn stop(self) {
        self.thread.stop().await;
        tracing::info!(public_url = self.public_url, "bore tunnel stopped");
    }
}

/// A bore relay server running inside this process, for tests: a [`Bore`]
/// tunnel through it runs end to end on loopback.
///
/// It listens on [`BORE_CONTROL_PORT`] of its bind address and opens tunnel
/// ports from `port_range` on the same address. Stopped by
/// [`stop`](Self::stop) or on drop, which closes the control port, the tunnel
/// ports and every connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), conflictkit::tunnel::TunnelError> {
/// use conflictkit::tunnel::{Bore, testing::BoreServer};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let server = BoreServer::start(42000..=42999, Some("s3cret")).await?;
/// let local = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let port = local.local_addr().unwrap().port();
/// let tunnel = Bore::to("127.0.0.1").secret("s3cret").local_port(port).start().await?;
///
/// // A client connects to the public port; the local listener gets the bytes.
/// let mut client = tokio::net::TcpStream::connect(("127.0.0.1", tunnel.remote_port())).await.unwrap();
/// client.write_all(b"ping").await.unwrap();
/// let (mut conn, _) = local.accept().await.unwrap();
/// let mut buf = [0; 4];
/// conn.read_exact(&mut buf).await.unwrap();
/// assert_eq!(&buf, b"ping");
///
/// tunnel.stop().await;
/// server.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BoreServer {
    control_addr: SocketAddr,
    port_range: RangeInclusive<u16>,
    thread: BackgroundThread,
}

impl BoreServer {
    /// Starts a bore server on loopback (127.0.0.1) that hands out tunnel ports
    /// from `port_range`, and requires `secret` from clients when given.
    pub async fn start(
        port_range: RangeInclusive<u16>,
        secret: Option<&str>,
    ) -> Result<Self, TunnelError> {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), port_range, secret).await
    }

    /// Like [`start`](Self::start), on another address (e.g. `0.0.0.0` for a public relay).
    pub async fn start_on(
        bind: IpAddr,
        port_range: RangeInclusive<u16>,
        secret: Option<&str>,
    ) -> Result<Self, TunnelError> {
        if port_range.is_empty() {
            return Err(TunnelError::EmptyPortRange {
                start: *port_range.start(),
                end: *port_range.end(),
            });
        }
        let control_addr = SocketAddr::new(bind, BORE_CONTROL_PORT);
        let secret = secret.map(str::to_owned);
        let range = port_range.clone();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), BoxError>>();
        let thread = BackgroundThread::spawn("conflictkit-bore-server", move |stop| async move {
            let mut server = Server::new(range, secret.as_deref());
            server.set_bind_addr(bind);
            server.set_bind_tunnels(bind);
            let mut listen = pin!(server.listen());
            // `Server::listen` binds its control port before its first await that
            // can wait (binding an IP address never does), so polling it once
            // tells whether the bind worked: Pending means it is listening.
            let first = std::future::poll_fn(|cx| Poll::Ready(listen.as_mut().poll(cx))).await;
            match first {
                Poll::Ready(result) => {
                    let err = match result {
                        Err(err) => err.into(),
                        Ok(()) => "the bore server stopped at once".into(),
                    };
                    let _ = ready_tx.send(Err(err));
                    return;
                }
                Poll::Pending => {
                    let _ = ready_tx.send(Ok(()));
                }
            }
            tokio::select! {
                result = listen => if let Err(err) = result {
                    tracing::error!(error = format!("{err:#}"), "the bore server failed");
                },
                _ = stop => {}
            }
        })?;
        let bind_error = |source| TunnelError::BoreServer {
            addr: control_addr,
            source,
        };
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(bind_error(source)),
            Err(_) => {
                return Err(bind_error(
                    "the bore thread ended before it listened".into(),
                ));
            }
        }
        tracing::info!(%control_addr, ?port_range, "bore server started");
        Ok(Self {
            control_addr,
            port_range,
            thread,
        })
    }

    /// The control address clients connect to.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The range tunnel ports are taken from.
    pub fn port_range(&self) -> RangeInclusive<u16> {
        self.port_range.clone()
    }

    /// Stops the server: closes its control port, its tunnel ports and every
    /// connection, and returns once they are closed.
    pub async fn stop(self) {
        self.thread.stop().await;
        tracing::info!(control_addr = %self.control_addr, "bore server stopped");
    }
}

/// A current-thread tokio runtime on a thread of its own. Stopping (or
/// dropping) it ends its task, then drops the runtime, which ends every task
/// bore spawned on it and closes their sockets.
#[derive(Debug)]
struct BackgroundThread {
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

impl BackgroundThread {
    /// Runs `task(stop)` on a new thread; `stop` resolves when the thread is to stop.
    fn spawn<F, Fut>(name: &str, task: F) -> Result<Self, TunnelError>
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| TunnelError::BoreThread { source })?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(task(stop_rx));
                drop(runtime);
                let _ = done_tx.send(());
            })
            .map_err(|source| TunnelError::BoreThread { source })?;
        Ok(Self {
            stop: Some(stop_tx),
            done: Some(done_rx),
        })
    }

    /// Stops the thread's work and waits until its runtime is gone.
    async fn stop(mut self) {
        // Dropping the sender resolves the task's `stop` receiver.
        drop(self.stop.take());
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

/// `host` as it goes in a URL: IPv6 addresses in brackets.
fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(url_host("::1"), "[::1]");
        assert_eq!(url_host("[::1]"), "[::1]");
        assert_eq!(url_host("relay.example.com"), "relay.example.com");
    }

    #[test]
    fn debug_hides_the_secret() {
        let bore = Bore::to("h").secret("hunter2");
        assert!(!format!("{bore:?}").contains("hunter2"));
    }
}
