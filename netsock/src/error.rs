//! Errors: [`Error`] for what a function returns while setting up and using
//! connections, [`CallError`] for one request, [`SocketError`] for what the
//! error hook hears of (nobody called anything that could return it), and
//! [`DisconnectReason`] for why a connection ended; [`CodecError`] is the
//! serializer's error inside them.
//!
//! ```
//! use netsock::{CallError, DisconnectReason, Error};
//! use std::time::Duration;
//!
//! fn advice(err: &Error) -> &'static str {
//!     match err {
//!         Error::Call(CallError::Timeout { .. }) => "the peer is slow; retry later",
//!         Error::Disconnected(DisconnectReason::PeerHungUp) => "the peer went away; reconnect",
//!         Error::InvalidAddr { .. } => "fix the address",
//!         _ => "see the message",
//!     }
//! }
//!
//! // `?` turns a `CallError` into an `Error`.
//! let err: Error = CallError::Timeout { after: Duration::from_secs(1) }.into();
//! assert_eq!(advice(&err), "the peer is slow; retry later");
//! ```

use std::io;
use std::time::Duration;

use crate::addr::{Addr, InvalidAddr};
use crate::events::SchemaId;
pub use crate::wire::codec::CodecError;
use crate::wire::frame::{CloseReason, FrameError, RejectReason, RemoteError};

/// `Result` with netsock's [`Error`].
///
/// ```
/// fn port(input: &str) -> netsock::Result<u16> {
///     let addr: netsock::Addr = input.parse()?;
///     Ok(addr.port().unwrap_or(0))
/// }
/// assert_eq!(port("3000")?, 3000);
/// assert!(port("no port").is_err());
/// # Ok::<(), netsock::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while binding, connecting, or using a connection.
///
/// ```
/// use netsock::Error;
///
/// // Parsing fails with an `InvalidAddr`, which `?` turns into an `Error`.
/// let err: Error = "localhost".parse::<netsock::Addr>().unwrap_err().into();
/// assert!(matches!(&err, Error::InvalidAddr { input, .. } if input == "localhost"));
/// assert!(err.to_string().starts_with("invalid address \"localhost\""));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address could not be parsed.
    #[error("invalid address {input:?}: {reason}")]
    InvalidAddr {
        /// What the user wrote.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server could not listen on the address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: Addr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A live server already listens on this Unix socket path, or a live
    /// in-memory listener has this [`memory`](crate::memory) name.
    #[error("another server is already listening on {addr}; stop it or choose another address")]
    AddrInUse {
        /// The address.
        addr: Addr,
    },
    /// The address needs a transport this build of netsock leaves out.
    #[error("{addr} needs netsock's `{feature}` feature, which this build does not enable")]
    TransportDisabled {
        /// The address.
        addr: Addr,
        /// The missing cargo feature.
        feature: &'static str,
    },
    /// The socket could not connect.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: Addr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// [`wait_for_server`](crate::SocketBuilder::wait_for_server) ran out:
    /// the server never answered.
    #[error(
        "the server at {addr} did not answer in {waited:?} ({attempts} attempts); the last: {last}"
    )]
    ServerUnreachable {
        /// The address.
        addr: Addr,
        /// How many times it was dialled.
        attempts: u32,
        /// How long it waited.
        waited: Duration,
        /// Why the last attempt failed.
        last: String,
    },
    /// The handshake did not complete in time.
    #[error("the handshake with {addr} did not complete within {after:?}")]
    HandshakeTimeout {
        /// The peer's address.
        addr: String,
        /// The configured handshake timeout.
        after: Duration,
    },
    /// The TLS handshake with the peer failed; `cause` says why and what
    /// to change (see [`TlsError`]).
    #[error("TLS with {addr} failed: {cause}")]
    Tls {
        /// The peer's address.
        addr: String,
        /// Why.
        cause: TlsError,
    },
    /// A TLS setting is unusable: a PEM file that cannot be read or holds
    /// no certificate or key, a key that does not match its certificate, a
    /// server name that is not a DNS name or IP address.
    #[error("TLS setup: {reason}")]
    TlsConfig {
        /// What is wrong, naming the file or setting.
        reason: String,
    },
    /// The two programs were built from different event enums. When the
    /// server sent its schema (netsock servers do, when it fits the frame
    /// limit), `differences` says, one sentence each, which enums and
    /// variants differ: `the server's SumApi has Sum(Vec<i64>)->i64, this
    /// client's has Sum(Vec<i32>)->i64`.
    #[error(
        "schema mismatch: {}this side sends {local_sends} and receives {local_receives}, the peer \
         sends {remote_sends} and receives {remote_receives}; rebuild both from the same event \
         enums, or make the connection lenient for a rolling upgrade",
        said(differences)
    )]
    SchemaMismatch {
        /// Schema of the enum this side sends.
        local_sends: SchemaId,
        /// Schema of the enum this side receives.
        local_receives: SchemaId,
        /// Schema of the enum the peer sends.
        remote_sends: SchemaId,
        /// Schema of the enum the peer receives.
        remote_receives: SchemaId,
        /// How the peer's enums differ from this side's, in words; empty
        /// when the peer did not send its schema.
        differences: Vec<String>,
    },
    /// The peer speaks another version of the wire protocol.
    #[error("protocol version mismatch: this side speaks version {local}, the peer version {remote}; upgrade the older program")]
    VersionMismatch {
        /// Our protocol version.
        local: u16,
        /// The peer's protocol version.
        remote: u16,
    },
    /// The server refused the connection.
    #[error("the server rejected the connection: {0}")]
    Rejected(RejectReason),
    /// The peer sent something that is not netsock's protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A frame is larger than the limit of the side that would receive it.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes (see max_frame_size)")]
    FrameTooLarge {
        /// Size of the frame body in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A broadcast was over the frame limit of some of its recipients:
    /// they did not get it (each is counted in its `events_dropped`); the
    /// others did.
    #[error("an event of {size} bytes is over the frame limit of {skipped} recipient(s) (the smallest: {max} bytes); they did not get it, the others did")]
    BroadcastTooLarge {
        /// Size of the frame body in bytes.
        size: usize,
        /// The smallest limit among the recipients skipped.
        max: usize,
        /// How many recipients were skipped.
        skipped: usize,
    },
    /// A value could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: CodecError,
    },
    /// The outgoing queue is full, and the emit could not wait for room
    /// ([`Socket::try_emit`](crate::Socket::try_emit)): the event was not
    /// sent.
    #[error("the outgoing queue is full: event {event} was not sent to this socket")]
    QueueFull {
        /// The event's variant name.
        event: &'static str,
    },
    /// The connection is closed (or, for a client socket set to
    /// [`fail_offline`](crate::Reconnect::fail_offline), reconnecting).
    #[error("the connection is closed: {0}")]
    Disconnected(DisconnectReason),
    /// A client socket is reconnecting and its buffer for emits made while
    /// offline is full (see [`Reconnect::offline_buffer`](crate::Reconnect::offline_buffer)).
    #[error("offline, and the buffer of {capacity} events is full: event {event} was not sent")]
    OfflineBufferFull {
        /// The event's variant name.
        event: &'static str,
        /// How many events the buffer holds.
        capacity: usize,
    },
    /// `run()` was called on a server that is already running or closed.
    #[error("this server is already running or has been closed")]
    AlreadyRunning,
    /// The task [`Server::spawn`](crate::Server::spawn) started ended
    /// before `run` returned: it panicked, or was cancelled (its runtime
    /// shut down). Awaiting the [`Running`](crate::Running) server gives
    /// this instead of panicking.
    #[error("the server's task ended before `run` returned: {reason}")]
    ServerTask {
        /// How it ended: the panic message, or that it was cancelled.
        reason: String,
    },
    /// A request failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Something between this node and the other nodes of its cluster
    /// failed (see [`netsock::adapter`](crate::adapter)). What reached this
    /// node's own sockets still did.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Why a TLS handshake failed ([`Error::Tls`]), as one side saw it.
///
/// A server hears of its clients' failures only in its log and in
/// [`Rejects::tls`](crate::Rejects::tls); a client gets them from
/// `connect`.
///
/// ```
/// use netsock::{Error, TlsError};
///
/// fn advice(err: &Error) -> &'static str {
///     match err {
///         Error::Tls { cause: TlsError::UnknownIssuer, .. } => "give the client the CA that signed the server",
///         Error::Tls { cause: TlsError::TlsRequired, .. } => "connect with tls://",
///         _ => "see the message",
///     }
/// }
/// let err = Error::Tls { addr: "tls://svc:7000".into(), cause: TlsError::TlsRequired };
/// assert_eq!(advice(&err), "connect with tls://");
/// assert!(err.to_string().starts_with("TLS with tls://svc:7000 failed: the peer speaks TLS"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The peer's certificate is not signed by a root this side trusts.
    #[error(
        "the peer's certificate is not signed by a trusted root; give this side the CA \
         certificate that issued it (ClientTls::with_roots, or ServerTls::client_auth on a server)"
    )]
    UnknownIssuer,
    /// The server's certificate does not name the host the client
    /// connected to.
    #[error(
        "the server's certificate is not valid for {name:?}; connect with a name the certificate \
         lists, set ClientTls::server_name, or reissue the certificate with this name"
    )]
    NameMismatch {
        /// The name the client expected.
        name: String,
    },
    /// The peer's certificate has expired, or is not valid yet.
    #[error(
        "the peer's certificate has expired or is not valid yet; renew it (a server can \
         reload_tls without a restart), and check both machines' clocks"
    )]
    Expired,
    /// The server asks for a client certificate and the client has none.
    #[error(
        "the server requires a client certificate (mutual TLS) and none was sent; give the \
         client one with ClientTls::identity"
    )]
    ClientCertMissing,
    /// The peer refused this side's certificate (it answered with the TLS
    /// alert named).
    #[error(
        "the peer refused this side's certificate ({alert}); have it issued by a CA the peer \
         trusts, and check that it is still valid"
    )]
    CertRefused {
        /// The TLS alert the peer sent, e.g. `UnknownCA`, `BadCertificate`.
        alert: String,
    },
    /// This side speaks TLS and the peer does not.
    #[error(
        "the peer does not speak TLS; connect with tcp:// instead, or enable TLS on both sides"
    )]
    NotTls,
    /// The peer speaks TLS and this side does not.
    #[error("the peer speaks TLS; connect with tls://host:port and a ClientTls")]
    TlsRequired,
    /// Another TLS failure, in rustls' words.
    #[error("{0}")]
    Other(String),
}

/// Why one request failed. The connection itself may still be open.
///
/// ```
/// # use netsock::{Events, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)]
/// # enum Api { #[request(response = i64)] Sum(Vec<i64>) }
/// use netsock::CallError;
///
/// async fn sum_or_zero(socket: &Socket<Api>, numbers: Vec<i64>) -> i64 {
///     match socket.sum(numbers).await {
///         Ok(total) => total,
///         Err(CallError::Timeout { after }) => {
///             eprintln!("no answer within {after:?}");
///             0
///         }
///         Err(CallError::NoHandler { event }) => {
///             eprintln!("the server does not serve {event}");
///             0
///         }
///         Err(err) => {
///             eprintln!("{err}");
///             0
///         }
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No reply within the timeout; the peer was told to cancel.
    #[error("no reply within {after:?}; the request was cancelled")]
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// The connection closed before the reply arrived.
    #[error("the connection closed before the reply arrived: {0}")]
    Disconnected(DisconnectReason),
    /// The peer has no handler for this request.
    #[error("the peer has no handler for request {event}")]
    NoHandler {
        /// The request's variant name.
        event: String,
    },
    /// The variant sent as a request is a one-way event.
    #[error("{event} is an event, not a request; emit it instead")]
    NotARequest {
        /// The variant name.
        event: String,
    },
    /// The peer's handler panicked.
    #[error("the peer's handler panicked: {message}")]
    HandlerPanicked {
        /// The panic message.
        message: String,
    },
    /// The peer could not decode the request.
    #[error("the peer could not decode the request: {message}")]
    BadRequest {
        /// The peer's decoder error.
        message: String,
    },
    /// The request or its reply is larger than the receiver's frame limit.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes (see max_frame_size)")]
    FrameTooLarge {
        /// Size of the frame body in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The request could not be encoded, or the reply decoded.
    #[error("{0}")]
    Codec(String),
    /// A socket on another node of the cluster failed in a way that cannot
    /// travel between nodes as itself (its connection closed): what it was,
    /// as text.
    #[error("the socket's node reports: {0}")]
    Remote(String),
    /// The peer's stream handler ended its stream with an error: the
    /// error's text.
    #[error("the peer's stream failed: {message}")]
    HandlerFailed {
        /// The handler's error, in words.
        message: String,
    },
    /// A stream broke the protocol: the peer sent an item beyond the credit
    /// granted (the stream is cancelled), or the caller asked for a stream
    /// with a variant that is not one.
    #[error("stream protocol error: {message}")]
    StreamProtocol {
        /// What went wrong.
        message: String,
    },
}

/// What went wrong between this node and the other nodes of its cluster
/// (see [`netsock::adapter`](crate::adapter)).
///
/// ```
/// use netsock::ClusterError;
/// let e = ClusterError::Backlog { capacity: 4096 };
/// assert!(e.to_string().contains("4096"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The pub/sub engine (the [`Driver`](crate::adapter::Driver)) failed
    /// or cannot be reached.
    #[error("the cluster's message broker failed: {0}")]
    Driver(String),
    /// The queue of messages to the other nodes is full (the broker is down
    /// or slower than the emits): this message reached this node's sockets
    /// only, and is counted in
    /// [`ClusterMetrics::dropped`](crate::adapter::ClusterMetrics::dropped).
    #[error("the queue of {capacity} messages to the other nodes is full: this one reached only this node")]
    Backlog {
        /// How many messages the queue holds.
        capacity: usize,
    },
    /// Too many cluster-wide requests are waiting for their replies.
    #[error("too many cluster requests in flight (at most {max})")]
    TooManyRequests {
        /// The limit.
        max: usize,
    },
}

/// Something that went wrong on a socket, that no function call could
/// return, and that leaves the connection open: what the socket's error
/// hook ([`Socket::on_error`](crate::Socket::on_error)) receives. Without a
/// hook, each is logged with `tracing` at warn level (rate-limited).
///
/// It is a type of its own, not [`Error`], because nobody called anything
/// that could fail with it: it happens to the socket while the peer's
/// events arrive, a broadcast passes by, or the socket closes, and only the
/// hook hears of it. So the hook has only these cases to look at, and a
/// function's [`Error`] none of them.
///
/// ```
/// use netsock::{Events, Server, Socket, SocketError};
///
/// #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// enum Api { Log(String), Ping }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> netsock::Result<()> {
/// let io = Server::<Api>::bind("memory://").await?;
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// io.on_connection(move |socket: Socket<Api>| {
///     let tx = tx.clone();
///     socket.on_log(|line| async move { println!("{line}") }); // but no `on_ping`
///     socket.on_error(move |err| {
///         let _ = tx.send(err);
///     });
///     async { Ok(()) }
/// });
/// io.spawn();
///
/// let socket = Socket::<Api>::connect(io.local_addr()).await?;
/// socket.emit_ping().await?;
/// let err = rx.recv().await.unwrap();
/// assert!(matches!(err, SocketError::NoHandler { event: "Ping" }));
/// assert_eq!(err.to_string(), "no handler for incoming event Ping");
/// # io.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// An incoming event could not be decoded (a lenient peer sent a
    /// variant this side does not know, or a broken one). Counted in
    /// [`Traffic::events_invalid`](crate::Traffic::events_invalid).
    #[error("cannot decode an incoming event: {source}")]
    DecodeEvent {
        /// The serializer's error.
        #[source]
        source: CodecError,
    },
    /// An event arrived for which no handler is registered. Counted in
    /// [`Traffic::events_unhandled`](crate::Traffic::events_unhandled).
    #[error("no handler for incoming event {event}")]
    NoHandler {
        /// The event's variant name.
        event: &'static str,
    },
    /// An incoming one-way event was a request variant: the peer must send
    /// it as a request (the mirror of [`CallError::NotARequest`]). Counted
    /// in [`Traffic::events_invalid`](crate::Traffic::events_invalid).
    #[error("{event} is a request, but the peer sent it as a one-way event; it was dropped")]
    RequestAsEvent {
        /// The variant's name.
        event: &'static str,
    },
    /// An event handler panicked.
    #[error("the handler for event {event} panicked: {message}")]
    HandlerPanicked {
        /// The event's variant name.
        event: &'static str,
        /// The panic message.
        message: String,
    },
    /// An event handler returned an error (a handler may return
    /// `Result<(), E>` for any displayable `E`, so that `?` works in it),
    /// or an [`EventStream`](crate::EventStream) was dropped while taking
    /// the event.
    #[error("the handler for event {event} failed: {message}")]
    HandlerFailed {
        /// The event's variant name.
        event: &'static str,
        /// The error, as text.
        message: String,
    },
    /// On a server's socket: a broadcast event was not sent to this socket
    /// (see [`Broadcast`](crate::Broadcast)); the other recipients got it.
    /// Counted in [`Socket::dropped_events`](crate::Socket::dropped_events).
    #[error("event {event} was not sent to this socket: {why}")]
    Missed {
        /// The event's variant name.
        event: &'static str,
        /// Why this socket missed it.
        why: MissReason,
    },
    /// A client socket closed for good with events still in its offline
    /// buffer: they were never sent. Counted in
    /// [`Socket::dropped_events`](crate::Socket::dropped_events).
    #[error("{events} events emitted while offline were never sent: {reason}")]
    Unsent {
        /// How many events.
        events: usize,
        /// Why the socket closed.
        reason: DisconnectReason,
    },
}

/// The differences of a schema mismatch, as the start of its message.
fn said(differences: &[String]) -> String {
    match differences {
        [] => String::new(),
        _ => format!("{}; ", differences.join("; ")),
    }
}

/// Why a socket missed a broadcast event ([`SocketError::Missed`]).
///
/// ```
/// # use netsock::{Events, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Tick(u64) }
/// use netsock::{MissReason, SocketError};
///
/// fn watch_slow_clients(socket: &Socket<Api>) {
///     let id = socket.id();
///     socket.on_error(move |err| match err {
///         SocketError::Missed { event, why: MissReason::QueueFull } => {
///             eprintln!("{id} is not keeping up: missed {event}")
///         }
///         err => eprintln!("{id}: {err}"),
///     });
/// }
///
/// let why = MissReason::FrameTooLarge { size: 2048, max: 1024 };
/// assert_eq!(why.to_string(), "its frame of 2048 bytes exceeds the limit of 1024 bytes this peer takes");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MissReason {
    /// The socket's outgoing queue was full: its peer is not keeping up
    /// (slow, stuck, or gone without closing).
    #[error("the outgoing queue is full")]
    QueueFull,
    /// The event is over the frame limit this socket's peer announced.
    #[error("its frame of {size} bytes exceeds the limit of {max} bytes this peer takes")]
    FrameTooLarge {
        /// Size of the frame body in bytes.
        size: usize,
        /// The peer's limit.
        max: usize,
    },
}

/// Why a connection ended.
///
/// ```
/// # use netsock::{Events, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
/// use netsock::{CloseReason, DisconnectReason};
///
/// fn log_disconnects(socket: &Socket<Api>) {
///     socket.on_disconnect(|reason| async move {
///         match reason {
///             DisconnectReason::ClosedLocally => {} // we closed it
///             DisconnectReason::ClosedByPeer(CloseReason::Shutdown(why)) => {
///                 eprintln!("the server is going away ({why}); reconnecting")
///             }
///             other => eprintln!("disconnected: {other}"),
///         }
///     });
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// This side called `close()` (or the server shut down).
    #[error("closed by this side")]
    ClosedLocally,
    /// The peer closed the connection and said why.
    #[error("closed by the peer: {0}")]
    ClosedByPeer(CloseReason),
    /// The peer went away without a close frame.
    #[error("the peer hung up without closing")]
    PeerHungUp,
    /// The connection broke while a frame from the peer was arriving: a
    /// cut in the network, or a peer that died mid-write. Temporary: a
    /// client reconnects.
    #[error("the connection broke in the middle of a frame ({received} of its {expected} bytes had arrived)")]
    CutMidFrame {
        /// Bytes of the frame, length prefix included, that arrived.
        received: usize,
        /// Bytes the frame would have had.
        expected: usize,
    },
    /// An I/O error on the socket.
    #[error("I/O error ({kind:?}): {message}")]
    Io {
        /// The error kind.
        kind: io::ErrorKind,
        /// The error message.
        message: String,
    },
    /// The peer broke the protocol; it was told why.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Nothing arrived from the peer for this long, not even an answer to a
    /// heartbeat ping: it is gone or stuck.
    #[error("the peer sent nothing for {after:?}, not even a heartbeat answer")]
    HeartbeatTimeout {
        /// The heartbeat interval plus its timeout.
        after: Duration,
    },
    /// The peer sent a frame larger than our limit; it was told why.
    #[error("the peer sent a frame of {size} bytes, over the limit of {max} bytes")]
    FrameTooLarge {
        /// Size of the frame body in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// This side had frames for the peer, and the peer took no byte of
    /// them for this long (see `write_timeout`): it stopped reading.
    #[error("the peer took nothing this side wrote for {after:?}: it stopped reading")]
    WriteTimeout {
        /// The write timeout.
        after: Duration,
    },
    /// A client socket lost its connection and could not get it back: the
    /// attempts ran out, or the server refused for good (see
    /// [`Reconnect`](crate::Reconnect)).
    #[error("gave up reconnecting after {attempts} attempts: {error}")]
    ReconnectFailed {
        /// How many attempts were made.
        attempts: u32,
        /// What the last attempt failed with.
        error: String,
    },
}

impl DisconnectReason {
    /// Whether the transport broke under the connection (rather than
    /// either side ending it): what a recoverable session survives.
    ///
    /// ```
    /// use netsock::DisconnectReason;
    /// assert!(DisconnectReason::PeerHungUp.is_cut());
    /// assert!(!DisconnectReason::ClosedLocally.is_cut());
    /// ```
    pub fn is_cut(&self) -> bool {
        matches!(
            self,
            DisconnectReason::PeerHungUp
                | DisconnectReason::CutMidFrame { .. }
                | DisconnectReason::Io { .. }
                | DisconnectReason::HeartbeatTimeout { .. }
                | DisconnectReason::WriteTimeout { .. }
        )
    }

    pub(crate) fn from_io(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionAborted => DisconnectReason::PeerHungUp,
            kind => DisconnectReason::Io {
                kind,
                message: err.to_string(),
            },
        }
    }
}

impl From<RemoteError> for CallError {
    fn from(err: RemoteError) -> Self {
        match err {
            RemoteError::NoHandler { event } => CallError::NoHandler { event },
            RemoteError::NotARequest { event } => CallError::NotARequest { event },
            RemoteError::HandlerPanicked { message } => CallError::HandlerPanicked { message },
            RemoteError::BadRequest { message } => CallError::BadRequest { message },
            RemoteError::ResponseTooLarge { size, max } => CallError::FrameTooLarge {
                size: size as usize,
                max: max as usize,
            },
            RemoteError::Encode { message } => CallError::Codec(message),
            RemoteError::HandlerFailed { message } => CallError::HandlerFailed { message },
            RemoteError::StreamProtocol { message } => CallError::StreamProtocol { message },
        }
    }
}

impl From<FrameError> for Error {
    fn from(err: FrameError) -> Self {
        match err {
            FrameError::TooLarge { size, max } => Error::FrameTooLarge { size, max },
            FrameError::Encode { what, source } => Error::Encode { what, source },
            FrameError::Header(message) => {
                Error::Protocol(format!("undecodable frame header: {message}"))
            }
            FrameError::Io(err) => Error::Io(err),
            truncated @ FrameError::Truncated { .. } => Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                truncated.to_string(),
            )),
            // `FrameError` is non_exhaustive only for users.
            #[allow(unreachable_patterns)]
            other => Error::Protocol(other.to_string()),
        }
    }
}

impl From<InvalidAddr> for Error {
    fn from(err: InvalidAddr) -> Self {
        Error::InvalidAddr {
            input: err.input,
            reason: err.reason,
        }
    }
}
