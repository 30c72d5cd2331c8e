//! Transports: TCP and Unix domain sockets behind one listener/stream type.
//!
//! Nothing outside this module knows which transport a connection runs on: it
//! sees a [`Listener`] that accepts, and a stream split into a [`ReadHalf`] and
//! a [`WriteHalf`].

mod tcp;
mod unix;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Addr, Error};

pub(crate) use unix::SocketFile;

/// The address of a connected peer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix socket peer; the path, when the peer's socket is bound to one
    /// (clients usually are not).
    Unix(Option<PathBuf>),
}

impl PeerAddr {
    /// `"tcp"` or `"unix"`, for logs.
    pub(crate) fn transport(&self) -> &'static str {
        match self {
            PeerAddr::Tcp(_) => "tcp",
            PeerAddr::Unix(_) => "unix",
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(sa) => write!(f, "tcp://{sa}"),
            PeerAddr::Unix(Some(path)) => write!(f, "unix://{}", path.display()),
            PeerAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

/// The credentials of the process at the other end of a Unix socket, as the
/// kernel reports them (`SO_PEERCRED`) when the connection is accepted.
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
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    /// Binds, returning the listener, the address actually bound (with the
    /// port filled in when port 0 was asked for) and, for a Unix socket, the
    /// guard that removes its file.
    pub(crate) async fn bind(
        addr: &Addr,
        socket_mode: u32,
    ) -> Result<(Listener, Addr, Option<SocketFile>), Error> {
        match addr {
            Addr::Tcp { host, port } => tcp::bind(addr, host, *port).await,
            Addr::Unix(path) => unix::bind(addr, path, socket_mode).await,
        }
    }

    pub(crate) async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => tcp::accept(l).await,
            Listener::Unix(l) => unix::accept(l).await,
        }
    }
}

/// Connects to `addr`.
pub(crate) async fn connect(addr: &Addr) -> Result<(ReadHalf, WriteHalf, PeerAddr), Error> {
    let connected = match addr {
        Addr::Tcp { host, port } => tcp::connect(host, *port).await,
        Addr::Unix(path) => unix::connect(path).await,
    };
    connected.map_err(|source| Error::Connect {
        addr: addr.clone(),
        source,
    })
}

/// The reading half of a connection.
pub(crate) enum ReadHalf {
    Tcp(tokio::net::tcp::OwnedReadHalf),
    Unix(tokio::net::unix::OwnedReadHalf),
}

/// The writing half of a connection.
pub(crate) enum WriteHalf {
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    Unix(tokio::net::unix::OwnedWriteHalf),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            WriteHalf::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
