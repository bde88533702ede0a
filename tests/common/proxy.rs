//! A loopback TCP proxy between the pool and a database server, for fault
//! tests: it can hold the server's replies (a slow network), cut a client's
//! connection right after it forwarded a chosen statement (the request
//! reached the server, the reply is lost), or swallow a chosen statement
//! and close the connection (the request never reached the server, which
//! rolls back when the connection closes), then refuse new connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// The proxy; it stops accepting when dropped (open connections close when
/// either end does).
pub struct Proxy {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstream: String,
    /// While true, bytes from the server are held back.
    hold: watch::Sender<bool>,
    /// How many chunks from the server were held back so far (each counted
    /// when it arrived while `hold` was on).
    held: watch::Sender<usize>,
    /// When set, the next client chunk containing these bytes is forwarded
    /// and then that client's connection is cut.
    cut_after: Mutex<Option<Vec<u8>>>,
    cuts: AtomicUsize,
    cut_done: Notify,
    /// When set, the next client chunk containing these bytes is not
    /// forwarded, and that client's connection is closed.
    swallow: Mutex<Option<Vec<u8>>>,
    swallows: AtomicUsize,
    swallow_done: Notify,
    /// Set by a swallow armed with `then_refuse`: accept nothing more.
    refuse: watch::Sender<bool>,
    refuse_armed: std::sync::atomic::AtomicBool,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            hold: watch::channel(false).0,
            held: watch::channel(0).0,
            cut_after: Mutex::new(None),
            cuts: AtomicUsize::new(0),
            cut_done: Notify::new(),
            swallow: Mutex::new(None),
            swallows: AtomicUsize::new(0),
            swallow_done: Notify::new(),
            refuse: watch::channel(false).0,
            refuse_armed: std::sync::atomic::AtomicBool::new(false),
        });
        let accepting = shared.clone();
        let mut refuse = shared.refuse.subscribe();
        let accept = tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    biased; // once refusing, accept nothing more
                    _ = refuse.wait_for(|r| *r) => return, // the listener closes
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => return,
                    },
                };
                let shared = accepting.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&shared.upstream).await {
                        relay(client, server, shared).await;
                    }
                });
            }
        });
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// Starts a proxy in front of the server of a database URL and returns
    /// it with the same URL pointing at the proxy.
    pub async fn for_url(url: &str) -> (Proxy, String) {
        let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
        let rest = &url[after_scheme..];
        let host_start = rest.find('@').map(|i| i + 1).unwrap_or(0);
        let host_len = rest[host_start..]
            .find(['/', '?'])
            .unwrap_or(rest.len() - host_start);
        let upstream = &rest[host_start..host_start + host_len];
        let proxy = Proxy::start(upstream).await;
        let proxied = format!(
            "{}{}{}",
            &url[..after_scheme + host_start],
            proxy.addr,
            &rest[host_start + host_len..]
        );
        (proxy, proxied)
    }

    /// Holds (or releases) every byte the server sends until told otherwise.
    pub fn hold_replies(&self, hold: bool) {
        self.shared.hold.send_replace(hold);
    }

    /// Waits until at least `n` chunks of server replies have been held back
    /// by [`Proxy::hold_replies`] (counted over the proxy's life): a client
    /// sent a request, the server answered, and the answer is held.
    pub async fn replies_held(&self, n: usize) {
        let mut held = self.shared.held.subscribe();
        // the proxy owns the sender, so the channel cannot close meanwhile
        let _ = held.wait_for(|h| *h >= n).await;
    }

    /// Arms a cut: the next chunk a client sends that contains `needle` is
    /// forwarded to the server, then that client's connection is closed and
    /// the server's reply is thrown away.
    pub fn cut_after(&self, needle: &[u8]) {
        *self.shared.cut_after.lock().unwrap() = Some(needle.to_vec());
    }

    /// Waits until `n` connections were cut.
    pub async fn cuts(&self, n: usize) {
        wait_count(&self.shared.cuts, &self.shared.cut_done, n).await;
    }

    /// Arms a swallow: the next chunk a client sends that contains
    /// `needle` is thrown away, and that client's connection closed on both
    /// sides. With `then_refuse`, the proxy accepts no connection after it.
    pub fn swallow(&self, needle: &[u8], then_refuse: bool) {
        *self.shared.swallow.lock().unwrap() = Some(needle.to_vec());
        if then_refuse {
            self.shared.refuse_after_swallow();
        }
    }

    /// Waits until `n` chunks were swallowed.
    pub async fn swallowed(&self, n: usize) {
        wait_count(&self.shared.swallows, &self.shared.swallow_done, n).await;
    }
}

impl Shared {
    /// Marks that the next swallow also closes the listener.
    fn refuse_after_swallow(&self) {
        self.refuse_armed.store(true, Ordering::SeqCst);
    }
}

/// Waits until `count` reaches `n`, woken by `done`.
async fn wait_count(count: &AtomicUsize, done: &Notify, n: usize) {
    loop {
        let notified = done.notified();
        if count.load(Ordering::SeqCst) >= n {
            return;
        }
        notified.await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Whether `chunk` holds the needle armed in `armed`, which is then
/// disarmed.
fn take_if_in(armed: &Mutex<Option<Vec<u8>>>, chunk: &[u8]) -> bool {
    let mut armed = armed.lock().unwrap();
    let hit = armed
        .as_deref()
        .is_some_and(|needle| chunk.windows(needle.len()).any(|w| w == needle));
    if hit {
        *armed = None;
    }
    hit
}

async fn relay(client: TcpStream, server: TcpStream, shared: Arc<Shared>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let (cut_tx, mut cut_rx) = watch::channel(false);
    // the connection ends by a swallow, not a cut
    let swallowed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swallowed_up = swallowed.clone();
    let up_shared = shared.clone();
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if take_if_in(&up_shared.swallow, &buf[..n]) {
                if up_shared.refuse_armed.swap(false, Ordering::SeqCst) {
                    up_shared.refuse.send_replace(true);
                }
                swallowed_up.store(true, Ordering::SeqCst);
                up_shared.swallows.fetch_add(1, Ordering::SeqCst);
                up_shared.swallow_done.notify_waiters();
                // the client's side closes with the cut, the server's as
                // `server_tx` drops here (the server then rolls back)
                cut_tx.send_replace(true);
                return;
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
            if take_if_in(&up_shared.cut_after, &buf[..n]) {
                cut_tx.send_replace(true);
                // keep the server side open until the server answers: the
                // request is processed, only its reply is lost
                let _ = server_tx.flush().await;
                return;
            }
        }
    };
    let down_shared = shared.clone();
    let downstream = async move {
        let mut hold = down_shared.hold.subscribe();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = tokio::select! {
                r = server_rx.read(&mut buf) => r,
                _ = cut_rx.wait_for(|c| *c) => break,
            };
            let n = match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if *hold.borrow_and_update() {
                down_shared.held.send_modify(|h| *h += 1);
            }
            if hold.wait_for(|h| !*h).await.is_err() {
                return;
            }
            if *cut_rx.borrow() {
                break;
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
        // cut (or swallowed): close the client's side now, then drain the
        // server's reply
        drop(client_tx);
        if !swallowed.load(Ordering::SeqCst) {
            down_shared.cuts.fetch_add(1, Ordering::SeqCst);
            down_shared.cut_done.notify_waiters();
        }
        let _ = server_rx.read(&mut buf).await;
    };
    tokio::join!(upstream, downstream);
}
