//! A forwarding proxy between clients and a server that a test can cut
//! (every connection through it drops at once, as a network fault would) or
//! freeze (connections stay open but nothing passes, as with a hung peer),
//! while the server keeps running.

use std::sync::{Arc, Mutex};

use netsock::Addr;
use tokio::task::JoinSet;

use crate::{listen, Stream, TempDir, Transport};

/// Forwards each connection on its own address to `target`.
pub struct Proxy {
    addr: Addr,
    pipes: Arc<Mutex<JoinSet<()>>>,
    freeze: tokio::sync::watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
    /// Where new connections go.
    target: Arc<Mutex<Addr>>,
    /// With chaos: each connection is cut after a random number of bytes
    /// in this range (both ways together), wherever that falls.
    chaos: Arc<Mutex<Option<(u64, u64)>>>,
    /// How many connections chaos cut.
    chaos_cuts: Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    /// Starts a proxy on `transport` (in `dir` for a Unix socket) in front of
    /// `target`.
    pub async fn start(transport: Transport, dir: &TempDir, target: Addr) -> Proxy {
        let pipes = Arc::new(Mutex::new(JoinSet::new()));
        let freeze = tokio::sync::watch::Sender::new(0);
        let (addr, listener) = listen(transport, dir, "proxy.sock").await;
        let target = Arc::new(Mutex::new(target));
        let chaos = Arc::new(Mutex::new(None::<(u64, u64)>));
        let chaos_cuts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accept = tokio::spawn({
            let pipes = pipes.clone();
            let freeze = freeze.clone();
            let (target, chaos, chaos_cuts) = (target.clone(), chaos.clone(), chaos_cuts.clone());
            async move {
                let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
                loop {
                    let Some(client) = listener.accept().await else {
                        return;
                    };
                    let to = target.lock().unwrap().clone();
                    let Some(server) = dial(&to).await else {
                        continue;
                    };
                    let frozen = freeze.subscribe();
                    let budget = chaos.lock().unwrap().map(|(low, high)| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        low + seed % (high - low).max(1)
                    });
                    let cuts = chaos_cuts.clone();
                    pipes.lock().unwrap().spawn(async move {
                        match budget {
                            None => pipe(client, server, frozen).await,
                            Some(budget) => {
                                if pipe_for(client, server, budget).await {
                                    cuts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                }
                            }
                        }
                    });
                }
            }
        });
        Proxy {
            addr,
            pipes,
            freeze,
            accept,
            target,
            chaos,
            chaos_cuts,
        }
    }

    /// From now on, cuts each new connection after a random number of bytes
    /// (both ways together) between `low` and `high`: in the middle of a
    /// frame, more often than not.
    pub fn chaos(&self, low: u64, high: u64) {
        *self.chaos.lock().unwrap() = Some((low, high));
    }

    /// Stops cutting new connections.
    pub fn calm(&self) {
        *self.chaos.lock().unwrap() = None;
    }

    /// How many connections chaos cut so far.
    pub fn chaos_cuts(&self) -> usize {
        self.chaos_cuts.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sends new connections to `target` from now on (a server that was
    /// replaced by another, at another address).
    pub fn retarget(&self, target: Addr) {
        *self.target.lock().unwrap() = target;
    }

    /// Where clients connect.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// Drops every connection through the proxy now; new ones still pass.
    /// Returns how many were cut.
    pub fn cut(&self) -> usize {
        let mut pipes = self.pipes.lock().unwrap();
        // Reap the ones already over (cut before, or closed) first.
        while pipes.try_join_next().is_some() {}
        let cut = pipes.len();
        pipes.abort_all();
        cut
    }
}

impl Proxy {
    /// Stops forwarding on every connection through the proxy now, keeping
    /// them open: both ends see a peer that went silent. New connections
    /// still pass.
    pub fn freeze(&self) {
        self.freeze.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.pipes.lock().unwrap().abort_all();
    }
}

async fn pipe(
    mut a: Box<dyn Stream>,
    mut b: Box<dyn Stream>,
    mut frozen: tokio::sync::watch::Receiver<u64>,
) {
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
        _ = frozen.changed() => {
            // Hold both ends open, silently, until cut or dropped.
            std::future::pending::<()>().await;
        }
    }
}

/// Forwards both ways until `budget` bytes have passed, then drops both
/// ends, wherever in the stream that falls. True when it was cut.
async fn pipe_for(a: Box<dyn Stream>, b: Box<dyn Stream>, budget: u64) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let left = Arc::new(std::sync::atomic::AtomicU64::new(budget));
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    async fn one_way(
        from: &mut (impl tokio::io::AsyncRead + Unpin),
        to: &mut (impl tokio::io::AsyncWrite + Unpin),
        left: &std::sync::atomic::AtomicU64,
    ) -> bool {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n as u64,
            };
            let before = left
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |l| Some(l.saturating_sub(n)),
                )
                .unwrap_or(0);
            let pass = n.min(before) as usize;
            if to.write_all(&buf[..pass]).await.is_err() {
                return false;
            }
            if (pass as u64) < n {
                return true;
            }
        }
    }
    let cut = tokio::select! {
        cut = one_way(&mut ar, &mut bw, &left) => cut,
        cut = one_way(&mut br, &mut aw, &left) => cut,
    };
    let _ = aw.shutdown().await;
    let _ = bw.shutdown().await;
    cut
}

async fn dial(target: &Addr) -> Option<Box<dyn Stream>> {
    Some(match target {
        Addr::Tcp { host, port } => Box::new(
            tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .ok()?,
        ),
        Addr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await.ok()?),
        _ => return None,
    })
}
