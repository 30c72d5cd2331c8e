//! TLS over TCP, with rustls (through `tokio-rustls`).
//!
//! The connection core writes through a shared handle without waiting
//! (`try_write`) and waits for writability apart (`writable`), which a TLS
//! stream, written through `&mut` and buffering inside rustls, cannot
//! offer. So each TLS connection gets a *pump* task that owns the TLS
//! stream and moves plaintext between it and one end of an in-memory pipe
//! pair (the memory transport's); netsock reads and writes the other end,
//! with the same bounded, non-blocking semantics as a socket. A peer that
//! stops reading fills the pipe, then netsock's queue, then trips the write
//! timeout, as over TCP.
//!
//! The server's TLS handshake runs in the pump too, so it never holds up the
//! accept loop, and it is covered by the handshake timeout: the server waits
//! for the `Hello` under that timeout, and no plaintext arrives before the
//! TLS handshake is done. When it fails, the pump notes why (for the server's
//! log and `Rejects::tls`) and hangs up. The client does its handshake
//! before it starts the pump, and gets the failure from `connect`.

use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::rustls;
use tokio_rustls::TlsStream;
use tracing::Instrument;

use super::memory::{self, MemRead, MemWrite, MemoryStream};
use super::{Listener, PeerAddr, PeerCert, ReadHalf, WriteHalf};
use crate::addr::Addr;
use crate::config::Config;
use crate::error::{Error, TlsError};
use crate::sync::{lock, read, write};

/// Bytes each direction of the pipe between netsock and the pump holds:
/// four full TLS records.
const PIPE_BUFFER: usize = 64 * 1024;

/// How long the pump keeps writing what netsock queued before it hung up
/// (its last frames, a `Reject`, a `Close`), for a peer that reads slowly.
/// A socket's kernel would keep trying; this bounds it.
const LINGER: Duration = Duration::from_secs(5);

/// A TLS listener's current server configuration; replacing it changes the
/// certificates new connections get.
#[derive(Clone)]
pub(crate) struct Acceptor(Arc<RwLock<Arc<rustls::ServerConfig>>>);

impl Acceptor {
    pub(crate) fn new(config: Arc<rustls::ServerConfig>) -> Self {
        Acceptor(Arc::new(RwLock::new(config)))
    }

    pub(crate) fn replace(&self, config: Arc<rustls::ServerConfig>) {
        *write(&self.0) = config;
    }

    fn current(&self) -> Arc<rustls::ServerConfig> {
        read(&self.0).clone()
    }
}

/// What the pump tells netsock about its connection.
#[derive(Default)]
pub(crate) struct Link {
    cert: OnceLock<Arc<PeerCert>>,
    failure: Mutex<Option<TlsError>>,
}

impl Link {
    pub(crate) fn peer_cert(&self) -> Option<Arc<PeerCert>> {
        self.cert.get().cloned()
    }

    pub(crate) fn failure(&self) -> Option<TlsError> {
        lock(&self.failure).clone()
    }

    fn note_cert(&self, tls: &TlsStream<TcpStream>) {
        if self.cert.get().is_none() {
            if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                let _ = self.cert.set(Arc::new(PeerCert::from_der(cert)));
            }
        }
    }

    fn fail(&self, cause: TlsError) {
        lock(&self.failure).get_or_insert(cause);
    }
}

/// The reading half of a TLS connection: plaintext from the pump.
pub(crate) struct TlsRead {
    pipe: MemRead,
    link: Arc<Link>,
    /// Dropped with the last half: tells the pump netsock hung up.
    _hang_up: Arc<oneshot::Sender<()>>,
}

impl TlsRead {
    pub(crate) fn link(&self) -> &Link {
        &self.link
    }
}

/// The writing half of a TLS connection: plaintext to the pump, written
/// through a shared reference like a socket.
pub(crate) struct TlsWrite {
    pipe: MemWrite,
    _hang_up: Arc<oneshot::Sender<()>>,
}

impl TlsWrite {
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.pipe.try_write(buf)
    }

    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.pipe.writable().await
    }
}

impl AsyncRead for TlsRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().pipe).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().pipe).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().pipe).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().pipe).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().pipe).poll_shutdown(cx)
    }
}

/// Binds a TLS listener when `addr` is a `tls://` address or the server has
/// a TLS configuration; `None` for a plain address without one.
pub(super) async fn bind(
    addr: &Addr,
    config: &Config,
) -> Option<Result<(Listener, Addr, Option<super::SocketFile>), Error>> {
    let tls = config.server_tls.as_ref();
    let (host, port) = match (addr, tls) {
        (Addr::Tls { host, port } | Addr::Tcp { host, port }, Some(_)) => (host, *port),
        (Addr::Tls { .. }, None) => {
            return Some(Err(Error::TlsConfig {
                reason: format!(
                    "{addr} needs a certificate to present: give one with ServerBuilder::tls"
                ),
            }))
        }
        (_, Some(_)) => {
            return Some(Err(Error::TlsConfig {
                reason: format!("TLS runs over TCP; {addr} is not a host:port address"),
            }))
        }
        (_, None) => return None,
    };
    let server = match tls.map(crate::tls::ServerTls::build) {
        Some(Ok(server)) => server,
        Some(Err(err)) => return Some(Err(err)),
        None => return None,
    };
    let bound = async {
        let bind_err = |source| Error::Bind {
            addr: addr.clone(),
            source,
        };
        let listener = TcpListener::bind((host.as_str(), port))
            .await
            .map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let local = Addr::tls(local.ip().to_string(), local.port());
        Ok((Listener::Tls(listener, Acceptor::new(server)), local, None))
    };
    Some(bound.await)
}

/// Accepts a TCP connection and starts its pump, which does the TLS
/// handshake; the halves carry plaintext once it is done.
pub(super) async fn accept(
    listener: &TcpListener,
    acceptor: &Acceptor,
) -> io::Result<super::Accepted> {
    let (stream, peer) = listener.accept().await?;
    nodelay(&stream);
    let (read, write) = start(Start::Accept(acceptor.current(), stream));
    Ok((read, write, PeerAddr::Tls(peer), None))
}

/// Connects with TLS when `addr` is a `tls://` address or the socket has a
/// TLS configuration; `None` for a plain address without one.
pub(super) async fn connect(
    addr: &Addr,
    config: &Config,
) -> Option<Result<(ReadHalf, WriteHalf, PeerAddr), Error>> {
    let tls = config.client_tls.as_ref();
    let (host, port) = match (addr, tls) {
        (Addr::Tls { host, port } | Addr::Tcp { host, port }, Some(_)) => (host, *port),
        (Addr::Tls { .. }, None) => {
            return Some(Err(Error::TlsConfig {
                reason: format!(
                    "{addr} needs the roots to trust: give them with SocketBuilder::tls(ClientTls::with_roots(..))"
                ),
            }))
        }
        (_, Some(_)) => {
            return Some(Err(Error::TlsConfig {
                reason: format!("TLS runs over TCP; {addr} is not a host:port address"),
            }))
        }
        (_, None) => return None,
    };
    let tls = tls?;
    Some(
        async {
            let client = tls.config()?;
            let name = tls.name_for(host)?;
            let expected = name.to_str().into_owned();
            let stream = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|source| Error::Connect {
                    addr: addr.clone(),
                    source,
                })?;
            nodelay(&stream);
            let peer: SocketAddr = stream.peer_addr()?;
            let stream = tokio_rustls::TlsConnector::from(client)
                .connect(name, stream)
                .await
                .map_err(|err| Error::Tls {
                    addr: addr.to_string(),
                    cause: classify(&err, &expected),
                })?;
            let (read, write) = start(Start::Connected(Box::new(TlsStream::Client(stream))));
            Ok((read, write, PeerAddr::Tls(peer)))
        }
        .await,
    )
}

fn nodelay(stream: &TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "could not set TCP_NODELAY");
    }
}

/// Why a TLS handshake or stream failed, from rustls' error inside `err`.
/// `name` is the name a client expected on the server's certificate.
pub(crate) fn classify(err: &io::Error, name: &str) -> TlsError {
    use rustls::{AlertDescription as Alert, CertificateError as Cert};
    let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match err.kind() {
            io::ErrorKind::UnexpectedEof => {
                TlsError::Other("the peer closed the connection during the TLS handshake".into())
            }
            _ => TlsError::Other(err.to_string()),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            Cert::UnknownIssuer => TlsError::UnknownIssuer,
            Cert::NotValidForName | Cert::NotValidForNameContext { .. } => TlsError::NameMismatch {
                name: name.to_owned(),
            },
            Cert::Expired
            | Cert::ExpiredContext { .. }
            | Cert::NotValidYet
            | Cert::NotValidYetContext { .. } => TlsError::Expired,
            other => TlsError::Other(format!("the peer's certificate is invalid: {other:?}")),
        },
        rustls::Error::NoCertificatesPresented => TlsError::ClientCertMissing,
        rustls::Error::AlertReceived(Alert::CertificateRequired) => TlsError::ClientCertMissing,
        rustls::Error::AlertReceived(
            alert @ (Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::CertificateUnknown
            | Alert::UnsupportedCertificate
            | Alert::AccessDenied),
        ) => TlsError::CertRefused {
            alert: format!("{alert:?}"),
        },
        rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
            | rustls::InvalidMessage::UnknownProtocolVersion,
        ) => TlsError::NotTls,
        other => TlsError::Other(other.to_string()),
    }
}

/// How a pump begins.
enum Start {
    /// Server side: the TLS handshake is still to do.
    Accept(Arc<rustls::ServerConfig>, TcpStream),
    /// Client side: done already.
    Connected(Box<TlsStream<TcpStream>>),
}

/// Starts the pump for a connection, returning netsock's halves.
fn start(begin: Start) -> (ReadHalf, WriteHalf) {
    let (ours, theirs) = MemoryStream::pair(PIPE_BUFFER);
    let (pipe_read, pipe_write) = memory::split_raw(theirs);
    let (hang_up, hung_up) = oneshot::channel();
    let hang_up = Arc::new(hang_up);
    let link = Arc::new(Link::default());
    if let Start::Connected(tls) = &begin {
        // Known before `connect` returns.
        link.note_cert(tls);
    }
    let span = tracing::Span::current();
    tokio::spawn(pump(begin, ours, link.clone(), hung_up).instrument(span));
    (
        ReadHalf::Tls(TlsRead {
            pipe: pipe_read,
            link,
            _hang_up: hang_up.clone(),
        }),
        WriteHalf::Tls(TlsWrite {
            pipe: pipe_write,
            _hang_up: hang_up,
        }),
    )
}

/// Owns the TLS stream: does the server's handshake, then moves bytes both
/// ways until either side is done.
async fn pump(
    begin: Start,
    local: MemoryStream,
    link: Arc<Link>,
    mut hung_up: oneshot::Receiver<()>,
) {
    let tls = match begin {
        Start::Connected(tls) => *tls,
        Start::Accept(config, tcp) => {
            let accept = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
            tokio::select! {
                accepted = accept => match accepted {
                    Ok(tls) => TlsStream::Server(tls),
                    Err(err) => {
                        link.fail(classify(&err, ""));
                        return; // dropping `local` hangs up on netsock
                    }
                },
                // netsock gave up on the connection (handshake timeout).
                _ = &mut hung_up => return,
            }
        }
    };
    // Before any plaintext reaches netsock: the server's middleware sees it.
    link.note_cert(&tls);
    let (mut tls_read, mut tls_write) = tokio::io::split(tls);
    let (mut local_read, mut local_write) = memory::split_raw(local);

    // Peer to netsock. Ends at the peer's end of stream or a TLS error
    // (noted in the link), and shuts netsock's reading side: it sees the
    // end of the stream, as over TCP.
    let inbound = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match tls_read.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if local_write.write_all(&buf[..n]).await.is_err() {
                        break; // netsock stopped reading
                    }
                }
                Err(err) => {
                    tracing::debug!(%err, "TLS read failed");
                    link.fail(classify(&err, ""));
                    break;
                }
            }
        }
        let _ = local_write.shutdown().await;
    };
    // netsock to peer. Ends when netsock shuts its writing side (after
    // its last frame), sending TLS's close_notify; or on a write error.
    let outbound = async {
        let mut buf = vec![0u8; PIPE_BUFFER];
        loop {
            match local_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let sent = async {
                        tls_write.write_all(&buf[..n]).await?;
                        tls_write.flush().await
                    };
                    if let Err(err) = sent.await {
                        tracing::debug!(%err, "TLS write failed");
                        return false;
                    }
                }
            }
        }
        let _ = tls_write.shutdown().await;
        true
    };
    let mut inbound = pin!(inbound);
    let mut outbound = pin!(outbound);
    let (mut inbound_done, mut outbound_done, mut hung) = (false, false, false);
    let linger = tokio::time::sleep(LINGER); // armed when netsock hangs up
    let mut linger = pin!(linger);
    loop {
        tokio::select! {
            () = &mut inbound, if !inbound_done => inbound_done = true,
            ok = &mut outbound, if !outbound_done => {
                outbound_done = true;
                if !ok {
                    break; // the peer is gone: hang up on netsock
                }
            }
            _ = &mut hung_up, if !hung => {
                hung = true;
                linger.as_mut().reset(tokio::time::Instant::now() + LINGER);
            }
            () = &mut linger, if hung => break,
        }
        if outbound_done && (inbound_done || hung) {
            break;
        }
    }
}
