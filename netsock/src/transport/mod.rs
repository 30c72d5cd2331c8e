//! Transports: TCP, Unix domain sockets and in-memory connections behind one
//! listener/stream type.
//!
//! Nothing outside this module knows which transport a connection runs on: it
//! sees a [`Listener`] that accepts, and a stream split into a [`ReadHalf`] and
//! a [`WriteHalf`].
//!
//! The in-memory transport is always built (it needs nothing from the OS), so
//! a build without `tcp` and `unix` is still a working one: tests can run on
//! it, and socket addresses fail with [`Error::TransportDisabled`].

pub mod memory;
#[cfg(feature = "tcp")]
mod tcp;
#[cfg(feature = "unix")]
mod unix;

/// Matches `self` on its transport variants, each compiled only with its
/// feature.
macro_rules! each_transport {
    ($value:expr, $s:ident => $body:expr) => {
        match $value {
            #[cfg(feature = "tcp")]
            Self::Tcp($s) => $body,
            #[cfg(feature = "unix")]
            Self::Unix($s) => $body,
            Self::Memory($s) => $body,
        }
    };
}

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::addr::Addr;
use crate::error::Error;

#[cfg(feature = "unix")]
pub(crate) use unix::SocketFile;

/// Without the `unix` feature there is never a socket file to remove.
#[cfg(not(feature = "unix"))]
pub(crate) struct SocketFile;

/// The address of a connected peer.
///
/// ```
/// use netsock::PeerAddr;
/// let tcp = PeerAddr::Tcp("127.0.0.1:4000".parse().unwrap());
/// assert_eq!(tcp.to_string(), "tcp://127.0.0.1:4000");
/// assert_eq!(PeerAddr::Unix(None).to_string(), "unix:(unnamed)");
/// assert_eq!(PeerAddr::Memory("orders".into()).to_string(), "memory://orders");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix socket peer; the path, when the peer's socket is bound to one
    /// (clients usually are not).
    Unix(Option<PathBuf>),
    /// An in-memory peer (see [`memory`](crate::memory)): the name of the
    /// listener the connection was made to, on both sides.
    Memory(String),
}

impl PeerAddr {
    /// `"tcp"`, `"unix"` or `"memory"`, for logs.
    pub(crate) fn transport(&self) -> &'static str {
        match self {
            PeerAddr::Tcp(_) => "tcp",
            PeerAddr::Unix(_) => "unix",
            PeerAddr::Memory(_) => "memory",
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(sa) => write!(f, "tcp://{sa}"),
            PeerAddr::Unix(Some(path)) => write!(f, "unix://{}", path.display()),
            PeerAddr::Unix(None) => f.write_str("unix:(unnamed)"),
            PeerAddr::Memory(name) => write!(f, "memory://{name}"),
        }
    }
}

/// The credentials of the process at the other end of a Unix socket, as the
/// kernel reports them (`SO_PEERCRED`) when the connection is accepted.
///
/// ```
/// use netsock::PeerCred;
/// fn describe(cred: PeerCred) -> String {
///     match cred.pid {
///         Some(pid) => format!("uid {} gid {} pid {pid}", cred.uid, cred.gid),
///         None => format!("uid {} gid {}", cred.uid, cred.gid),
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerCred {
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
    /// The peer's process id, where the platform reports it.
    pub pid: Option<i32>,
}

/// An accepted connection, split.
pub(crate) type Accepted = (ReadHalf, WriteHalf, PeerAddr, Option<PeerCred>);

/// A bound listening socket.
pub(crate) enum Listener {
    #[cfg(feature = "tcp")]
    Tcp(tokio::net::TcpListener),
    #[cfg(feature = "unix")]
    Unix(tokio::net::UnixListener),
    Memory(memory::MemoryListener),
}

impl Listener {
    /// Binds, returning the listener, the address actually bound (with the
    /// port filled in when port 0 was asked for) and, for a Unix socket, the
    /// guard that removes its file.
    pub(crate) async fn bind(
        addr: &Addr,
        socket_mode: u32,
    ) -> Result<(Listener, Addr, Option<SocketFile>), Error> {
        let _ = socket_mode; // unused without the `unix` feature
        match addr {
            #[cfg(feature = "tcp")]
            Addr::Tcp { host, port } => tcp::bind(addr, host, *port).await,
            #[cfg(feature = "unix")]
            Addr::Unix(path) => unix::bind(addr, path, socket_mode).await,
            Addr::Memory(name) => memory::bind(addr, name),
            #[allow(unreachable_patterns)]
            _ => Err(disabled(addr)),
        }
    }

    pub(crate) async fn accept(&self) -> io::Result<Accepted> {
        match self {
            #[cfg(feature = "tcp")]
            Listener::Tcp(l) => tcp::accept(l).await,
            #[cfg(feature = "unix")]
            Listener::Unix(l) => unix::accept(l).await,
            Listener::Memory(l) => memory::accept(l).await,
        }
    }
}

/// The error for an address whose transport was compiled out.
#[allow(dead_code)]
fn disabled(addr: &Addr) -> Error {
    let feature = match addr {
        Addr::Tcp { .. } => "tcp",
        Addr::Unix(_) => "unix",
        Addr::Memory(_) => unreachable!("the memory transport is always built"),
    };
    Error::TransportDisabled {
        addr: addr.clone(),
        feature,
    }
}

/// Connects to `addr`.
pub(crate) async fn connect(addr: &Addr) -> Result<(ReadHalf, WriteHalf, PeerAddr), Error> {
    let connected = match addr {
        #[cfg(feature = "tcp")]
        Addr::Tcp { host, port } => tcp::connect(host, *port).await,
        #[cfg(feature = "unix")]
        Addr::Unix(path) => unix::connect(path).await,
        Addr::Memory(name) => memory::connect(name),
        #[allow(unreachable_patterns)]
        _ => return Err(disabled(addr)),
    };
    connected.map_err(|source| Error::Connect {
        addr: addr.clone(),
        source,
    })
}

/// The reading half of a connection.
pub(crate) enum ReadHalf {
    #[cfg(feature = "tcp")]
    Tcp(tokio::net::tcp::OwnedReadHalf),
    #[cfg(feature = "unix")]
    Unix(tokio::net::unix::OwnedReadHalf),
    Memory(memory::MemRead),
}

/// The writing half of a connection.
pub(crate) enum WriteHalf {
    #[cfg(feature = "tcp")]
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    #[cfg(feature = "unix")]
    Unix(tokio::net::unix::OwnedWriteHalf),
    Memory(memory::MemWrite),
}

impl WriteHalf {
    /// Writes what the socket takes now, without waiting.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        each_transport!(self, s => s.try_write(buf))
    }

    /// Writes `buf` from `done` on, as far as the socket takes it without
    /// waiting; `done` says how far that was.
    pub(crate) fn write_now(&self, buf: &[u8], done: &mut usize) -> io::Result<()> {
        while *done < buf.len() {
            match self.try_write(&buf[*done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => *done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Waits until the socket may take more bytes.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        each_transport!(self, s => s.writable().await)
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each_transport!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each_transport!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each_transport!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_transport!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_transport!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}
