//! TLS over TCP, with rustls (through `tokio-rustls`).
//!
//! netsock's reader reads the rustls stream directly. Writing is another
//! matter: the connection core writes through a shared handle without
//! waiting (`try_write`) and waits for writability apart (`writable`),
//! which a TLS stream, written through `&mut` and buffering inside rustls,
//! cannot offer. So each TLS connection has a *pump* task that owns the
//! stream's writing half and moves what netsock writes into one end of an
//! in-memory pipe (the memory transport's) into rustls, with the same
//! bounded, non-blocking semantics as a socket. A peer that stops reading
//! fills the socket, then the pipe, then netsock's queue, then trips the
//! write timeout, as over TCP.
//!
//! The server's TLS handshake runs in the pump too, so it never holds up the
//! accept loop, and it is covered by the handshake timeout: the server waits
//! for the `Hello` under that timeout, and its reading half has nothing to
//! read until the pump hands it the rustls stream's. When the handshake
//! fails, the pump notes why (for the server's log and `Rejects::tls`) and
//! the reading half ends. The client does its handshake before it starts
//! the pump, and gets the failure from `connect`; an alert after that (a
//! server refusing the client's certificate, under TLS 1.3) is noted by the
//! reading half.

use std::future::Future;
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

use super::memory::{self, MemWrite, MemoryStream};
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

/// The rustls stream's reading half, which netsock's reader reads from
/// directly.
type StreamRead = tokio::io::ReadHalf<TlsStream<TcpStream>>;

/// The reading half of a TLS connection: plaintext, read from the rustls
/// stream by netsock's reader itself.
pub(crate) struct TlsRead {
    state: ReadState,
    link: Arc<Link>,
    /// Dropped with the last half: tells the pump netsock hung up.
    _hang_up: Arc<oneshot::Sender<()>>,
}

enum ReadState {
    /// Server side, until the pump has done the TLS handshake; dropped
    /// unsent when it failed (the link says why).
    Handshaking(oneshot::Receiver<StreamRead>),
    Ready(StreamRead),
    /// The handshake failed: end of stream.
    Ended,
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
        let this = self.get_mut();
        loop {
            match &mut this.state {
                ReadState::Handshaking(handshake) => {
                    this.state = match std::task::ready!(Pin::new(handshake).poll(cx)) {
                        Ok(read) => ReadState::Ready(read),
                        Err(_) => ReadState::Ended,
                    };
                }
                ReadState::Ready(read) => {
                    let result = std::task::ready!(Pin::new(read).poll_read(cx, buf));
                    if let Err(err) = &result {
                        // An alert from the peer (say, refusing our
                        // certificate) or a broken record: note why.
                        if let Some(cause) = rustls_cause(err, "") {
                            this.link.fail(cause);
                        }
                    }
                    return Poll::Ready(result);
                }
                ReadState::Ended => return Poll::Ready(Ok(())),
            }
        }
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
    rustls_cause(err, name).unwrap_or_else(|| match err.kind() {
        io::ErrorKind::UnexpectedEof => {
            TlsError::Other("the peer closed the connection during the TLS handshake".into())
        }
        _ => TlsError::Other(err.to_string()),
    })
}

/// The cause, when `err` carries a rustls error (and is not plain I/O).
fn rustls_cause(err: &io::Error, name: &str) -> Option<TlsError> {
    use rustls::{AlertDescription as Alert, CertificateError as Cert};
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())?;
    Some(match tls {
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
    })
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
    // netsock only writes into the pipe; it reads the rustls stream.
    let (_, pipe_write) = memory::split_raw(theirs);
    let (hang_up, hung_up) = oneshot::channel();
    let hang_up = Arc::new(hang_up);
    let link = Arc::new(Link::default());
    let (state, pump) = match begin {
        Start::Connected(tls) => {
            // Known before `connect` returns.
            link.note_cert(&tls);
            let (read, write) = tokio::io::split(*tls);
            (ReadState::Ready(read), Pump::Write(write))
        }
        Start::Accept(config, tcp) => {
            let (read_tx, read_rx) = oneshot::channel();
            (
                ReadState::Handshaking(read_rx),
                Pump::Accept(config, tcp, read_tx),
            )
        }
    };
    let span = tracing::Span::current();
    tokio::spawn(pump_task(pump, ours, link.clone(), hung_up).instrument(span));
    (
        ReadHalf::Tls(TlsRead {
            state,
            link,
            _hang_up: hang_up.clone(),
        }),
        WriteHalf::Tls(TlsWrite {
            pipe: pipe_write,
            _hang_up: hang_up,
        }),
    )
}

/// What the pump task starts with.
enum Pump {
    /// Server side: the TLS handshake to do, then the reading half to hand
    /// to netsock.
    Accept(
        Arc<rustls::ServerConfig>,
        TcpStream,
        oneshot::Sender<StreamRead>,
    ),
    /// Writing only.
    Write(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

/// Does the server's handshake, then writes what netsock queues into the
/// rustls stream until netsock shuts its writing side (then sends TLS's
/// close_notify), the peer fails, or netsock hangs up and `LINGER` passes.
async fn pump_task(
    pump: Pump,
    mut local: MemoryStream,
    link: Arc<Link>,
    mut hung_up: oneshot::Receiver<()>,
) {
    let mut tls_write = match pump {
        Pump::Write(write) => write,
        Pump::Accept(config, tcp, read_tx) => {
            let accept = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
            let tls = tokio::select! {
                accepted = accept => match accepted {
                    Ok(tls) => TlsStream::Server(tls),
                    Err(err) => {
                        link.fail(classify(&err, ""));
                        return; // dropping `read_tx` ends netsock's reading
                    }
                },
                // netsock gave up on the connection (handshake timeout).
                _ = &mut hung_up => return,
            };
            // Before any plaintext reaches netsock: the server's middleware sees it.
            link.note_cert(&tls);
            let (read, write) = tokio::io::split(tls);
            if read_tx.send(read).is_err() {
                return; // netsock is gone
            }
            write
        }
    };
    let outbound = async {
        let mut buf = vec![0u8; PIPE_BUFFER];
        loop {
            match local.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let sent = async {
                        tls_write.write_all(&buf[..n]).await?;
                        tls_write.flush().await
                    };
                    if let Err(err) = sent.await {
                        // The peer is gone; netsock's reader sees it too, and
                        // its writes into the pipe fail once this returns.
                        tracing::debug!(%err, "TLS write failed");
                        return;
                    }
                }
            }
        }
        let _ = tls_write.shutdown().await;
    };
    let mut outbound = pin!(outbound);
    tokio::select! {
        () = &mut outbound => return,
        _ = &mut hung_up => {}
    }
    // netsock hung up: finish writing what it queued, for a while.
    let _ = tokio::time::timeout(LINGER, outbound).await;
}
