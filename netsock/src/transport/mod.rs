//! Transports: TCP, TLS over TCP, Unix domain sockets and in-memory
//! connections behind one listener/stream type.
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
#[cfg(feature = "tls")]
pub(crate) mod tls;
#[cfg(feature = "unix")]
mod unix;
#[cfg(feature = "tls")]
mod x509;

/// Matches `self` on its transport variants, each compiled only with its
/// feature.
macro_rules! each_transport {
    ($value:expr, $s:ident => $body:expr) => {
        match $value {
            #[cfg(feature = "tcp")]
            Self::Tcp($s) => $body,
            #[cfg(feature = "unix")]
            Self::Unix($s) => $body,
            #[cfg(feature = "tls")]
            Self::Tls($s) => $body,
            Self::Memory($s) => $body,
        }
    };
}

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::addr::Addr;
use crate::config::Config;
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
    /// A TCP peer speaking TLS (see [`PeerCert`] for who it proved to be).
    Tls(SocketAddr),
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
            PeerAddr::Tls(_) => "tls",
            PeerAddr::Unix(_) => "unix",
            PeerAddr::Memory(_) => "memory",
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(sa) => write!(f, "tcp://{sa}"),
            PeerAddr::Tls(sa) => write!(f, "tls://{sa}"),
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

/// The certificate a TLS peer presented, verified by this side: on a
/// server doing mutual TLS (`ServerTls::client_auth`), the client's; on a
/// client, the server's. Read it in a middleware
/// ([`Handshake::peer_cert`](crate::Handshake::peer_cert)) or on the socket
/// ([`Socket::peer_cert`](crate::Socket::peer_cert)), the way
/// [`PeerCred`] tells who is at the other end of a Unix socket.
///
/// The subject and the subject alternative names are read from the
/// certificate's DER, which is there too for anything else. Without the
/// `tls` feature there is never one.
///
/// ```
/// use netsock::{Handshake, SubjectAltName};
///
/// /// Lets in the client whose certificate names `service`, and only it.
/// fn only(hs: &Handshake, service: &str) -> bool {
///     hs.peer_cert().is_some_and(|cert| {
///         cert.subject_alt_names().iter().any(|san| matches!(san, SubjectAltName::Dns(name) if name == service))
///     })
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCert {
    der: Vec<u8>,
    subject: String,
    sans: Vec<SubjectAltName>,
}

/// One subject alternative name of a [`PeerCert`]: what the certificate is
/// valid for.
///
/// ```
/// use netsock::SubjectAltName;
/// let san = SubjectAltName::Dns("svc.internal".into());
/// assert_eq!(san.to_string(), "DNS:svc.internal");
/// assert_eq!(SubjectAltName::Ip([10, 0, 0, 7].into()).to_string(), "IP:10.0.0.7");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectAltName {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(std::net::IpAddr),
    /// An email address (`rfc822Name`).
    Email(String),
    /// A URI, e.g. a SPIFFE id `spiffe://trust-domain/path`.
    Uri(String),
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectAltName::Dns(name) => write!(f, "DNS:{name}"),
            SubjectAltName::Ip(ip) => write!(f, "IP:{ip}"),
            SubjectAltName::Email(email) => write!(f, "email:{email}"),
            SubjectAltName::Uri(uri) => write!(f, "URI:{uri}"),
        }
    }
}

impl PeerCert {
    /// Reads the subject and names of a certificate rustls has verified.
    #[cfg(feature = "tls")]
    pub(crate) fn from_der(der: &[u8]) -> PeerCert {
        let (subject, sans) = x509::subject_and_sans(der).unwrap_or_default();
        PeerCert {
            der: der.to_vec(),
            subject,
            sans,
        }
    }

    /// The certificate, DER-encoded, to parse with an X.509 library for
    /// anything the other methods do not give.
    ///
    /// ```
    /// # fn f(cert: &netsock::PeerCert) {
    /// let fingerprint_input: &[u8] = cert.der();
    /// # }
    /// ```
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject's distinguished name, its attributes in certificate
    /// order, e.g. `CN=orders, O=Acme`; empty when the certificate has none
    /// (certificates that name their subject only in their alternative
    /// names).
    ///
    /// ```
    /// # fn f(cert: &netsock::PeerCert) {
    /// println!("client {}", cert.subject());
    /// # }
    /// ```
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject's common name (`CN`), if it has one.
    ///
    /// ```
    /// # fn f(cert: &netsock::PeerCert) -> bool {
    /// cert.common_name() == Some("orders")
    /// # }
    /// ```
    pub fn common_name(&self) -> Option<&str> {
        self.subject
            .split(", ")
            .find_map(|attr| attr.strip_prefix("CN="))
    }

    /// The subject alternative names: the DNS names, IP addresses, emails
    /// and URIs the certificate is valid for.
    ///
    /// ```
    /// # fn f(cert: &netsock::PeerCert) {
    /// for san in cert.subject_alt_names() {
    ///     println!("valid for {san}");
    /// }
    /// # }
    /// ```
    pub fn subject_alt_names(&self) -> &[SubjectAltName] {
        &self.sans
    }
}

/// An accepted connection, split.
pub(crate) type Accepted = (ReadHalf, WriteHalf, PeerAddr, Option<PeerCred>);

/// A bound listening socket.
pub(crate) enum Listener {
    #[cfg(feature = "tcp")]
    Tcp(tokio::net::TcpListener),
    #[cfg(feature = "unix")]
    Unix(tokio::net::UnixListener),
    /// TCP, each connection's TLS handshake in a task of its own.
    #[cfg(feature = "tls")]
    Tls(tokio::net::TcpListener, tls::Acceptor),
    Memory(memory::MemoryListener),
}

impl Listener {
    /// Binds, returning the listener, the address actually bound (with the
    /// port filled in when port 0 was asked for) and, for a Unix socket, the
    /// guard that removes its file. With a server TLS configuration, a TCP
    /// (or `tls://`) address listens for TLS.
    pub(crate) async fn bind(
        addr: &Addr,
        config: &Config,
    ) -> Result<(Listener, Addr, Option<SocketFile>), Error> {
        let socket_mode = config.socket_mode;
        let _ = socket_mode; // unused without the `unix` feature
        #[cfg(feature = "tls")]
        if let Some(bound) = tls::bind(addr, config).await {
            return bound;
        }
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
            #[cfg(feature = "tls")]
            Listener::Tls(l, acceptor) => tls::accept(l, acceptor).await,
            Listener::Memory(l) => memory::accept(l).await,
        }
    }

    /// The handle that replaces a TLS listener's certificates.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_acceptor(&self) -> Option<tls::Acceptor> {
        match self {
            Listener::Tls(_, acceptor) => Some(acceptor.clone()),
            _ => None,
        }
    }
}

/// The error for an address whose transport was compiled out.
#[allow(dead_code)]
fn disabled(addr: &Addr) -> Error {
    let feature = match addr {
        Addr::Tcp { .. } => "tcp",
        Addr::Unix(_) => "unix",
        Addr::Tls { .. } => "tls",
        Addr::Memory(_) => unreachable!("the memory transport is always built"),
    };
    Error::TransportDisabled {
        addr: addr.clone(),
        feature,
    }
}

/// Connects to `addr`; with TLS when it is a `tls://` address, or when
/// `config` has a client TLS configuration.
pub(crate) async fn connect(
    addr: &Addr,
    config: &Config,
) -> Result<(ReadHalf, WriteHalf, PeerAddr), Error> {
    let _ = config; // unused without the `tls` feature
    #[cfg(feature = "tls")]
    if let Some(connected) = tls::connect(addr, config).await {
        return connected;
    }
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
    #[cfg(feature = "tls")]
    Tls(tls::TlsRead),
    Memory(memory::MemRead),
}

impl ReadHalf {
    /// The certificate the TLS peer presented and this side verified, once
    /// the TLS handshake is done.
    pub(crate) fn peer_cert(&self) -> Option<Arc<PeerCert>> {
        match self {
            #[cfg(feature = "tls")]
            ReadHalf::Tls(r) => r.link().peer_cert(),
            _ => None,
        }
    }

    /// Why the TLS layer under this connection failed, if it did: the
    /// connection then ends as if the peer hung up, and this says why.
    pub(crate) fn tls_failure(&self) -> Option<crate::error::TlsError> {
        match self {
            #[cfg(feature = "tls")]
            ReadHalf::Tls(r) => r.link().failure(),
            _ => None,
        }
    }
}

/// The writing half of a connection.
pub(crate) enum WriteHalf {
    #[cfg(feature = "tcp")]
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    #[cfg(feature = "unix")]
    Unix(tokio::net::unix::OwnedWriteHalf),
    #[cfg(feature = "tls")]
    Tls(tls::TlsWrite),
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
