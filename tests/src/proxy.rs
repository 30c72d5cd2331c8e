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
}

impl Proxy {
    /// Starts a proxy on `transport` (in `dir` for a Unix socket) in front of
    /// `target`.
    pub async fn start(transport: Transport, dir: &TempDir, target: Addr) -> Proxy {
        let pipes = Arc::new(Mutex::new(JoinSet::new()));
        let freeze = tokio::sync::watch::Sender::new(0);
        let (addr, listener) = listen(transport, dir, "proxy.sock").await;
        let accept = tokio::spawn({
            let pipes = pipes.clone();
            let freeze = freeze.clone();
            async move {
                loop {
                    let Some(client) = listener.accept().await else {
                        return;
                    };
                    let Some(server) = dial(&target).await else {
                        continue;
                    };
                    let frozen = freeze.subscribe();
                    pipes.lock().unwrap().spawn(pipe(client, server, frozen));
                }
            }
        });
        Proxy {
            addr,
            pipes,
            freeze,
            accept,
        }
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
