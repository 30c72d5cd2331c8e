//! The in-memory transport: `memory://name` addresses, for testing services
//! without sockets.
//!
//! A [`Server`](crate::Server) bound to `"memory://orders"` is reached by a
//! [`Socket`](crate::Socket) connecting to `"memory://orders"` in the same
//! process; the bytes go through a pair of bounded buffers instead of the
//! kernel, and everything else (handshake, frames, heartbeats, backpressure,
//! close, reconnect) is the code that runs over TCP and Unix sockets.
//!
//! ```
//! use netsock::{Events, Server, Socket};
//!
//! #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
//! enum Api {
//!     #[request(response = i64)]
//!     Sum(Vec<i64>),
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> netsock::Result<()> {
//! // "memory://" alone picks a fresh name, the way port 0 picks a free port.
//! let io = Server::<Api>::bind("memory://").await?;
//! io.on_connection(|socket: Socket<Api>| async move {
//!     socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
//!     Ok(())
//! });
//! tokio::spawn({ let io = io.clone(); async move { io.run().await } });
//!
//! let socket = Socket::<Api>::connect(io.local_addr()).await?;
//! assert_eq!(socket.sum(vec![1, 2, 3]).await?, 6);
//! io.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # How it behaves, and why
//!
//! It behaves like a socket wherever netsock, or a test of it, can tell:
//!
//! * **Names.** Listeners live in one registry per process. Binding a name
//!   that a live listener holds fails with [`Error::AddrInUse`]; the name is
//!   free again once the listener is dropped, which
//!   [`Server::close`](crate::Server::close) does before it returns, so a
//!   server can be closed and bound again on the same name. Connecting to a
//!   name nobody listens on fails like a refused connection
//!   ([`Error::Connect`] with [`io::ErrorKind::ConnectionRefused`]), so a
//!   client's reconnect logic keeps retrying exactly as it does with a
//!   socket. An empty name (`"memory://"`) binds a fresh, unused one, which
//!   `local_addr()` reports: tests running in parallel in one process never
//!   collide.
//! * **Backlog.** Connecting never waits: the connection queues until the
//!   listener accepts it, like a socket's listen backlog (and is hung up if
//!   the listener goes away first).
//! * **Bounded buffers.** Each direction holds at most
//!   [`DEFAULT_BUFFER_SIZE`] bytes (or what
//!   [`MemoryStream::connect_with_buffer`] or [`MemoryStream::pair`] ask
//!   for). A writer that finds it full gets `WouldBlock` or waits, as with a
//!   full socket buffer, so a peer that stops reading fills the buffer, then
//!   netsock's outgoing queue, then trips its write timeout. This is why the
//!   transport has its own pipes and not [`tokio::io::duplex`]: netsock
//!   writes through a shared handle, without waiting, and waits for
//!   writability separately (what `try_write` and `writable` give on a
//!   socket), which a duplex stream, written through `&mut`, cannot offer.
//! * **Half-close and hang-up.** Shutting down the writing side
//!   ([`AsyncWriteExt::shutdown`](tokio::io::AsyncWriteExt::shutdown)) lets
//!   the peer read what is buffered, then end of stream; the other direction
//!   keeps working. Dropping a stream (every half of it) hangs up: the peer
//!   reads end of stream, and its writes fail with
//!   [`io::ErrorKind::BrokenPipe`], which netsock reports as
//!   [`DisconnectReason::PeerHungUp`](crate::DisconnectReason::PeerHungUp).
//! * **Deterministic.** No timers, no threads, no OS: a read or write
//!   completes at once or waits for the peer to act. Tests run the same under
//!   `#[tokio::test(start_paused = true)]`, where tokio skips ahead through
//!   every timeout (heartbeats, write timeouts, reconnect backoff) as soon as
//!   all tasks wait.
//!
//! Peers of memory connections have the address
//! [`PeerAddr::Memory`](crate::PeerAddr::Memory) (the listener's name, on
//! both sides) and no [`PeerCred`](crate::PeerCred).
//!
//! The transport is always built: it needs nothing from the OS, so it has no
//! cargo feature, and a build with neither `tcp` nor `unix` still has it.
//!
//! # Speaking the protocol by hand
//!
//! [`MemoryStream`] is the raw byte stream, for a hand-written peer: connect
//! one to a server with [`MemoryStream::connect`], or accept them from a
//! [`MemoryListener`] that a [`Socket`](crate::Socket) connects to.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::{Listener, PeerAddr, ReadHalf, WriteHalf};
use crate::addr::{Addr, IntoAddr};
use crate::error::{Error, Result};

/// How many bytes each direction of a memory connection buffers, unless
/// [`MemoryStream::connect_with_buffer`] or [`MemoryStream::pair`] say
/// otherwise: 64 KiB, the order of a socket's buffer.
///
/// ```
/// assert_eq!(netsock::memory::DEFAULT_BUFFER_SIZE, 64 * 1024);
/// ```
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wakes tasks once the lock they would take is released.
#[derive(Default)]
struct Wake(Vec<Waker>);

impl Wake {
    fn add(&mut self, waker: Option<Waker>) {
        self.0.extend(waker);
    }

    fn all(&mut self, wakers: &mut Vec<Waker>) {
        self.0.append(wakers);
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        for waker in self.0.drain(..) {
            waker.wake();
        }
    }
}

/// One direction of a connection: what one side wrote and the other has not
/// read yet.
struct Pipe {
    buf: BytesMut,
    capacity: usize,
    /// The writing side shut down or hung up: the reader gets end of stream
    /// once `buf` is empty.
    write_closed: bool,
    /// The reading side hung up: writes fail.
    read_closed: bool,
    /// The reading task waiting for bytes.
    reader: Option<Waker>,
    /// Tasks waiting for room.
    writers: Vec<Waker>,
}

impl Pipe {
    fn new(capacity: usize) -> Pipe {
        Pipe {
            buf: BytesMut::new(),
            capacity,
            write_closed: false,
            read_closed: false,
            reader: None,
            writers: Vec::new(),
        }
    }

    fn room(&self) -> usize {
        self.capacity - self.buf.len()
    }

    /// The error a write meets, if any.
    fn write_error(&self) -> Option<io::Error> {
        if self.read_closed {
            Some(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the memory connection's peer hung up",
            ))
        } else if self.write_closed {
            Some(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "writing on a memory connection shut down for writing",
            ))
        } else {
            None
        }
    }

    fn wait_for_room(&mut self, waker: &Waker) {
        if !self.writers.iter().any(|w| w.will_wake(waker)) {
            self.writers.push(waker.clone());
        }
    }
}

/// Both directions of a connection. `pipes[i]` carries what side `i` writes.
struct State {
    pipes: [Pipe; 2],
    /// Live handles of each side: a stream, or its two halves.
    handles: [u8; 2],
}

/// One side's handle on a connection: a whole stream, or one half of it.
/// The side hangs up when its last handle goes.
struct End {
    link: Arc<Mutex<State>>,
    side: usize,
    /// Dropping this handle shuts the side's writing down.
    writes: bool,
}

impl End {
    fn pair(capacity: usize) -> (End, End) {
        let link = Arc::new(Mutex::new(State {
            pipes: [Pipe::new(capacity), Pipe::new(capacity)],
            handles: [1, 1],
        }));
        let end = |side| End {
            link: link.clone(),
            side,
            writes: true,
        };
        (end(0), end(1))
    }

    /// Splits a whole stream's handle into a reading and a writing one.
    fn split(mut self) -> (End, End) {
        lock(&self.link).handles[self.side] += 1;
        let write = End {
            link: self.link.clone(),
            side: self.side,
            writes: true,
        };
        self.writes = false;
        (self, write)
    }

    fn poll_read(&self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut wake = Wake::default();
        let mut state = lock(&self.link);
        let pipe = &mut state.pipes[1 - self.side];
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if pipe.buf.is_empty() {
            if pipe.write_closed {
                return Poll::Ready(Ok(()));
            }
            pipe.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = pipe.buf.len().min(out.remaining());
        out.put_slice(&pipe.buf[..n]);
        pipe.buf.advance(n);
        wake.all(&mut pipe.writers);
        Poll::Ready(Ok(()))
    }

    /// Writes what fits of `bufs`, in order; without a `cx`, a full buffer
    /// gives `WouldBlock`.
    fn write(&self, bufs: &[&[u8]], cx: Option<&mut Context<'_>>) -> Poll<io::Result<usize>> {
        let mut wake = Wake::default();
        let mut state = lock(&self.link);
        let pipe = &mut state.pipes[self.side];
        if let Some(err) = pipe.write_error() {
            return Poll::Ready(Err(err));
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        if pipe.room() == 0 {
            return match cx {
                Some(cx) => {
                    pipe.wait_for_room(cx.waker());
                    Poll::Pending
                }
                None => Poll::Ready(Err(io::ErrorKind::WouldBlock.into())),
            };
        }
        let mut written = 0;
        for buf in bufs {
            let n = buf.len().min(pipe.room());
            pipe.buf.extend_from_slice(&buf[..n]);
            written += n;
            if n < buf.len() {
                break;
            }
        }
        wake.add(pipe.reader.take());
        Poll::Ready(Ok(written))
    }

    /// Ready when a write would not give `WouldBlock`: there is room, or the
    /// write would fail.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = lock(&self.link);
        let pipe = &mut state.pipes[self.side];
        if pipe.room() > 0 || pipe.write_error().is_some() {
            return Poll::Ready(Ok(()));
        }
        pipe.wait_for_room(cx.waker());
        Poll::Pending
    }

    /// Ends this side's writing: the peer reads what is buffered, then end
    /// of stream.
    fn shutdown(&self) {
        let mut wake = Wake::default();
        let mut state = lock(&self.link);
        let pipe = &mut state.pipes[self.side];
        pipe.write_closed = true;
        wake.add(pipe.reader.take());
        wake.all(&mut pipe.writers);
    }
}

impl Drop for End {
    fn drop(&mut self) {
        if self.writes {
            self.shutdown();
        }
        let mut wake = Wake::default();
        let mut state = lock(&self.link);
        state.handles[self.side] -= 1;
        if state.handles[self.side] == 0 {
            // Hung up: what the peer sent and we did not read is lost, and
            // its writes fail from now on.
            let inbound = &mut state.pipes[1 - self.side];
            inbound.read_closed = true;
            inbound.buf = BytesMut::new();
            inbound.reader = None;
            wake.all(&mut inbound.writers);
        }
    }
}

/// One end of an in-memory connection: a raw byte stream, for a hand-written
/// peer, like a `TcpStream`. It implements [`AsyncRead`] and [`AsyncWrite`];
/// [`tokio::io::split`] splits it for reading and writing from different
/// tasks.
///
/// Each direction buffers a bounded number of bytes (see the [module
/// documentation](self)): a stream nobody reads from makes its peer's writes
/// wait. [`shutdown`](tokio::io::AsyncWriteExt::shutdown) half-closes it;
/// dropping it hangs up.
///
/// ```
/// use netsock::memory::MemoryStream;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (mut a, mut b) = MemoryStream::pair(1024);
/// a.write_all(b"ping").await?;
/// a.shutdown().await?; // b reads what was sent, then the end of the stream
/// let mut got = Vec::new();
/// b.read_to_end(&mut got).await?;
/// assert_eq!(got, b"ping");
/// b.write_all(b"pong").await?; // the other direction is still open
/// let mut got = [0; 4];
/// a.read_exact(&mut got).await?;
/// assert_eq!(&got, b"pong");
/// # Ok(())
/// # }
/// ```
pub struct MemoryStream {
    end: End,
}

impl fmt::Debug for MemoryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.end.link);
        f.debug_struct("MemoryStream")
            .field("unread", &state.pipes[1 - self.end.side].buf.len())
            .field("unsent", &state.pipes[self.end.side].buf.len())
            .finish()
    }
}

impl MemoryStream {
    /// Two connected streams, each direction buffering at most `buffer_size`
    /// bytes: what one writes, the other reads.
    ///
    /// # Panics
    ///
    /// If `buffer_size` is 0: nothing could ever be written.
    ///
    /// ```
    /// use netsock::memory::MemoryStream;
    /// use tokio::io::AsyncWriteExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let (mut a, b) = MemoryStream::pair(4);
    /// // A peer that does not read: the buffer fills, and writes wait.
    /// assert_eq!(a.write(b"123456").await?, 4);
    /// let more = tokio::time::timeout(std::time::Duration::from_millis(10), a.write(b"56"));
    /// assert!(more.await.is_err());
    /// drop(b); // hang up: now writes fail
    /// assert_eq!(a.write(b"56").await.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pair(buffer_size: usize) -> (MemoryStream, MemoryStream) {
        assert!(
            buffer_size > 0,
            "a memory stream needs a buffer of at least one byte"
        );
        let (a, b) = End::pair(buffer_size);
        (MemoryStream { end: a }, MemoryStream { end: b })
    }

    /// Connects to the [`MemoryListener`] or [`Server`](crate::Server)
    /// bound to `addr`, a `memory://` address, with buffers of
    /// [`DEFAULT_BUFFER_SIZE`]. Returns at once: the connection waits in the
    /// listener's backlog until accepted.
    ///
    /// Fails with [`Error::Connect`] (a [`ConnectionRefused`] I/O error) if
    /// nothing listens on that name, and with [`Error::InvalidAddr`] for an
    /// address that is not `memory://`.
    ///
    /// [`ConnectionRefused`]: io::ErrorKind::ConnectionRefused
    ///
    /// ```
    /// use netsock::memory::{MemoryListener, MemoryStream};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// assert!(matches!(
    ///     MemoryStream::connect("memory://nobody-here"),
    ///     Err(netsock::Error::Connect { .. })
    /// ));
    /// let listener = MemoryListener::bind("memory://")?;
    /// let client = MemoryStream::connect(listener.local_addr())?;
    /// let accepted = listener.accept().await;
    /// # drop((client, accepted));
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(addr: impl IntoAddr) -> Result<MemoryStream> {
        Self::connect_with_buffer(addr, DEFAULT_BUFFER_SIZE)
    }

    /// [`connect`](MemoryStream::connect), with each direction buffering at
    /// most `buffer_size` bytes instead of [`DEFAULT_BUFFER_SIZE`]: a small
    /// buffer makes a peer that stops reading felt after a few frames.
    ///
    /// # Panics
    ///
    /// If `buffer_size` is 0.
    ///
    /// ```
    /// use netsock::memory::{MemoryListener, MemoryStream};
    /// use tokio::io::AsyncWriteExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// let listener = MemoryListener::bind("memory://")?;
    /// let mut client = MemoryStream::connect_with_buffer(listener.local_addr(), 16)?;
    /// assert_eq!(client.write(&[0; 100]).await?, 16);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_with_buffer(addr: impl IntoAddr, buffer_size: usize) -> Result<MemoryStream> {
        let addr = addr.into_addr()?;
        let Addr::Memory(name) = &addr else {
            return Err(Error::InvalidAddr {
                input: addr.to_string(),
                reason: "not a memory:// address",
            });
        };
        connect_stream(name, buffer_size).map_err(|source| Error::Connect {
            addr: addr.clone(),
            source,
        })
    }
}

impl AsyncRead for MemoryStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.end.poll_read(cx, buf)
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.end.write(&[buf], Some(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let bufs: Vec<&[u8]> = bufs.iter().map(|b| &**b).collect();
        self.end.write(&bufs, Some(cx))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.end.shutdown();
        Poll::Ready(Ok(()))
    }
}

/// The connections waiting for a listener to accept them.
#[derive(Default)]
struct Backlog {
    queue: Mutex<VecDeque<MemoryStream>>,
    ready: Notify,
}

/// The process's memory listeners, by name.
static LISTENERS: Mutex<BTreeMap<String, Arc<Backlog>>> = Mutex::new(BTreeMap::new());

/// A listener for `memory://` connections, like a `TcpListener`: for a
/// hand-written server that [`Socket`](crate::Socket)s (or
/// [`MemoryStream`]s) connect to. A [`Server`](crate::Server) bound to a
/// `memory://` address has one of its own.
///
/// The name is taken while the listener lives, and free again once it is
/// dropped; connections not yet accepted are then hung up.
///
/// ```
/// use netsock::memory::{MemoryListener, MemoryStream};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> netsock::Result<()> {
/// let listener = MemoryListener::bind("memory://echo")?;
/// assert!(matches!(
///     MemoryListener::bind("memory://echo"),
///     Err(netsock::Error::AddrInUse { .. })
/// ));
/// let mut client = MemoryStream::connect("memory://echo")?;
/// let mut server = listener.accept().await;
/// client.write_all(b"hi").await?;
/// let mut got = [0; 2];
/// server.read_exact(&mut got).await?;
/// assert_eq!(&got, b"hi");
/// drop(listener);
/// let _free_again = MemoryListener::bind("memory://echo")?;
/// # Ok(())
/// # }
/// ```
pub struct MemoryListener {
    name: String,
    backlog: Arc<Backlog>,
}

impl fmt::Debug for MemoryListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryListener")
            .field("name", &self.name)
            .field("backlog", &lock(&self.backlog.queue).len())
            .finish()
    }
}

impl MemoryListener {
    /// Takes the name of `addr`, a `memory://` address; an empty name
    /// (`"memory://"`) takes a fresh one, which
    /// [`local_addr`](MemoryListener::local_addr) reports.
    ///
    /// Fails with [`Error::AddrInUse`] if a live listener (or server) has the
    /// name, and with [`Error::InvalidAddr`] for an address that is not
    /// `memory://`.
    ///
    /// ```
    /// use netsock::memory::MemoryListener;
    /// # fn main() -> netsock::Result<()> {
    /// let a = MemoryListener::bind("memory://")?;
    /// let b = MemoryListener::bind("memory://")?;
    /// assert_ne!(a.local_addr(), b.local_addr());
    /// assert!(MemoryListener::bind("tcp://localhost:80").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind(addr: impl IntoAddr) -> Result<MemoryListener> {
        let addr = addr.into_addr()?;
        match &addr {
            Addr::Memory(name) => register(&addr, name),
            _ => Err(Error::InvalidAddr {
                input: addr.to_string(),
                reason: "not a memory:// address",
            }),
        }
    }

    /// Waits for the next connection. Cancel-safe: a connection is never
    /// lost by dropping the future.
    ///
    /// ```
    /// use netsock::memory::{MemoryListener, MemoryStream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// let listener = MemoryListener::bind("memory://")?;
    /// let _client = MemoryStream::connect(listener.local_addr())?;
    /// let _server_side: MemoryStream = listener.accept().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn accept(&self) -> MemoryStream {
        loop {
            let ready = self.backlog.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(stream) = lock(&self.backlog.queue).pop_front() {
                return stream;
            }
            ready.await;
        }
    }

    /// The address it listens on: `memory://` and its name.
    ///
    /// ```
    /// use netsock::{memory::MemoryListener, Addr};
    /// # fn main() -> netsock::Result<()> {
    /// let listener = MemoryListener::bind("memory://jobs")?;
    /// assert_eq!(listener.local_addr(), Addr::memory("jobs"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> Addr {
        Addr::Memory(self.name.clone())
    }
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        {
            let mut listeners = lock(&LISTENERS);
            if listeners
                .get(&self.name)
                .is_some_and(|b| Arc::ptr_eq(b, &self.backlog))
            {
                listeners.remove(&self.name);
            }
        }
        // No connection can queue now: hang up those that did.
        let queued = std::mem::take(&mut *lock(&self.backlog.queue));
        drop(queued);
    }
}

/// Takes `name` (a fresh one when empty) in the registry.
fn register(addr: &Addr, name: &str) -> Result<MemoryListener> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut listeners = lock(&LISTENERS);
    let name = if name.is_empty() {
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let fresh = format!("auto-{n}");
            if !listeners.contains_key(&fresh) {
                break fresh;
            }
        }
    } else if listeners.contains_key(name) {
        return Err(Error::AddrInUse { addr: addr.clone() });
    } else {
        name.to_owned()
    };
    let backlog = Arc::new(Backlog::default());
    listeners.insert(name.clone(), backlog.clone());
    Ok(MemoryListener { name, backlog })
}

/// Queues a new connection on the listener named `name`; returns the
/// connecting end.
fn connect_stream(name: &str, buffer_size: usize) -> io::Result<MemoryStream> {
    assert!(
        buffer_size > 0,
        "a memory stream needs a buffer of at least one byte"
    );
    // Under the registry's lock: a listener going away meanwhile hangs up
    // what queued before it left, and nothing queues after.
    let listeners = lock(&LISTENERS);
    let Some(backlog) = listeners.get(name) else {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "no memory listener has this name",
        ));
    };
    let (ours, theirs) = MemoryStream::pair(buffer_size);
    lock(&backlog.queue).push_back(theirs);
    backlog.ready.notify_one();
    Ok(ours)
}

/// The reading half of a memory connection, inside netsock.
pub(crate) struct MemRead(End);

/// The writing half of a memory connection, inside netsock: written through
/// a shared reference, like a socket.
pub(crate) struct MemWrite(End);

impl MemWrite {
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self.0.write(&[buf], None) {
            Poll::Ready(result) => result,
            Poll::Pending => unreachable!("a write without a context never waits"),
        }
    }

    pub(crate) async fn writable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.0.poll_writable(cx)).await
    }
}

impl AsyncRead for MemRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.poll_read(cx, buf)
    }
}

impl AsyncWrite for MemWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.write(&[buf], Some(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let bufs: Vec<&[u8]> = bufs.iter().map(|b| &**b).collect();
        self.0.write(&bufs, Some(cx))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.shutdown();
        Poll::Ready(Ok(()))
    }
}

/// Splits a stream into netsock's halves, for the connection core (and its
/// unit tests: the other stream of a [`MemoryStream::pair`] is then a
/// hand-written peer).
pub(crate) fn split(stream: MemoryStream) -> (ReadHalf, WriteHalf) {
    let (read, write) = stream.end.split();
    (
        ReadHalf::Memory(MemRead(read)),
        WriteHalf::Memory(MemWrite(write)),
    )
}

/// Splits a stream into its raw halves, for a transport that feeds one end
/// of a [`MemoryStream::pair`] itself (TLS).
#[cfg(feature = "tls")]
pub(crate) fn split_raw(stream: MemoryStream) -> (MemRead, MemWrite) {
    let (read, write) = stream.end.split();
    (MemRead(read), MemWrite(write))
}

pub(super) fn bind(addr: &Addr, name: &str) -> Result<(Listener, Addr, Option<super::SocketFile>)> {
    let listener = register(addr, name)?;
    let local = listener.local_addr();
    Ok((Listener::Memory(listener), local, None))
}

pub(super) async fn accept(listener: &MemoryListener) -> io::Result<super::Accepted> {
    let stream = listener.accept().await;
    let (r, w) = split(stream);
    Ok((r, w, PeerAddr::Memory(listener.name.clone()), None))
}

pub(super) fn connect(name: &str) -> io::Result<(ReadHalf, WriteHalf, PeerAddr)> {
    let stream = connect_stream(name, DEFAULT_BUFFER_SIZE)?;
    let (r, w) = split(stream);
    Ok((r, w, PeerAddr::Memory(name.to_owned())))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The connection core's view of one end, and a hand-written peer at the
    /// other: how the core's unit tests get a connection.
    fn core_and_peer(buffer: usize) -> (ReadHalf, WriteHalf, MemoryStream) {
        let (ours, peer) = MemoryStream::pair(buffer);
        let (read, write) = split(ours);
        (read, write, peer)
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_buffer_blocks_the_writer_until_the_peer_reads() {
        let (_read, write, mut peer) = core_and_peer(8);
        let mut done = 0;
        write.write_now(b"0123456789", &mut done).unwrap();
        assert_eq!(done, 8, "as much as the buffer holds");
        assert_eq!(
            write.try_write(b"89").unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // Paused time: the timeout fires at once, deterministically.
        let waited = tokio::time::timeout(Duration::from_secs(30), write.writable()).await;
        assert!(waited.is_err(), "no room while the peer does not read");
        let mut got = [0; 3];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"012");
        write.writable().await.unwrap();
        write.write_now(b"0123456789", &mut done).unwrap();
        assert_eq!(done, 10);
        let mut rest = [0; 7];
        peer.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"3456789");
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_the_reader() {
        let (_read, write, mut peer) = core_and_peer(4);
        let writer = tokio::spawn(async move {
            let buf = [7u8; 1000];
            let mut done = 0;
            while done < buf.len() {
                write.write_now(&buf, &mut done).unwrap();
                if done < buf.len() {
                    write.writable().await.unwrap();
                }
            }
        });
        let mut got = vec![0; 1000];
        peer.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|&b| b == 7));
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn half_close_ends_one_direction_only() {
        let (mut read, mut write, mut peer) = core_and_peer(64);
        write.write_all(b"bye").await.unwrap();
        write.shutdown().await.unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
        assert_eq!(
            write.try_write(b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe,
            "no writing after a shutdown"
        );
        peer.write_all(b"still").await.unwrap();
        let mut got = [0; 5];
        read.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"still");
    }

    #[tokio::test]
    async fn hanging_up_ends_reads_and_fails_writes() {
        let (mut read, write, mut peer) = core_and_peer(64);
        peer.write_all(b"last").await.unwrap();
        drop(peer);
        // What was sent before the hang-up is still read, then the end.
        let mut got = Vec::new();
        read.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last");
        write.writable().await.unwrap();
        assert_eq!(
            write.try_write(b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_side_hangs_up_only_when_both_halves_are_gone() {
        let (read, write, mut peer) = core_and_peer(4);
        drop(read);
        // As with a socket: the peer may still write, until the buffer is full.
        assert_eq!(peer.write(b"123456").await.unwrap(), 4);
        let more = tokio::time::timeout(Duration::from_secs(1), peer.write(b"5"));
        assert!(more.await.is_err());
        drop(write);
        assert_eq!(
            peer.write(b"5").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(peer.read(&mut [0; 8]).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn vectored_writes_fill_what_fits() {
        let (mut a, mut b) = MemoryStream::pair(5);
        let bufs = [io::IoSlice::new(b"abc"), io::IoSlice::new(b"defg")];
        assert_eq!(a.write_vectored(&bufs).await.unwrap(), 5);
        let mut got = [0; 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcde");
        assert_eq!(a.write(b"").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn names_are_taken_refused_and_freed() {
        let addr = Addr::memory("unit-names");
        let listener = MemoryListener::bind(&addr).unwrap();
        assert!(matches!(
            MemoryListener::bind(&addr),
            Err(Error::AddrInUse { addr: a }) if a == addr
        ));
        let queued = MemoryStream::connect(&addr).unwrap();
        drop(listener);
        // A connection the listener never accepted is hung up with it.
        let mut queued = queued;
        assert_eq!(queued.read(&mut [0; 1]).await.unwrap(), 0);
        match MemoryStream::connect(&addr) {
            Err(Error::Connect { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused)
            }
            other => panic!("{other:?}"),
        }
        let _again = MemoryListener::bind(&addr).unwrap();
    }

    #[tokio::test]
    async fn an_empty_name_binds_a_fresh_one() {
        let taken = MemoryListener::bind("memory://auto-1");
        let a = MemoryListener::bind("memory://").unwrap();
        let b = MemoryListener::bind("memory://").unwrap();
        assert_ne!(a.local_addr(), b.local_addr());
        if let Ok(taken) = &taken {
            assert_ne!(a.local_addr(), taken.local_addr());
            assert_ne!(b.local_addr(), taken.local_addr());
        }
        assert!(!matches!(a.local_addr(), Addr::Memory(name) if name.is_empty()));
    }

    #[tokio::test(start_paused = true)]
    async fn accept_is_cancel_safe() {
        let listener = MemoryListener::bind("memory://unit-accept").unwrap();
        let waited = tokio::time::timeout(Duration::from_secs(1), listener.accept()).await;
        assert!(waited.is_err());
        let mut client = MemoryStream::connect("memory://unit-accept").unwrap();
        let mut server = listener.accept().await;
        client.write_all(b"x").await.unwrap();
        assert_eq!(server.read_u8().await.unwrap(), b'x');
    }

    #[test]
    fn other_addresses_are_refused() {
        for addr in [Addr::tcp("127.0.0.1", 1), Addr::unix("/x")] {
            assert!(matches!(
                MemoryListener::bind(&addr),
                Err(Error::InvalidAddr { .. })
            ));
            assert!(matches!(
                MemoryStream::connect(&addr),
                Err(Error::InvalidAddr { .. })
            ));
        }
    }

    #[tokio::test]
    async fn the_transport_layer_speaks_memory() {
        let addr = Addr::memory("unit-transport");
        let (listener, local, file) = Listener::bind(&addr, &crate::config::Config::default())
            .await
            .unwrap();
        assert_eq!(local, addr);
        assert!(file.is_none());
        let (_r, client_write, client_peer) =
            crate::transport::connect(&addr, &crate::config::Config::default())
                .await
                .unwrap();
        let (mut server_read, _w, server_peer, cred) = listener.accept().await.unwrap();
        assert_eq!(client_peer, PeerAddr::Memory("unit-transport".into()));
        assert_eq!(server_peer, client_peer);
        assert_eq!(server_peer.transport(), "memory");
        assert!(cred.is_none());
        client_write.try_write(b"hi").unwrap();
        let mut got = [0; 2];
        server_read.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hi");
    }
}
