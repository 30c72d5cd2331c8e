//! The event enum of the stream tests (`tests/tests/streams.rs`, and the
//! `stream_producer` child process), and a server that answers it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{TempDir, Transport};

/// Streams of every kind, and a request and an event beside them.
#[derive(Events, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Feed {
    /// `0..n`.
    #[request(stream = u64)]
    Count(u64),
    /// `n` strings of `size` bytes each, counted in [`Probe::produced`].
    #[request(stream = String)]
    Blobs { n: u64, size: u32 },
    /// `0..n`, then the error `"boom"`.
    #[request(stream = u64)]
    FailAfter(u64),
    /// `0, 1, 2, ..` without end; reports when dropped.
    #[request(stream = u64)]
    Endless,
    /// Never yields; reports when dropped.
    #[request(stream = u64)]
    Silent,
    /// `0..n`, then nothing, without end; reports when dropped.
    #[request(stream = u64)]
    StallAfter(u64),
    /// How many items `Blobs` produced so far, on this server.
    #[request(response = u64)]
    Produced,
    /// Adds numbers.
    #[request(response = i64)]
    Sum(Vec<i64>),
    /// One way.
    Note(u64),
}

/// What the feed server saw.
#[derive(Debug)]
pub struct Probe {
    /// Each server-side socket as its `on_connection` completes.
    pub connected: mpsc::UnboundedReceiver<Socket<Feed>>,
    /// Fires when an `Endless` or `Silent` stream is dropped.
    pub dropped: mpsc::UnboundedReceiver<()>,
    /// Items `Blobs` produced.
    pub produced: Arc<AtomicU64>,
}

/// Sends on its channel when dropped.
struct OnDrop(mpsc::UnboundedSender<()>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Registers the feed handlers on `socket`, counting `Blobs` items in
/// `produced` and reporting dropped streams on `dropped`.
pub fn answer_feed(
    socket: &Socket<Feed>,
    produced: Arc<AtomicU64>,
    dropped: mpsc::UnboundedSender<()>,
) {
    use crate::feed::FeedHandle;
    socket.on_count(|n| async move { stream::iter(0..n) });
    socket.on_blobs(move |n, size| {
        let produced = produced.clone();
        async move {
            stream::iter(0..n).map(move |i| {
                produced.fetch_add(1, Ordering::Relaxed);
                let mut item = i.to_string();
                item.extend(std::iter::repeat_n(
                    'x',
                    size as usize - item.len().min(size as usize),
                ));
                item
            })
        }
    });
    socket.on_fail_after(|n| async move {
        stream::iter(0..n)
            .map(Ok)
            .chain(stream::once(async { Err("boom") }))
    });
    let on_drop = dropped.clone();
    socket.on_endless(move || {
        let guard = OnDrop(on_drop.clone());
        async move {
            stream::iter(0u64..).map(move |i| {
                let _ = &guard;
                i
            })
        }
    });
    let on_drop = dropped.clone();
    socket.on_stall_after(move |n| {
        let guard = OnDrop(on_drop.clone());
        async move {
            stream::iter(0..n).chain(stream::pending()).map(move |i| {
                let _ = &guard;
                i
            })
        }
    });
    socket.on_silent(move || {
        let guard = OnDrop(dropped.clone());
        async move {
            stream::pending::<u64>().map(move |i| {
                let _ = &guard;
                i
            })
        }
    });
    socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
}

/// A feed server on `t`, running.
pub async fn serve_feed(t: Transport) -> (Server<Feed>, Probe, TempDir) {
    let dir = TempDir::new();
    let io = Server::<Feed>::bind(t.addr(&dir)).await.expect("bind");
    let (connected_tx, connected) = mpsc::unbounded_channel();
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let produced = Arc::new(AtomicU64::new(0));
    let counter = produced.clone();
    io.on_connection(move |socket: Socket<Feed>| {
        answer_feed(&socket, counter.clone(), dropped_tx.clone());
        let produced = counter.clone();
        socket.on_produced(move || {
            let n = produced.load(Ordering::Relaxed);
            async move { n }
        });
        let _ = connected_tx.send(socket);
        async { Ok(()) }
    });
    io.spawn();
    let probe = Probe {
        connected,
        dropped,
        produced,
    };
    (io, probe, dir)
}

/// Starts the `stream_producer` binary (its path: the test's
/// `env!("CARGO_BIN_EXE_stream_producer")`) as a child process serving
/// [`Feed`] on `transport` (`"tcp"` or `"unix"`, at `path`); gives it and
/// its address. It serves until its stdin closes, or it is killed.
pub async fn start_producer(
    bin: &str,
    transport: &str,
    path: &std::path::Path,
) -> (tokio::process::Child, netsock::Addr) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(bin)
        .arg(transport)
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start stream_producer");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    crate::within(tokio::io::BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("read the address");
    let addr = match transport {
        "unix" => netsock::Addr::unix(path),
        _ => {
            let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
            netsock::Addr::tcp("127.0.0.1", port.expect("a port"))
        }
    };
    (child, addr)
}
