//! [`Socket`]: one end of a connection, the same API on the client and the
//! server.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::addr::IntoAddr;
use crate::client::reconnect::{Reconnect, Reconnected};
use crate::client::{Mode, Redialer};
use crate::config::{config_setters, Config};
use crate::conn::calls::Registered;
use crate::conn::event_stream::{subscribe, EventStream};
use crate::conn::handler_table::{event_fn, BoxFuture, Slot};
use crate::conn::serve::encode_reply;
use crate::conn::streams::{item_frames, Dir, ItemStream, Opening, Sending, Upload};
use crate::conn::SocketId;
use crate::conn::{QueueError, Shared};
use crate::error::{
    CallError, CodecError, DisconnectReason, Error, MissReason, Result, SocketError,
};
use crate::events::Events;
use crate::handler::EventOutcome;
use crate::metrics::SocketMetrics;
use crate::registry::{Member, Registry};
use crate::sync::{lock, write};
use crate::transport::{PeerAddr, PeerCert, PeerCred};
use crate::wire::frame::{self, CloseReason, FrameError, Header, RemoteError};

/// One end of a connection: emit events, make requests, handle what the peer
/// sends.
///
/// `In` is the event enum this end receives, `Out` the one it sends; with one
/// type parameter both directions use the same enum. A server's
/// `Server<ClientToServer, ServerToClient>` hands out
/// `Socket<ClientToServer, ServerToClient>`, and the client connects with
/// `Socket<ServerToClient, ClientToServer>`.
///
/// `Socket` is a cheap handle: clone it into handlers and tasks.
///
/// # When handlers run
///
/// Handlers registered right after connecting miss nothing. A server's
/// socket holds incoming events and requests until its `on_connection`
/// future completes. A client's socket takes them from the moment
/// `connect` returns, and for one second it **settles**: an event or
/// request whose handler (or [`once_*`](Socket#events-as-values) call, or
/// [event stream](Socket::events)) is not registered yet waits for it, with
/// everything that arrived after it, in order. So a client that registers
/// its handlers one after another after `connect`, in any order, on any
/// runtime, misses nothing, and one that only listens needs no extra step.
/// After that second, or once you call [`start`](Socket::start), an event
/// with nowhere to go is reported at once. Event handlers then run one at a time, in the
/// order the events arrived; request handlers run concurrently. A handler
/// that finishes without waiting runs in the connection's reader (no task
/// per message); one that waits continues in a task. So, as with any async
/// code, do not block in a handler: it would hold up its connection. An
/// event with no handler, or one that cannot be decoded, goes to the
/// [error hook](Socket::on_error).
///
/// # Events as values
///
/// Besides `on_*` handlers, a socket gives its events as values:
/// [`events`](Socket::events) is a stream of every event that has no
/// handler of its own (`while let Some(event) = events.next().await`), and
/// the generated `once_x()` waits for the next `X` and gives its fields.
/// Both keep the handlers' order and backpressure: an event waits until
/// the stream is read, as it waits for a handler to finish. A handler that
/// needs its socket (to reply to the sender, to read its data) is
/// registered with the generated `on_x_with`, which passes it in, so there
/// is nothing to clone:
///
/// ```
/// # use netsock::{Events, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Sum(Vec<i64>), Total(i64) }
/// async fn examples(socket: Socket<Api>) -> netsock::Result<()> {
///     socket.on_sum_with(|socket, numbers| async move {
///         socket.emit_total(numbers.iter().sum()).await
///     });
///     let total: i64 = socket.once_total().await?;
///     println!("{total}");
///     Ok(())
/// }
/// ```
///
/// # Example
///
/// ```
/// use netsock::{Events, Server, Socket};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Events, Serialize, Deserialize, Debug)]
/// enum Api {
///     #[request(response = i64)]
///     Sum(Vec<i64>),
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> netsock::Result<()> {
/// let io = Server::<Api>::bind(0).await?; // an ephemeral port on 127.0.0.1
/// let addr = io.local_addr().clone();
/// io.on_connection(|socket: Socket<Api>| async move {
///     socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
///     Ok(())
/// });
/// io.spawn();
///
/// let socket = Socket::<Api>::connect(addr).await?;
/// assert_eq!(socket.sum(vec![1, 2, 3]).await?, 6);
/// socket.close().await;
/// io.close().await;
/// # Ok(())
/// # }
/// ```
pub struct Socket<In: Events, Out: Events = In> {
    link: Link<In, Out>,
    timeout: Duration,
    /// The registry of the server this socket was accepted by (dangling on
    /// a client).
    pub(crate) registry: Weak<Registry<Socket<In, Out>>>,
}

/// What a socket talks through.
enum Link<In: Events, Out: Events> {
    /// A server's socket: one connection, for its whole life.
    Accepted(Arc<Shared<In>>),
    /// A client's: the current connection, replaced on reconnect.
    Client(Arc<Redialer<In, Out>>),
}

impl<In: Events, Out: Events> Clone for Link<In, Out> {
    fn clone(&self) -> Self {
        match self {
            Link::Accepted(shared) => Link::Accepted(shared.clone()),
            Link::Client(client) => Link::Client(client.clone()),
        }
    }
}

/// A socket handle that does not keep the socket alive: what a `_with`
/// handler holds, so that a socket's handlers never keep their own socket
/// open.
struct WeakSocket<In: Events, Out: Events> {
    link: WeakLink<In, Out>,
    timeout: Duration,
    registry: Weak<Registry<Socket<In, Out>>>,
}

enum WeakLink<In: Events, Out: Events> {
    Accepted(Weak<Shared<In>>),
    Client(Weak<Redialer<In, Out>>),
}

impl<In: Events, Out: Events> WeakSocket<In, Out> {
    fn upgrade(&self) -> Option<Socket<In, Out>> {
        let link = match &self.link {
            WeakLink::Accepted(shared) => Link::Accepted(shared.upgrade()?),
            WeakLink::Client(client) => Link::Client(client.upgrade()?),
        };
        Some(Socket {
            link,
            timeout: self.timeout,
            registry: self.registry.clone(),
        })
    }
}

impl<In: Events, Out: Events> Clone for Socket<In, Out> {
    fn clone(&self) -> Self {
        Socket {
            link: self.link.clone(),
            timeout: self.timeout,
            registry: self.registry.clone(),
        }
    }
}

impl<In: Events, Out: Events> fmt::Debug for Socket<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conn = self.conn();
        f.debug_struct("Socket")
            .field("id", &conn.id)
            .field("peer", &conn.peer)
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// Options for [`Socket::connect`].
///
/// ```
/// # use netsock::{Socket, Events};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Chat { Hi }
/// # async fn f() -> netsock::Result<()> {
/// let socket = Socket::<Chat>::builder()
///     .request_timeout(std::time::Duration::from_secs(2))
///     .connect("/tmp/chat.sock")
///     .await?;
/// # Ok(()) }
/// ```
pub struct SocketBuilder<In: Events, Out: Events = In> {
    config: Config,
    auth: Option<Vec<u8>>,
    reconnect: Option<Reconnect>,
    /// How long `connect` keeps trying a server that is not up yet.
    wait_for_server: Option<Duration>,
    _types: PhantomData<fn(In, Out)>,
}

impl<In: Events, Out: Events> fmt::Debug for SocketBuilder<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketBuilder")
            .field("config", &self.config)
            .field("reconnect", &self.reconnect)
            .field("wait_for_server", &self.wait_for_server)
            .finish_non_exhaustive()
    }
}

impl<In: Events, Out: Events> SocketBuilder<In, Out> {
    config_setters!();

    /// Asks the server for a recoverable session (see
    /// [`Recovery`](crate::Recovery)): after a cut, the socket resumes it
    /// and nothing is lost or doubled. Off by default. Needs
    /// [`reconnect`](Self::reconnect) (on by default).
    ///
    /// ```
    /// # use netsock::{Events, Recovery, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # async fn f() -> netsock::Result<()> {
    /// let socket = Socket::<Api>::builder()
    ///     .recovery(Recovery::DEFAULT)
    ///     .connect("/tmp/app.sock")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn recovery(mut self, recovery: impl Into<Option<crate::config::Recovery>>) -> Self {
        self.config.recovery = recovery.into();
        self
    }

    /// How to reconnect after losing the connection; the default is
    /// [`Reconnect::default()`] (see [`Reconnect`] for when a socket
    /// reconnects, and what happens to emits and requests meanwhile).
    ///
    /// ```
    /// # use netsock::{Events, Reconnect, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Chat { Hi }
    /// # async fn f() -> netsock::Result<()> {
    /// let socket = Socket::<Chat>::builder()
    ///     .reconnect(Reconnect::new().max_attempts(5).fail_offline())
    ///     .connect("/tmp/chat.sock")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Never reconnect: the first disconnect closes the socket for good, and
    /// [`closed`](Socket::closed) reports its reason.
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Chat { Hi }
    /// # async fn f() -> netsock::Result<()> {
    /// let socket = Socket::<Chat>::builder().no_reconnect().connect(4000).await?;
    /// let why = socket.closed().await; // the server's reason, when it goes away
    /// # Ok(()) }
    /// ```
    pub fn no_reconnect(mut self) -> Self {
        self.reconnect = None;
        self
    }

    /// Lets [`connect`](Self::connect) wait up to `deadline` for a server
    /// that is not listening yet (or is full, or shutting down), trying
    /// again with the reconnect policy's backoff (the default policy's
    /// after [`no_reconnect`](Self::no_reconnect)), instead of failing at
    /// once. Useful when a program starts its client and its server
    /// together. A refusal that trying again cannot mend (another schema
    /// or version, a middleware's no) still fails at once. When the
    /// deadline passes, `connect` fails with [`Error::ServerUnreachable`],
    /// naming the address, the attempts and the last error.
    ///
    /// Off by default: a mistyped address then fails at once instead of
    /// after the deadline.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// use std::time::Duration;
    /// let addr = "memory://starting-later";
    /// // The client starts first...
    /// let client = tokio::spawn(
    ///     Socket::<Api>::builder().wait_for_server(Duration::from_secs(10)).connect(addr),
    /// );
    /// // ...and is served once the server is up.
    /// let io = Server::<Api>::bind(addr).await?;
    /// io.on_connection(|s: Socket<Api>| async move {
    ///     s.on_sum(|n| async move { n.iter().sum::<i64>() });
    ///     Ok(())
    /// });
    /// io.spawn();
    /// let socket = client.await.expect("the task")?;
    /// assert_eq!(socket.sum(vec![1, 2]).await?, 3);
    /// # Ok(()) }
    /// ```
    pub fn wait_for_server(mut self, deadline: Duration) -> Self {
        self.wait_for_server = Some(deadline);
        self
    }

    /// Connects with TLS (the `tls` feature), trusting the roots in `tls`
    /// and presenting its client certificate if it has one (mutual TLS).
    /// Connect to a `tls://host:port` address (or `host:port`); the
    /// server's certificate must be valid for `host`, or for
    /// [`ClientTls::server_name`](crate::ClientTls::server_name). Every
    /// reconnect uses the same settings. A failed TLS handshake is
    /// [`Error::Tls`](crate::Error::Tls), naming the cause.
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// use netsock::{ClientTls, TlsRoots};
    /// async fn connect(ca_pem: &str) -> netsock::Result<Socket<Api>> {
    ///     let tls = ClientTls::with_roots(TlsRoots::from_pem(ca_pem)?);
    ///     Socket::<Api>::builder().tls(tls).connect("tls://svc.internal:7000").await
    /// }
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: crate::tls::ClientTls) -> Self {
        self.config.client_tls = Some(tls);
        self
    }

    /// Bytes sent as they are to the server in the handshake, for its
    /// [middleware](crate::Server::middleware) to authenticate this client;
    /// it reads them with [`Handshake::auth_bytes`](crate::Handshake::auth_bytes).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// async fn connect_with_password(addr: &str) -> netsock::Result<Socket<Api>> {
    ///     Socket::<Api>::builder().auth("open sesame").connect(addr).await
    /// }
    /// ```
    pub fn auth(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.auth = Some(bytes.into());
        self
    }

    /// A value sent to the server in the handshake (postcard-encoded); the
    /// server's middleware decodes it with
    /// [`Handshake::auth`](crate::Handshake::auth).
    ///
    /// Fails with [`Error::Encode`] when the value cannot be encoded.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// #[derive(serde::Serialize)]
    /// struct Login { user: String, pin: u32 }
    ///
    /// async fn log_in(addr: &str) -> netsock::Result<Socket<Api>> {
    ///     let login = Login { user: "alice".into(), pin: 1234 };
    ///     Socket::<Api>::builder().auth_value(&login)?.connect(addr).await
    /// }
    /// ```
    pub fn auth_value<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self> {
        let bytes = postcard::to_stdvec(value).map_err(|source| Error::Encode {
            what: "the auth value",
            source: CodecError::new(source),
        })?;
        self.auth = Some(bytes);
        Ok(self)
    }

    /// Connects and completes the handshake (net-socket.io's `ready`).
    ///
    /// Fails with [`Error::InvalidAddr`], [`Error::Connect`],
    /// [`Error::HandshakeTimeout`], [`Error::SchemaMismatch`],
    /// [`Error::VersionMismatch`] or [`Error::Rejected`].
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::Error;
    ///
    /// async fn connect_or_explain(addr: &str) -> Option<Socket<Api>> {
    ///     match Socket::<Api>::builder().connect(addr).await {
    ///         Ok(socket) => Some(socket),
    ///         Err(Error::Connect { addr, source }) => {
    ///             eprintln!("nothing answers on {addr}: {source}");
    ///             None
    ///         }
    ///         Err(Error::SchemaMismatch { .. }) => {
    ///             eprintln!("the server was built from another `Api`");
    ///             None
    ///         }
    ///         Err(err) => {
    ///             eprintln!("{err}");
    ///             None
    ///         }
    ///     }
    /// }
    /// ```
    pub async fn connect(self, addr: impl IntoAddr) -> Result<Socket<In, Out>> {
        let addr = addr.into_addr()?;
        let timeout = self.config.request_timeout;
        let wait = self.wait_for_server;
        let client = Redialer::connect(addr, self.config, self.auth, self.reconnect, wait).await?;
        Ok(Socket {
            link: Link::Client(client),
            timeout,
            registry: Weak::new(),
        })
    }
}

impl<In: Events, Out: Events> Socket<In, Out> {
    /// Connects to a server and completes the handshake; see
    /// [`SocketBuilder::connect`].
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # async fn f() -> netsock::Result<()> {
    /// let tcp = Socket::<Api>::connect(3000).await?; // 127.0.0.1:3000
    /// let remote = Socket::<Api>::connect("example.com:3000").await?;
    /// let unix = Socket::<Api>::connect("/tmp/my-app.sock").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(addr: impl IntoAddr) -> Result<Self> {
        Self::builder().connect(addr).await
    }

    /// Options for connecting.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # async fn f() -> netsock::Result<()> {
    /// use std::time::Duration;
    /// let socket = Socket::<Api>::builder()
    ///     .request_timeout(Duration::from_secs(1))
    ///     .max_frame_size(64 * 1024)
    ///     .connect("/tmp/my-app.sock")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> SocketBuilder<In, Out> {
        SocketBuilder {
            config: Config::default(),
            auth: None,
            reconnect: Some(Reconnect::default()),
            wait_for_server: None,
            _types: PhantomData,
        }
    }

    pub(crate) fn from_shared(
        shared: Arc<Shared<In>>,
        registry: Weak<Registry<Socket<In, Out>>>,
    ) -> Self {
        let timeout = shared.config.request_timeout;
        Socket {
            link: Link::Accepted(shared),
            timeout,
            registry,
        }
    }

    /// The current connection (on a client, the newest one, live or not).
    pub(crate) fn conn(&self) -> Arc<Shared<In>> {
        match &self.link {
            Link::Accepted(shared) => shared.clone(),
            Link::Client(client) => client.current(),
        }
    }

    /// The connection's id (the same on both ends). A client socket that
    /// [reconnects](Reconnect) gets a new id from the server with each
    /// connection.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// /// On the server, finds the server's handle to a client's connection.
    /// fn on_server(io: &Server<Api>, client: &Socket<Api>) -> Option<Socket<Api>> {
    ///     io.socket(client.id())
    /// }
    /// ```
    pub fn id(&self) -> SocketId {
        self.conn().id
    }

    /// The peer's address (on a client that reconnects, the current
    /// connection's).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::PeerAddr;
    /// fn is_local(socket: &Socket<Api>) -> bool {
    ///     match socket.peer_addr() {
    ///         PeerAddr::Tcp(addr) => addr.ip().is_loopback(),
    ///         _ => true, // a Unix socket
    ///     }
    /// }
    /// ```
    pub fn peer_addr(&self) -> PeerAddr {
        self.conn().peer.clone()
    }

    /// Whether the connection is open; `false` while a client socket is
    /// offline, reconnecting.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// async fn send_if_up(socket: &Socket<Api>) -> netsock::Result<()> {
    ///     if socket.is_connected() {
    ///         socket.emit_log("still here".into()).await?;
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn is_connected(&self) -> bool {
        match &self.link {
            Link::Accepted(shared) => shared.disconnect_reason().is_none(),
            Link::Client(client) => client.is_connected(),
        }
    }

    /// Says that every handler is registered: a client socket stops
    /// settling, so an event with no handler is reported at once instead of
    /// waiting up to a second for one; a server's socket inside
    /// `on_connection` lets its held events through before the handler
    /// returns. Never needed; see [When handlers run](Socket#when-handlers-run).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # async fn f() -> netsock::Result<()> {
    /// let socket = Socket::<Api>::connect("/tmp/my-app.sock").await?;
    /// socket.on_log(|line| async move { println!("{line}") });
    /// // This client handles nothing else: report a `Sum` request at once.
    /// socket.start();
    /// # Ok(()) }
    /// ```
    pub fn start(&self) {
        let conn = self.conn();
        conn.start();
        if let Some(settle) = &conn.settle {
            settle.end();
        }
    }

    /// The incoming events as values, for a `while let` loop, instead of (or
    /// beside) `on_*` handlers: every event that has no handler of its own
    /// comes out of the stream, in arrival order; requests still go to their
    /// handlers. Reading the stream is what lets the next event in, as a
    /// handler finishing does. A second call replaces the first stream,
    /// which then ends. See [`EventStream`].
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Chat { Message { text: String, total: usize }, Bye }
    /// async fn listen(socket: Socket<Chat>) {
    ///     let mut events = socket.events();
    ///     while let Some(event) = events.next().await {
    ///         match event {
    ///             Chat::Message { text, .. } => println!("{text}"),
    ///             Chat::Bye => break,
    ///         }
    ///     }
    /// }
    /// ```
    pub fn events(&self) -> EventStream<In> {
        let conn = self.conn();
        let stream = subscribe(&conn.handlers);
        self.registered(&conn);
        stream
    }

    /// A handler was registered: a settling client socket's waiting events
    /// may have somewhere to go now.
    fn registered(&self, conn: &Shared<In>) {
        if let Some(settle) = &conn.settle {
            settle.registered();
        }
    }

    fn downgrade(&self) -> WeakSocket<In, Out> {
        WeakSocket {
            link: match &self.link {
                Link::Accepted(shared) => WeakLink::Accepted(Arc::downgrade(shared)),
                Link::Client(client) => WeakLink::Client(Arc::downgrade(client)),
            },
            timeout: self.timeout,
            registry: self.registry.clone(),
        }
    }

    /// A handle whose requests wait at most `timeout` for their reply,
    /// instead of the configured default.
    ///
    /// ```
    /// # use netsock::{CallError, Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)]
    /// # enum Api { #[request(response = i64)] Sum(Vec<i64>) }
    /// async fn quick_sum(socket: &Socket<Api>) -> Result<i64, CallError> {
    ///     socket.timeout(std::time::Duration::from_millis(100)).sum(vec![1, 2]).await
    /// }
    /// ```
    pub fn timeout(&self, timeout: Duration) -> Self {
        Socket {
            timeout,
            ..self.clone()
        }
    }

    /// Sends a one-way event. Waits while the outgoing queue is full.
    ///
    /// Fails with [`Error::FrameTooLarge`] (the connection stays open) or
    /// [`Error::Disconnected`].
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// io.on_connection(move |s: Socket<Api>| {
    ///     let tx = tx.clone();
    ///     s.on_log(move |line| {
    ///         let _ = tx.send(line);
    ///         async {}
    ///     });
    ///     async { Ok(()) }
    /// });
    /// let socket = Socket::<Api>::connect(io.local_addr()).await?;
    /// socket.emit(Api::Log("hello".into())).await?;
    /// socket.emit_log("again".into()).await?; // the generated shorthand
    /// assert_eq!(rx.recv().await.unwrap(), "hello");
    /// assert_eq!(rx.recv().await.unwrap(), "again");
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn emit(&self, event: Out) -> Result<()> {
        let name = event.variant_name();
        // Queued at once, as nearly always; else the frame waits for room.
        let Some(frame) = self.offer_event(&event, Mode::Wait)? else {
            return Ok(());
        };
        match &self.link {
            Link::Client(client) => client.send(frame, name).await,
            Link::Accepted(shared) => match shared.queue(&frame).await {
                Ok(()) => Ok(()),
                Err(_) => Err(Error::Disconnected(shared.gone())),
            },
        }
    }

    /// Encodes `event` and queues it if the queue has room now (a client
    /// offline buffers it, or drops a volatile one). The frame is built in
    /// a reused buffer and copied into the queue: no allocation of its own.
    /// Gives the frame when it must wait for room (`Mode::Wait` only);
    /// with the other modes a full queue is `QueueFull`.
    fn offer_event(&self, event: &Out, mode: Mode) -> Result<Option<bytes::Bytes>> {
        let name = event.variant_name();
        // A client online: one look at its link gives the connection to
        // queue on; offline, or when that connection just broke, `offer`
        // routes the frame (to the buffer, or to the next connection).
        let (conn, online) = match &self.link {
            Link::Accepted(shared) => (shared.clone(), true),
            Link::Client(client) => match client.online() {
                Ok(conn) => (conn, true),
                Err(_) => (client.current(), false),
            },
        };
        conn.start();
        frame::with_scratch(|buf| {
            frame::encode_into(buf, &Header::Event, Some(event), conn.max_out)?;
            let try_queue = |conn: &Shared<In>| match mode {
                Mode::Volatile => conn.try_queue_volatile(buf),
                _ => conn.try_queue(buf),
            };
            let queued = match &self.link {
                Link::Accepted(shared) => try_queue(shared),
                Link::Client(client) => match online.then(|| try_queue(&conn)) {
                    Some(Err(QueueError::Closed)) | None => client.offer(buf, name, mode)?,
                    Some(queued) => queued,
                },
            };
            match queued {
                Ok(()) => Ok(None),
                Err(QueueError::Full) if mode == Mode::Wait => {
                    Ok(Some(bytes::Bytes::copy_from_slice(buf)))
                }
                Err(QueueError::Full) => Err(Error::QueueFull { event: name }),
                Err(QueueError::Closed) => Err(Error::Disconnected(conn.gone())),
            }
        })
    }

    /// `try_emit`, or a volatile emit: never waits.
    fn emit_now(&self, event: Out, mode: Mode) -> Result<()> {
        self.offer_event(&event, mode).map(drop)
    }

    /// Sends a one-way event if the outgoing queue has room now, without
    /// waiting; otherwise fails with [`Error::QueueFull`] and sends nothing.
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)] enum Api { Tick(u64) }
    /// # fn f(socket: Socket<Api>) {
    /// match socket.try_emit(Api::Tick(1)) {
    ///     Ok(()) => {}
    ///     Err(netsock::Error::QueueFull { .. }) => { /* the peer is slow: skip this tick */ }
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// # }
    /// ```
    pub fn try_emit(&self, event: Out) -> Result<()> {
        self.emit_now(event, Mode::Try)
    }

    /// A handle whose emits are *volatile* (socket.io's `volatile`): when
    /// the outgoing queue is full the event is dropped and counted in
    /// [`dropped_events`](Socket::dropped_events) instead of waiting. For
    /// data that is stale by the next send, like positions or progress.
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)] enum Api { Position(f64, f64) }
    /// # async fn f(socket: Socket<Api>) -> netsock::Result<()> {
    /// socket.volatile().emit_position(1.0, 2.0).await?; // never waits
    /// # Ok(()) }
    /// ```
    pub fn volatile(&self) -> Volatile<In, Out> {
        Volatile {
            socket: self.clone(),
        }
    }

    /// Sends a request variant and waits for the peer's reply, decoded as `R`.
    ///
    /// Generated stubs (`socket.sum(numbers)`) call this with the variant's
    /// response type. Requests are multiplexed: thousands can be in flight on
    /// one connection. On timeout, or when the returned future is dropped,
    /// the peer is told to cancel the handler.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// # io.on_connection(|s: Socket<Api>| async move {
    /// #     s.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
    /// #     Ok(())
    /// # });
    /// let socket = Socket::<Api>::connect(io.local_addr()).await?;
    /// let total: i64 = socket.request(Api::Sum(vec![1, 2, 3])).await?;
    /// assert_eq!(total, 6);
    /// assert_eq!(socket.sum(vec![4, 5]).await?, 9); // the generated shorthand
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request<R: DeserializeOwned>(
        &self,
        event: Out,
    ) -> std::result::Result<R, CallError> {
        self.check_request(&event, false, false)?;
        self.call_on(
            move |_, id, timeout_ms, max, buf| {
                let header = Header::Request { id, timeout_ms };
                frame::encode_into(buf, &header, Some(&event), max).map(drop)
            },
            None::<fn(&Arc<Shared<In>>, u64)>,
            decode_reply,
        )
        .await
    }

    /// Sends a stream request variant (`#[request(stream = T)]`) and, once
    /// the peer accepted it, gives its items as they come; see
    /// [`ItemStream`](crate::ItemStream). Generated stubs
    /// (`socket.watch(symbol)`) call this. The socket's request timeout
    /// covers the acceptance and the first item.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { #[request(stream = u8)] Digits(u32) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let io = Server::<Api>::bind("memory://").await?;
    /// # io.spawn();
    /// # io.on_connection(|s: Socket<Api>| async move {
    /// #     s.on_digits(|n| async move {
    /// #         futures_util::stream::iter(n.to_string().into_bytes().into_iter().map(|d| d - b'0'))
    /// #     });
    /// #     Ok(())
    /// # });
    /// let socket = Socket::<Api>::connect(io.local_addr()).await?;
    /// let mut digits = socket.request_stream::<u8>(Api::Digits(407)).await?;
    /// assert_eq!(digits.next().await.transpose()?, Some(4));
    /// assert_eq!(digits.next().await.transpose()?, Some(0));
    /// assert_eq!(digits.next().await.transpose()?, Some(7));
    /// assert!(digits.next().await.is_none());
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request_stream<T: DeserializeOwned>(
        &self,
        event: Out,
    ) -> std::result::Result<ItemStream<T>, CallError> {
        self.check_request(&event, true, false)?;
        self.open_stream(event, None::<fn(&Arc<Shared<In>>, u64) -> Sending>)
            .await
    }

    /// Sends a request variant that carries an upload (`#[request(upload =
    /// U, response = R)]`) with the items of `upload`, and waits for the
    /// reply. The items go out right after the request, under the
    /// handler's credit (so a handler that reads slowly holds `upload`),
    /// until `upload` ends (an `Err` item ends it with that error) or the
    /// reply comes. Generated stubs (`socket.store(name, chunks)`) call
    /// this.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { #[request(upload = u32, response = u64)] Total }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let io = Server::<Api>::bind("memory://").await?;
    /// # io.spawn();
    /// io.on_connection(|s: Socket<Api>| async move {
    ///     s.on_total(|mut numbers: netsock::ItemStream<u32>| async move {
    ///         let mut sum = 0;
    ///         while let Some(Ok(n)) = numbers.next().await {
    ///             sum += u64::from(n);
    ///         }
    ///         sum
    ///     });
    ///     Ok(())
    /// });
    /// let socket = Socket::<Api>::connect(io.local_addr()).await?;
    /// let numbers = futures_util::stream::iter(1..=100u32);
    /// let sum: u64 = socket.request_upload::<u64, u32, _, _>(Api::Total, numbers).await?;
    /// assert_eq!(sum, 5050);
    /// assert_eq!(socket.total(futures_util::stream::iter([1, 2])).await?, 3); // generated
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request_upload<R, U, M, S>(
        &self,
        event: Out,
        upload: S,
    ) -> std::result::Result<R, CallError>
    where
        R: DeserializeOwned,
        U: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: crate::handler::StreamItem<U, M>,
    {
        self.check_request(&event, false, true)?;
        // Stops the upload when the reply comes (or the call is dropped).
        let sending = std::sync::Mutex::new(None);
        let slot = &sending;
        self.call_on(
            move |_, id, timeout_ms, max, buf| {
                let header = Header::Request { id, timeout_ms };
                frame::encode_into(buf, &header, Some(&event), max).map(drop)
            },
            Some(move |conn: &Arc<Shared<In>>, id| {
                *lock(slot) = Some(upload_sending::<In, U, M, S>(conn, id, upload));
            }),
            decode_reply,
        )
        .await
    }

    /// Sends a request variant that carries an upload and answers with a
    /// stream (`#[request(upload = U, stream = T)]`): both flow at once,
    /// each under its own credit. The upload goes on until it ends, or
    /// the answer's [`ItemStream`] is dropped.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { #[request(upload = String, stream = usize)] Lengths }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let io = Server::<Api>::bind("memory://").await?;
    /// # io.spawn();
    /// io.on_connection(|s: Socket<Api>| async move {
    ///     // Each word in, its length out, as they come.
    ///     s.on_lengths(|words: netsock::ItemStream<String>| async move {
    ///         futures_util::StreamExt::map(words, |w| w.map(|w| w.len()))
    ///     });
    ///     Ok(())
    /// });
    /// let socket = Socket::<Api>::connect(io.local_addr()).await?;
    /// let words = futures_util::stream::iter(["a", "bb", "ccc"].map(String::from));
    /// let mut lengths = socket.lengths(words).await?;
    /// assert_eq!(lengths.next().await.transpose()?, Some(1));
    /// assert_eq!(lengths.next().await.transpose()?, Some(2));
    /// assert_eq!(lengths.next().await.transpose()?, Some(3));
    /// assert!(lengths.next().await.is_none());
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request_upload_stream<T, U, M, S>(
        &self,
        event: Out,
        upload: S,
    ) -> std::result::Result<ItemStream<T>, CallError>
    where
        T: DeserializeOwned,
        U: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: crate::handler::StreamItem<U, M>,
    {
        self.check_request(&event, true, true)?;
        let start =
            move |conn: &Arc<Shared<In>>, id| upload_sending::<In, U, M, S>(conn, id, upload);
        self.open_stream(event, Some(start)).await
    }

    /// Checks that `event` is a request variant of the kind being made:
    /// answered with a stream or not, carrying an upload or not.
    fn check_request(
        &self,
        event: &Out,
        stream: bool,
        upload: bool,
    ) -> std::result::Result<(), CallError> {
        let index = event.variant_index() as usize;
        let Some(v) = Out::VARIANTS.get(index).filter(|v| v.is_request()) else {
            self.conn().start();
            return Err(CallError::NotARequest {
                event: event.variant_name().to_owned(),
            });
        };
        let call = match (v.stream, v.upload.is_some()) {
            (s, u) if (s, u) == (stream, upload) => return Ok(()),
            (false, false) => "answers with one value: call `request`",
            (true, false) => "answers with a stream: call `request_stream`",
            (false, true) => "carries an upload: call `request_upload`",
            (true, true) => {
                "carries an upload and answers with a stream: call `request_upload_stream`"
            }
        };
        let message = format!("{} {call}, or its generated method", v.name);
        Err(CallError::StreamProtocol { message })
    }

    /// Sends a stream request (its answer's side open before the frame
    /// leaves) and gives its items once accepted; `upload` starts the
    /// upload it carries, once its frame is queued.
    async fn open_stream<T: DeserializeOwned>(
        &self,
        event: Out,
        upload: Option<impl FnOnce(&Arc<Shared<In>>, u64) -> Sending>,
    ) -> std::result::Result<ItemStream<T>, CallError> {
        let deadline = tokio::time::Instant::now().checked_add(self.timeout);
        // Filled by the attempt whose frame leaves (an earlier one's, on a
        // connection that broke first, is replaced).
        let opening = std::sync::Mutex::new(None);
        let sending = std::sync::Mutex::new(None);
        let (slot, sent) = (&opening, &sending);
        self.call_on(
            move |conn, id, timeout_ms, max, buf| {
                *lock(slot) = Opening::new(conn, id).ok();
                let header = Header::Request { id, timeout_ms };
                frame::encode_into(buf, &header, Some(&event), max).map(drop)
            },
            upload
                .map(|start| move |conn: &Arc<Shared<In>>, id| *lock(sent) = Some(start(conn, id))),
            |_| Ok(()),
        )
        .await?;
        let opening = lock(&opening)
            .take()
            .ok_or_else(|| CallError::Disconnected(self.conn().gone()))?;
        let sending = lock(&sending).take();
        Ok(opening.accepted(deadline, self.timeout, sending))
    }

    /// Makes one call: registers a pending id, queues the frame `make`
    /// builds for it (given the id, the timeout in ms and the size limit)
    /// and waits for the reply.
    pub(crate) async fn call<R: DeserializeOwned>(
        &self,
        make: impl Fn(u64, u32, usize) -> std::result::Result<bytes::Bytes, FrameError>,
    ) -> std::result::Result<R, CallError> {
        self.call_with(make, decode_reply).await
    }

    /// [`call`](Self::call), with the reply's payload given to `decode`
    /// (a cluster node passes the bytes on as they are).
    pub(crate) async fn call_with<R>(
        &self,
        make: impl Fn(u64, u32, usize) -> std::result::Result<bytes::Bytes, FrameError>,
        decode: impl FnOnce(bytes::Bytes) -> std::result::Result<R, CallError>,
    ) -> std::result::Result<R, CallError> {
        self.call_on(
            move |_, id, timeout_ms, max, buf| {
                buf.extend_from_slice(&make(id, timeout_ms, max)?);
                Ok(())
            },
            None::<fn(&Arc<Shared<In>>, u64)>,
            decode,
        )
        .await
    }

    /// [`call_with`](Self::call_with), with `make` also given the
    /// connection (a stream request opens its side there first), and
    /// appending the frame to a buffer (the thread's scratch buffer, copied
    /// into the queue: a frame of its own is made only when it must wait
    /// for room). `make` may run more than once: again for the next
    /// connection when the first broke before the frame could leave.
    /// `queued` runs once the frame is queued, given its connection and id
    /// (an upload starts there, its items after the request).
    async fn call_on<R>(
        &self,
        make: impl Fn(
            &Arc<Shared<In>>,
            u64,
            u32,
            usize,
            &mut bytes::BytesMut,
        ) -> std::result::Result<(), FrameError>,
        queued: Option<impl FnOnce(&Arc<Shared<In>>, u64)>,
        decode: impl FnOnce(bytes::Bytes) -> std::result::Result<R, CallError>,
    ) -> std::result::Result<R, CallError> {
        // A client's call made while offline waits for the connection to be
        // back, and so does one that finds its connection broken before its
        // frame could leave: it has not reached the peer, so sending it on
        // the next connection runs it once. Its timeout runs meanwhile.
        let began = tokio::time::Instant::now();
        let (conn, id, frame, alone) = loop {
            let timeout = self.timeout.saturating_sub(began.elapsed());
            // One look-up of the connection serves both the start and the call.
            let conn = match &self.link {
                Link::Accepted(shared) => shared.clone(),
                Link::Client(client) => match client.online_within(timeout).await {
                    Ok(conn) => conn,
                    Err(err) => {
                        self.conn().start();
                        return Err(self.whole_timeout(err));
                    }
                },
            };
            conn.start();
            let registered = match conn.calls.register(timeout) {
                Ok(registered) => registered,
                Err(err) if self.redials_after(&conn) => {
                    tracing::trace!(%err, "call waits for the next connection");
                    continue;
                }
                Err(err) => return Err(err),
            };
            let Registered {
                id,
                start_sweeper,
                alone,
            } = registered;
            if start_sweeper {
                let conn = conn.clone();
                tokio::spawn(async move { crate::conn::calls::sweep(&conn.calls).await });
            }
            let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
            let pushed = frame::with_scratch(|buf| {
                make(&conn, id, timeout_ms, conn.max_out, buf)?;
                Ok(match conn.outbox.try_push_with(buf, alone) {
                    Ok(()) => Ok(()),
                    // Kept, to wait for room (or to learn the end).
                    Err(err) => Err((err, bytes::Bytes::copy_from_slice(buf))),
                })
            })
            .map_err(|e| {
                // Never sent: nothing to cancel.
                conn.calls.forget(id);
                match e {
                    FrameError::TooLarge { size, max } => CallError::FrameTooLarge { size, max },
                    e => CallError::Codec(e.to_string()),
                }
            })?;
            match pushed {
                Err((QueueError::Closed, _)) if self.redials_after(&conn) => {
                    conn.calls.forget(id);
                    continue;
                }
                pushed => break (conn, id, pushed.err().map(|(_, frame)| frame), alone),
            }
        };
        let shared = &*conn;
        let mut pending = PendingCall {
            shared,
            id,
            outcome: Outcome::Waiting,
        };
        let reply = std::future::poll_fn(|cx| shared.calls.poll_reply(id, cx));
        let reply = match frame {
            // Queued. With no other call in flight, no other frame is likely
            // to join this one soon: write it from here rather than wake the
            // writer.
            None => {
                if let Some(queued) = queued {
                    queued(&conn, id);
                }
                if alone {
                    shared.write_through();
                }
                reply.await
            }
            // The queue is full (or closed, then `queue` says so at once).
            // The call's timeout covers waiting for room in a full queue
            // too: a peer that stopped reading cannot hold a call past it.
            Some(frame) => {
                tokio::pin!(reply);
                tokio::select! {
                    pushed = shared.queue(&frame) => match pushed {
                        Ok(()) => {
                            if let Some(queued) = queued {
                                queued(&conn, id);
                            }
                            reply.await
                        }
                        Err(_) => Err(CallError::Disconnected(shared.gone())),
                    },
                    reply = &mut reply => reply,
                }
            }
        };
        pending.outcome = match &reply {
            Err(CallError::Timeout { .. }) => {
                shared.meter.add(|c| &c.calls_timed_out, 1);
                Outcome::TimedOut
            }
            _ => Outcome::Done,
        };
        if let Err(e @ CallError::Timeout { .. }) = reply {
            return Err(self.whole_timeout(e));
        }
        let decoded = reply.and_then(decode);
        match &decoded {
            Ok(_) => shared.meter.add(|c| &c.calls_completed, 1),
            Err(_) => shared.meter.add(|c| &c.calls_failed, 1),
        }
        decoded
    }

    /// Whether `conn` is a client's connection that broke and is being
    /// replaced: then a call that could not go out on it waits for the next.
    fn redials_after(&self, conn: &Arc<Shared<In>>) -> bool {
        match &self.link {
            Link::Client(client) => client.will_reconnect(conn),
            Link::Accepted(_) => false,
        }
    }

    /// A timeout reports the handle's whole timeout, part of which may have
    /// passed waiting for a connection.
    fn whole_timeout(&self, err: CallError) -> CallError {
        match err {
            CallError::Timeout { .. } => CallError::Timeout {
                after: self.timeout,
            },
            err => err,
        }
    }

    /// How many broadcast events this socket missed because its outgoing
    /// queue was full.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// fn check(socket: &Socket<Api>) {
    ///     if socket.dropped_events() > 0 {
    ///         eprintln!("socket {} reads too slowly: it missed broadcasts", socket.id());
    ///     }
    /// }
    /// ```
    pub fn dropped_events(&self) -> u64 {
        self.metrics().traffic.events_dropped
    }

    /// A snapshot of this connection's counters: frames and bytes each way,
    /// calls completed, failed and timed out, requests served, dropped
    /// broadcast events, calls in flight and the outgoing queue's depth.
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # fn f(socket: Socket<Api>) {
    /// let m = socket.metrics();
    /// println!("{} frames out, {} calls waiting", m.traffic.frames_out, m.calls_in_flight);
    /// # }
    /// ```
    pub fn metrics(&self) -> SocketMetrics {
        self.conn().metrics()
    }

    /// On a Unix socket accepted by a server, the client process's uid, gid
    /// and pid as the kernel reports them.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// /// On a Unix socket server: whether the client runs as `uid`.
    /// fn runs_as(socket: &Socket<Api>, uid: u32) -> bool {
    ///     socket.peer_cred().is_some_and(|cred| cred.uid == uid)
    /// }
    /// ```
    pub fn peer_cred(&self) -> Option<PeerCred> {
        self.conn().cred
    }

    /// Over TLS, the certificate the peer presented and this side verified:
    /// on a server doing mutual TLS, the client's; on a client, the
    /// server's. `None` on other transports, and for a client a server
    /// let in without one.
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// fn caller(socket: &Socket<Api>) -> String {
    ///     match socket.peer_cert() {
    ///         Some(cert) => cert.subject().to_owned(),
    ///         None => "anonymous".into(),
    ///     }
    /// }
    /// ```
    pub fn peer_cert(&self) -> Option<std::sync::Arc<PeerCert>> {
        self.conn().cert.clone()
    }

    /// Attaches a value to this socket (one per type; replaces an earlier
    /// one), for every later handler to read with [`data`](Socket::data).
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Chat { Hi }
    /// # fn f(socket: Socket<Chat>) {
    /// struct Nick(String);
    /// socket.set_data(Nick("alice".into()));
    /// assert_eq!(socket.data::<Nick>().unwrap().0, "alice");
    /// # }
    /// ```
    pub fn set_data<T: Send + Sync + 'static>(&self, value: T) {
        let value = Arc::new(value) as Arc<dyn Any + Send + Sync>;
        lock(&self.conn().data).insert(TypeId::of::<T>(), value);
    }

    /// The value of type `T` attached by [`set_data`](Socket::set_data) or by
    /// a [middleware](crate::Server::middleware).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// struct Nick(String);
    ///
    /// fn greeting(socket: &Socket<Api>) -> String {
    ///     match socket.data::<Nick>() {
    ///         Some(nick) => format!("hello, {}", nick.0),
    ///         None => "hello, stranger".to_string(),
    ///     }
    /// }
    /// ```
    pub fn data<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let value = lock(&self.conn().data).get(&TypeId::of::<T>())?.clone();
        value.downcast().ok()
    }

    /// Observes every incoming event and request before its handler runs,
    /// without taking it away (for logging and metrics). One observer; a
    /// second call replaces the first.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// fn count_incoming(socket: &Socket<Api>) -> Arc<AtomicU64> {
    ///     let count = Arc::new(AtomicU64::new(0));
    ///     let counter = count.clone();
    ///     socket.on_any(move |event: &Api| {
    ///         counter.fetch_add(1, Ordering::Relaxed);
    ///         println!("got {}", event.variant_name());
    ///     });
    ///     count
    /// }
    /// ```
    pub fn on_any<F>(&self, observer: F)
    where
        F: Fn(&In) + Send + Sync + 'static,
    {
        write(&self.conn().handlers).any = Some(Arc::new(observer));
    }

    /// Puts this server-side socket in `room` (see
    /// [`Server::to`](crate::Server::to)). Does
    /// nothing on a client socket or after the connection ended.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// fn setup(io: &Server<Api>) {
    ///     io.on_connection(|socket: Socket<Api>| async move {
    ///         socket.join("lobby");
    ///         // Later, to everyone in the lobby: `io.to("lobby").emit_log(..)`.
    ///         Ok(())
    ///     });
    /// }
    /// ```
    pub fn join(&self, room: impl AsRef<str>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.join(self.id(), room.as_ref());
        }
    }

    /// Takes this socket out of `room`; a room with no members is dropped.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// /// Moves a server-side socket from one room to another.
    /// fn move_to(socket: &Socket<Api>, from: &str, to: &str) {
    ///     socket.leave(from);
    ///     socket.join(to);
    /// }
    /// ```
    pub fn leave(&self, room: impl AsRef<str>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.leave(self.id(), room.as_ref());
        }
    }

    /// The rooms this socket is in, sorted.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// fn describe(socket: &Socket<Api>) -> String {
    ///     format!("socket {} is in: {}", socket.id(), socket.rooms().join(", "))
    /// }
    /// ```
    pub fn rooms(&self) -> Vec<String> {
        match self.registry.upgrade() {
            Some(registry) => registry.rooms_of(self.id()),
            None => Vec::new(),
        }
    }

    /// Puts a handler in the table, at `variant`. The index comes from
    /// generated code, so it is in range; if it is not (a hand-written
    /// `Embeds` with a wrong `OFFSET`), the handler is dropped and the
    /// mistake logged, rather than panicking in the user's `on_connection`.
    fn set_slot(&self, variant: u32, slot: Slot<In>) {
        let conn = self.conn();
        let mut handlers = write(&conn.handlers);
        let len = handlers.slots.len();
        match handlers.slots.get_mut(variant as usize) {
            Some(place) => {
                *place = slot;
                drop(handlers);
                self.registered(&conn);
            }
            None => tracing::error!(
                socket = %conn.id,
                variant,
                variants = len,
                "a handler for a variant index out of range was not registered"
            ),
        }
    }

    /// Runs `handler` when the connection ends, with the reason; at once (in
    /// a new task) if the socket is already closed for good. A client socket
    /// that [reconnects](Reconnect) runs it at every disconnect. Several
    /// handlers may be registered; each runs.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// use netsock::{CloseReason, DisconnectReason};
    /// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// io.on_connection(move |s: Socket<Api>| {
    ///     let tx = tx.clone();
    ///     s.on_disconnect(move |reason| {
    ///         let _ = tx.send(reason);
    ///         async {}
    ///     });
    ///     async { Ok(()) }
    /// });
    /// let socket = Socket::<Api>::connect(io.local_addr()).await?;
    /// socket.close().await;
    /// let reason = rx.recv().await.unwrap();
    /// assert_eq!(reason, DisconnectReason::ClosedByPeer(CloseReason::Normal));
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Some(reason) = self.end_reason() {
            tokio::spawn(handler(reason));
            return;
        }
        let f = Arc::new(move |reason| Box::pin(handler(reason)) as BoxFuture<()>);
        write(&self.conn().handlers).disconnect.push(f);
    }

    /// Runs `handler` each time a client socket is connected again after a
    /// disconnect, once the events buffered while offline are queued on the
    /// new connection (see [`Reconnect`]). The place to rebuild per
    /// connection state on the server, such as rooms. Never runs on a
    /// server's sockets.
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Chat { Join(String), Say(String) }
    /// fn rejoin_after_reconnects(socket: &Socket<Chat>) {
    ///     let again = socket.clone();
    ///     socket.on_reconnect(move |event| {
    ///         let socket = again.clone();
    ///         async move {
    ///             println!("reconnected after {} attempts", event.attempts);
    ///             let _ = socket.emit_join("lobby".into()).await;
    ///         }
    ///     });
    /// }
    /// ```
    pub fn on_reconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(Reconnected) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Link::Client(client) = &self.link {
            client.on_reconnect(Arc::new(move |event| {
                Box::pin(handler(event)) as BoxFuture<()>
            }));
        }
    }

    /// Why the socket closed for good, if it has.
    fn end_reason(&self) -> Option<DisconnectReason> {
        match &self.link {
            Link::Accepted(shared) => shared.disconnect_reason(),
            Link::Client(client) => client.end_reason(),
        }
    }

    /// Receives what goes wrong on this socket without ending the
    /// connection and without a caller to return it to (a [`SocketError`]):
    /// an event that cannot be decoded or has no handler, a panicking event
    /// handler, a broadcast event this socket missed
    /// ([`SocketError::Missed`]: its queue was full, or the event was over
    /// this peer's limit), events a client never sent before closing for
    /// good. Without a hook they are logged with `tracing` at warn level.
    /// One hook; a second call replaces the first.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::{MissReason, SocketError};
    /// fn log_errors(socket: &Socket<Api>) {
    ///     let id = socket.id();
    ///     socket.on_error(move |err| match err {
    ///         SocketError::Missed { event, why: MissReason::QueueFull } => {
    ///             eprintln!("{id} is too slow: missed {event}")
    ///         }
    ///         err => eprintln!("{id}: {err}"),
    ///     });
    /// }
    /// ```
    pub fn on_error<F>(&self, hook: F)
    where
        F: Fn(SocketError) + Send + Sync + 'static,
    {
        write(&self.conn().handlers).error = Some(Arc::new(hook));
    }

    /// Waits until the socket is closed for good, and says why. On a
    /// server's socket, inside `on_connection`, lets the held events through.
    ///
    /// A server's socket closes when its connection ends. A client socket
    /// that [reconnects](Reconnect) closes when it is [closed](Socket::close),
    /// or when it stops trying; [`on_disconnect`](Socket::on_disconnect) sees
    /// every connection end.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// use netsock::{CloseReason, DisconnectReason};
    /// let socket = Socket::<Api>::builder().no_reconnect().connect(io.local_addr()).await?;
    /// let server = io.clone();
    /// tokio::spawn(async move { server.close().await });
    /// let reason = socket.closed().await;
    /// assert!(matches!(reason, DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_))));
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn closed(&self) -> DisconnectReason {
        self.conn().start();
        match &self.link {
            Link::Accepted(shared) => shared.ended().await,
            Link::Client(client) => client.closed().await,
        }
    }

    /// Closes the connection after the frames already queued, telling the
    /// peer; waits until it is closed. Pending requests fail with
    /// [`CallError::Disconnected`].
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// use netsock::{CallError, DisconnectReason, Error};
    /// let socket = Socket::<Api>::connect(io.local_addr()).await?;
    /// socket.close().await;
    /// assert!(!socket.is_connected());
    /// let err = socket.emit_log("too late".into()).await.unwrap_err();
    /// assert!(matches!(err, Error::Disconnected(DisconnectReason::ClosedLocally)));
    /// let err = socket.sum(vec![1]).await.unwrap_err();
    /// assert_eq!(err, CallError::Disconnected(DisconnectReason::ClosedLocally));
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) {
        self.close_with(CloseReason::Normal).await;
    }

    /// Waits until none of the peer's requests is being handled here.
    pub(crate) async fn idle(&self) {
        self.conn().idle().await;
    }

    pub(crate) async fn close_with(&self, reason: CloseReason) {
        match &self.link {
            Link::Accepted(shared) => shared.close(reason).await,
            Link::Client(client) => client.close(reason).await,
        }
    }
}

/// Forgets a pending call when the caller stops waiting, and tells the peer.
struct PendingCall<'a, In: Events> {
    shared: &'a Shared<In>,
    id: u64,
    outcome: Outcome,
}

/// How a call ended, as far as its peer needs telling.
enum Outcome {
    /// Still waiting when dropped: the caller gave up.
    Waiting,
    /// Its timeout passed.
    TimedOut,
    /// Its reply arrived, or the connection ended.
    Done,
}

impl<In: Events> Drop for PendingCall<'_, In> {
    fn drop(&mut self) {
        let cancel = match self.outcome {
            // A reply may have arrived just now: then nothing is sent.
            Outcome::Waiting => self.shared.calls.forget(self.id),
            Outcome::TimedOut => true,
            Outcome::Done => false,
        };
        if cancel {
            if let Ok(cancel) =
                frame::encode(&Header::Cancel { id: self.id }, None::<&()>, usize::MAX)
            {
                // Best effort: if the queue is full the reply is simply ignored.
                let _ = self.shared.outbox.try_push(&cancel);
            }
        }
    }
}

/// Decodes a reply's payload as `R`.
fn decode_reply<R: DeserializeOwned>(payload: bytes::Bytes) -> std::result::Result<R, CallError> {
    postcard::from_bytes(&payload).map_err(|e| {
        let ty = std::any::type_name::<R>();
        CallError::Codec(format!("cannot decode the reply as {ty}: {e}"))
    })
}

/// A socket handle whose emits never wait: see [`Socket::volatile`].
pub struct Volatile<In: Events, Out: Events = In> {
    socket: Socket<In, Out>,
}

impl<In: Events, Out: Events> fmt::Debug for Volatile<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Volatile").field(&self.socket).finish()
    }
}

impl<In: Events, Out: Events> Volatile<In, Out> {
    /// Sends `event` if the queue has room; otherwise drops and counts it.
    /// Fails only if the event cannot be encoded or the connection is gone.
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)] enum Api { Tick(u64) }
    /// # fn f(socket: Socket<Api>) -> netsock::Result<()> {
    /// socket.volatile().emit(Api::Tick(7))?;
    /// # Ok(()) }
    /// ```
    pub fn emit(&self, event: Out) -> Result<()> {
        match self.socket.emit_now(event, Mode::Volatile) {
            Err(Error::QueueFull { .. }) => {
                self.socket.conn().meter.add(|c| &c.events_dropped, 1);
                Ok(())
            }
            other => other,
        }
    }
}

impl<In: Events, Out: Events> crate::endpoint::Endpoint for Volatile<In, Out> {
    type In = In;
    type Out = Out;
}

impl<In: Events, Out: Events> crate::endpoint::Emit<Out> for Volatile<In, Out> {
    fn emit(&self, event: Out) -> impl Future<Output = Result<()>> + Send {
        let result = Volatile::emit(self, event);
        async move { result }
    }
}

/// Why a `_with` handler could not run: every handle to its socket was
/// dropped (the connection is ending).
const GONE: &str = "the socket was dropped before its handler could run";

/// How the registry delivers broadcasts to a server's socket.
impl<In: Events, Out: Events> Member for Socket<In, Out> {
    fn max_out(&self) -> usize {
        match &self.link {
            Link::Accepted(shared) => shared.max_out,
            Link::Client(client) => client.current().max_out,
        }
    }

    fn offer(&self, frame: &[u8]) -> std::result::Result<(), QueueError> {
        match &self.link {
            Link::Accepted(shared) => shared.try_queue(frame),
            Link::Client(client) => client.current().try_queue(frame),
        }
    }

    fn missed(&self, event: &'static str, why: MissReason) {
        let conn = self.conn();
        conn.meter.add(|c| &c.events_dropped, 1);
        conn.report(SocketError::Missed { event, why });
    }
}

impl<In: Events, Out: Events> crate::endpoint::Endpoint for Socket<In, Out> {
    type In = In;
    type Out = Out;
}

impl<In: Events, Out: Events> crate::endpoint::Emit<Out> for Socket<In, Out> {
    fn emit(&self, event: Out) -> impl std::future::Future<Output = Result<()>> + Send {
        Socket::emit(self, event)
    }
}

impl<In: Events, Out: Events> crate::endpoint::Call<Out> for Socket<In, Out> {
    fn request<R: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        event: Out,
    ) -> impl std::future::Future<Output = std::result::Result<R, CallError>> + Send {
        Socket::request(self, event)
    }
}

impl<In: Events, Out: Events> crate::conn::streams::CallStream<Out> for Socket<In, Out> {
    fn request_stream<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        event: Out,
    ) -> impl std::future::Future<Output = std::result::Result<ItemStream<T>, CallError>> + Send
    {
        Socket::request_stream(self, event)
    }

    fn request_upload<R, U, M, S>(
        &self,
        event: Out,
        upload: S,
    ) -> impl std::future::Future<Output = std::result::Result<R, CallError>> + Send
    where
        R: DeserializeOwned + Send + 'static,
        U: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: crate::handler::StreamItem<U, M>,
    {
        Socket::request_upload(self, event, upload)
    }

    fn request_upload_stream<T, U, M, S>(
        &self,
        event: Out,
        upload: S,
    ) -> impl std::future::Future<Output = std::result::Result<ItemStream<T>, CallError>> + Send
    where
        T: DeserializeOwned + Send + 'static,
        U: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: crate::handler::StreamItem<U, M>,
    {
        Socket::request_upload_stream(self, event, upload)
    }
}

/// Starts sending `upload` as the upload of request `id` on `conn`.
fn upload_sending<In: Events, U, M, S>(conn: &Arc<Shared<In>>, id: u64, upload: S) -> Sending
where
    U: Serialize + 'static,
    M: 'static,
    S: futures_util::Stream + Send + 'static,
    S::Item: crate::handler::StreamItem<U, M>,
{
    let items = item_frames::<U, M, S>(upload, Dir::Upload, id, conn.max_out);
    Sending::start(conn, id, items)
}

/// What a handler registered through a socket that was dropped meanwhile
/// answers.
fn gone() -> RemoteError {
    RemoteError::HandlerPanicked {
        message: GONE.to_owned(),
    }
}

/// The upload a request carries, for its handler.
fn uploaded<U>(upload: Option<Upload>) -> std::result::Result<ItemStream<U>, RemoteError> {
    upload
        .map(Upload::items)
        .ok_or_else(|| RemoteError::StreamProtocol {
            message: "the request's upload could not be opened (the connection is ending)"
                .to_owned(),
        })
}

impl<In: Events, Out: Events> Socket<In, Out> {
    /// Registers a request handler: `handler` gives the reply's future, or
    /// why it cannot run.
    fn set_request<R, Fut>(
        &self,
        variant: u32,
        handler: impl Fn(In, Option<Upload>) -> std::result::Result<Fut, RemoteError>
            + Send
            + Sync
            + 'static,
    ) where
        R: Serialize + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let f =
            Arc::new(
                move |value: In, id: u64, max: usize, upload| match handler(value, upload) {
                    Ok(reply) => {
                        Box::pin(async move { encode_reply(id, &reply.await, max) }) as BoxFuture<_>
                    }
                    Err(error) => Box::pin(std::future::ready(crate::conn::serve::failure(
                        id, error, max,
                    ))) as BoxFuture<_>,
                },
            );
        self.set_slot(variant, Slot::Request(f));
    }

    /// Registers a stream request handler: `handler` gives the future of
    /// its stream, or why it cannot run.
    fn set_stream<T, M, S, Fut>(
        &self,
        variant: u32,
        handler: impl Fn(In, Option<Upload>) -> std::result::Result<Fut, RemoteError>
            + Send
            + Sync
            + 'static,
    ) where
        T: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: crate::handler::StreamItem<T, M>,
        Fut: Future<Output = S> + Send + 'static,
    {
        let f =
            Arc::new(
                move |value: In, id: u64, max: usize, upload| match handler(value, upload) {
                    Ok(stream) => Box::pin(async move {
                        item_frames::<T, M, S>(stream.await, Dir::Answer, id, max)
                    }) as BoxFuture<_>,
                    Err(error) => {
                        let failed = futures_util::stream::iter([Err(error)]);
                        Box::pin(std::future::ready(
                            Box::pin(failed) as crate::conn::streams::ItemFrames
                        )) as BoxFuture<_>
                    }
                },
            );
        self.set_slot(variant, Slot::Stream(f));
    }
}

impl<In: Events, Out: Events> crate::conn::streams::ReceiveUpload<In> for Socket<In, Out> {
    fn on_upload<U, R, F, Fut>(&self, variant: u32, handler: F)
    where
        R: Serialize + 'static,
        F: Fn(In, ItemStream<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        self.set_request(variant, move |value, upload| {
            Ok(handler(value, uploaded(upload)?))
        });
    }

    fn on_upload_with<U, R, F, Fut>(&self, variant: u32, handler: F)
    where
        R: Serialize + 'static,
        F: Fn(Self, In, ItemStream<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let me = self.downgrade();
        self.set_request(variant, move |value, upload| {
            let socket = me.upgrade().ok_or_else(gone)?;
            Ok(handler(socket, value, uploaded(upload)?))
        });
    }

    fn on_upload_stream<U, T, M, S, F, Fut>(&self, variant: u32, handler: F)
    where
        T: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: crate::handler::StreamItem<T, M>,
        F: Fn(In, ItemStream<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static,
    {
        self.set_stream::<T, M, S, Fut>(variant, move |value, upload| {
            Ok(handler(value, uploaded(upload)?))
        });
    }

    fn on_upload_stream_with<U, T, M, S, F, Fut>(&self, variant: u32, handler: F)
    where
        T: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: crate::handler::StreamItem<T, M>,
        F: Fn(Self, In, ItemStream<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static,
    {
        let me = self.downgrade();
        self.set_stream::<T, M, S, Fut>(variant, move |value, upload| {
            let socket = me.upgrade().ok_or_else(gone)?;
            Ok(handler(socket, value, uploaded(upload)?))
        });
    }
}

impl<In: Events, Out: Events> crate::endpoint::Receive<In> for Socket<In, Out> {
    fn on_stream<T, M, S, F, Fut>(&self, variant: u32, handler: F)
    where
        T: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: crate::handler::StreamItem<T, M>,
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static,
    {
        self.set_stream::<T, M, S, Fut>(variant, move |value, _| Ok(handler(value)));
    }

    fn on_stream_with<T, M, S, F, Fut>(&self, variant: u32, handler: F)
    where
        T: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: crate::handler::StreamItem<T, M>,
        F: Fn(Self, In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static,
    {
        let me = self.downgrade();
        self.set_stream::<T, M, S, Fut>(variant, move |value, _| {
            Ok(handler(me.upgrade().ok_or_else(gone)?, value))
        });
    }

    fn on_event<F, Fut>(&self, variant: u32, handler: F)
    where
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: EventOutcome,
    {
        let f = event_fn(move |value: In| {
            let done = handler(value);
            async move { done.await.into_outcome() }
        });
        self.set_slot(variant, Slot::Event(f));
    }

    fn on_event_with<F, Fut>(&self, variant: u32, handler: F)
    where
        F: Fn(Self, In) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: EventOutcome,
    {
        let me = self.downgrade();
        let f = event_fn(move |value: In| {
            let done = me.upgrade().map(|socket| handler(socket, value));
            async move {
                match done {
                    Some(done) => done.await.into_outcome(),
                    None => Err(GONE.to_owned()),
                }
            }
        });
        self.set_slot(variant, Slot::Event(f));
    }

    fn on_request_with<R, F, Fut>(&self, variant: u32, handler: F)
    where
        R: Serialize + 'static,
        F: Fn(Self, In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let me = self.downgrade();
        self.set_request(variant, move |value, _| {
            Ok(handler(me.upgrade().ok_or_else(gone)?, value))
        });
    }

    fn once_event(&self, variant: u32) -> impl Future<Output = Result<In>> + Send {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let conn = self.conn();
        write(&conn.handlers).add_once(variant, tx);
        self.registered(&conn);
        let socket = self.clone();
        async move {
            match rx.await {
                Ok(value) => Ok(value),
                Err(_) => Err(Error::Disconnected(
                    socket
                        .end_reason()
                        .unwrap_or(DisconnectReason::ClosedLocally),
                )),
            }
        }
    }

    fn on_request<R, F, Fut>(&self, variant: u32, handler: F)
    where
        R: Serialize + 'static,
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        self.set_request(variant, move |value, _| Ok(handler(value)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Receive;
    use crate::events::Variant;
    use crate::server::Server;
    use crate::sync::read;

    #[derive(Serialize, serde::Deserialize)]
    enum Api {
        Ping,
    }

    impl Events for Api {
        const VARIANTS: &'static [Variant] = &[Variant::event("Ping")];
        const SCHEMA: &'static str = "Api{Ping}";
        fn variant_index(&self) -> u32 {
            0
        }
        fn variant_defs(_: &mut crate::schema::Types) -> Vec<crate::schema::VariantDef> {
            let ping = crate::schema::VariantDef::event("Ping", crate::schema::Fields::Unit);
            vec![ping]
        }
    }

    /// Registering by an index out of range (a hand-written `Embeds` with
    /// a wrong offset could do it) registers nothing, and does not panic.
    #[tokio::test]
    async fn a_variant_index_out_of_range_registers_nothing() {
        let io = Server::<Api>::bind("memory://").await.unwrap();
        io.spawn();
        let socket = Socket::<Api>::connect(io.local_addr()).await.unwrap();
        socket.on_event(1, |_: Api| async {});
        socket.on_request(u32::MAX, |_: Api| async { 1u8 });
        assert_eq!(read(&socket.conn().handlers).slots.len(), 1);
        assert!(matches!(read(&socket.conn().handlers).slot(0), Slot::Empty));
        socket.on_event(0, |_: Api| async {});
        assert!(matches!(
            read(&socket.conn().handlers).slot(0),
            Slot::Event(_)
        ));
        socket.close().await;
        io.close().await;
    }
}
