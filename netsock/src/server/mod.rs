//! [`Server`]: listens, handshakes, and keeps the table of connected sockets.

pub(crate) mod cluster;
pub(crate) mod middleware;
pub(crate) mod running;
pub(crate) mod sessions;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::adapter::{Adapter, Cluster};
use crate::addr::{Addr, IntoAddr};
use crate::broadcast::Broadcast;
use crate::config::{config_setters, Config, SocketMode};
use crate::conn::handler_table::{call_caught, BoxFuture};
use crate::conn::hello;
use crate::conn::session::{ReplayError, Session};
use crate::conn::SocketId;
use crate::conn::{Carry, Handshaken, Shared};
use crate::error::DisconnectReason;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::metrics::{Counters, Meter, RejectCounters, ServerMetrics, SocketMetrics};
use crate::registry::Registry;
use crate::selector::{Except, Selector};
use crate::server::middleware::MiddlewareFn;
use crate::server::middleware::{Handshake, Refusal};
use crate::server::sessions::Sessions;
use crate::socket::Socket;
use crate::sync::{lock, write};
use crate::throttle::warn_throttled;
use crate::transport::{Accepted, Listener, SocketFile};
use crate::wire::frame::{
    self, CloseReason, Header, LostReason, RejectReason, Resumption, SessionAsk, SessionGrant,
    SessionToken,
};

type ConnectionFn<In, Out> = Arc<dyn Fn(Socket<In, Out>) -> BoxFuture<Result<()>> + Send + Sync>;

pub(crate) struct Inner<In: Events, Out: Events> {
    local_addr: Addr,
    /// Shared with every connection (a copy each would cost an idle
    /// connection a few hundred bytes).
    config: Arc<Config>,
    listener: Mutex<Option<Listener>>,
    socket_file: Mutex<Option<SocketFile>>,
    /// Connected sockets and their rooms.
    registry: Arc<Registry<Socket<In, Out>>>,
    on_connection: RwLock<Option<ConnectionFn<In, Out>>>,
    middleware: RwLock<Vec<MiddlewareFn>>,
    counters: Arc<Counters>,
    rejects: RejectCounters,
    connections_total: AtomicU64,
    accept_failures: AtomicU64,
    /// One permit per connection in its handshake (`max_handshakes`).
    handshakes: Arc<Semaphore>,
    /// Recoverable sessions, by token.
    sessions: Sessions,
    next_id: AtomicU64,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// True while `run` holds the listener.
    accepting: tokio::sync::watch::Sender<bool>,
    /// A TLS listener's certificates, replaced by `reload_tls`.
    #[cfg(feature = "tls")]
    tls: Option<crate::transport::tls::Acceptor>,
}

/// The listener while `run` accepts on it; says when it is closed.
pub(crate) struct Accepting {
    listener: Option<Listener>,
    flag: tokio::sync::watch::Sender<bool>,
}

impl Drop for Accepting {
    fn drop(&mut self) {
        // Closed first, then said: `shutdown` returns with the port free.
        drop(self.listener.take());
        self.flag.send_replace(false);
    }
}

/// A server: accepts connections on a TCP port or a Unix socket path and
/// hands each one, once its handshake is done, to the `on_connection` handler.
///
/// `In` is what clients send, `Out` what the server sends (one type parameter:
/// both the same), like socket.io's `Server<ClientToServerEvents,
/// ServerToClientEvents>`. `Server` is a cheap handle: clone it into handlers.
///
/// ```
/// use netsock::{Events, Server, Socket};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Events, Serialize, Deserialize, Debug)]
/// enum Chat {
///     Message { text: String, total_clients: usize },
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> netsock::Result<()> {
/// let io = Server::<Chat>::bind(0).await?;
/// let clients = io.clone();
/// io.on_connection(move |socket: Socket<Chat>| {
///     let total_clients = clients.sockets().len();
///     async move {
///         socket.emit_message("hello".into(), total_clients).await?;
///         Ok(())
///     }
/// });
/// io.spawn();
///
/// let socket = Socket::<Chat>::connect(io.local_addr()).await?;
/// let (tx, rx) = tokio::sync::oneshot::channel();
/// let tx = std::sync::Mutex::new(Some(tx));
/// socket.on_message(move |text, total| {
///     let tx = tx.lock().unwrap().take();
///     async move { tx.map(|tx| tx.send((text, total))); }
/// });
/// socket.start();
/// assert_eq!(rx.await.unwrap(), ("hello".to_string(), 1));
/// io.close().await;
/// # Ok(())
/// # }
/// ```
pub struct Server<In: Events, Out: Events = In> {
    inner: Arc<Inner<In, Out>>,
}

impl<In: Events, Out: Events> Clone for Server<In, Out> {
    fn clone(&self) -> Self {
        Server {
            inner: self.inner.clone(),
        }
    }
}

impl<In: Events, Out: Events> fmt::Debug for Server<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.inner.local_addr)
            .field("sockets", &self.inner.registry.len())
            .finish()
    }
}

/// Options for [`Server::bind`].
///
/// ```
/// # use netsock::{Server, Events};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Chat { Hi }
/// # async fn f() -> netsock::Result<()> {
/// let io = Server::<Chat>::builder().max_frame_size(64 * 1024).bind(3000).await?;
/// # Ok(()) }
/// ```
pub struct ServerBuilder<In: Events, Out: Events = In> {
    config: Config,
    adapter: Option<Adapter>,
    _types: PhantomData<fn(In, Out)>,
}

impl<In: Events, Out: Events> fmt::Debug for ServerBuilder<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("adapter", &self.adapter)
            .finish()
    }
}

impl<In: Events, Out: Events> ServerBuilder<In, Out> {
    config_setters!();

    /// The sessions this server grants to the clients that ask (see
    /// [`Recovery`](crate::Recovery)): how long it keeps one after a cut,
    /// and how much it keeps for each. On by default, with
    /// [`Recovery::DEFAULT`](crate::Recovery::DEFAULT); `None` grants none
    /// (a client that asks then connects without).
    ///
    /// ```
    /// # use netsock::{Events, Recovery, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// use std::time::Duration;
    /// let brief = Server::<Api>::builder().recovery(Recovery::DEFAULT.with_window(Duration::from_secs(10)));
    /// let none = Server::<Api>::builder().recovery(None);
    /// ```
    pub fn recovery(mut self, recovery: impl Into<Option<crate::config::Recovery>>) -> Self {
        self.config.recovery = recovery.into();
        self
    }

    /// The default [`max_connections`](Self::max_connections): 10,000.
    ///
    /// ```
    /// # use netsock::{Events, ServerBuilder};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// assert_eq!(ServerBuilder::<Api>::DEFAULT_MAX_CONNECTIONS, 10_000);
    /// ```
    pub const DEFAULT_MAX_CONNECTIONS: usize = crate::config::defaults::MAX_CONNECTIONS;

    /// The most connections open at once
    /// ([`DEFAULT_MAX_CONNECTIONS`](Self::DEFAULT_MAX_CONNECTIONS), 10,000);
    /// a client beyond it is refused with
    /// [`RejectReason::Other`] saying the server is full, and counted in
    /// [`Rejects::full`](crate::Rejects::full).
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// let builder = Server::<Api>::builder().max_connections(100);
    /// ```
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.config.max_connections = connections;
        self
    }

    /// The default [`max_handshakes`](Self::max_handshakes): 256.
    ///
    /// ```
    /// # use netsock::{Events, ServerBuilder};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// assert_eq!(ServerBuilder::<Api>::DEFAULT_MAX_HANDSHAKES, 256);
    /// ```
    pub const DEFAULT_MAX_HANDSHAKES: usize = crate::config::defaults::MAX_HANDSHAKES;

    /// The most connections in their handshake at once
    /// ([`DEFAULT_MAX_HANDSHAKES`](Self::DEFAULT_MAX_HANDSHAKES), 256; at
    /// least 1).
    /// While that many strangers have connected and not yet finished their
    /// handshake, the server accepts no more: new connections wait in the
    /// operating system's listen backlog until one finishes or its
    /// [handshake timeout](Self::handshake_timeout) passes. Together with
    /// [`max_handshake_size`](Self::max_handshake_size) this bounds the
    /// memory unauthenticated peers can pin (see the book's Reliability
    /// chapter for the figures).
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// let builder = Server::<Api>::builder().max_handshakes(64);
    /// ```
    pub fn max_handshakes(mut self, handshakes: usize) -> Self {
        self.config.max_handshakes = handshakes.max(1);
        self
    }

    /// The default [`max_handshake_size`](Self::max_handshake_size): 4 KiB,
    /// a `Hello` (about 30 bytes) with room for a token.
    ///
    /// ```
    /// # use netsock::{Events, ServerBuilder};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// assert_eq!(ServerBuilder::<Api>::DEFAULT_MAX_HANDSHAKE_SIZE, 4 * 1024);
    /// ```
    pub const DEFAULT_MAX_HANDSHAKE_SIZE: usize = crate::config::defaults::MAX_HANDSHAKE_SIZE;

    /// The largest frame a peer may send before its handshake is done
    /// ([`DEFAULT_MAX_HANDSHAKE_SIZE`](Self::DEFAULT_MAX_HANDSHAKE_SIZE),
    /// 4 KiB). Its first frame is a `Hello`: about 30 bytes plus
    /// the `auth` payload given to
    /// [`SocketBuilder::auth`](crate::SocketBuilder::auth). Raise it for
    /// larger tokens; a bigger first frame is refused as
    /// [`RejectReason::BadMagic`] and counted in
    /// [`Rejects::bad_handshake`](crate::Rejects::bad_handshake). At most
    /// [`max_frame_size`](Self::max_frame_size).
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// // Clients authenticate with certificates of up to 16 KiB.
    /// let builder = Server::<Api>::builder().max_handshake_size(16 * 1024);
    /// ```
    pub fn max_handshake_size(mut self, bytes: usize) -> Self {
        self.config.max_handshake_size = bytes.clamp(64, u32::MAX as usize);
        self
    }

    /// Who may connect to the Unix socket: the permissions of its file
    /// (default [`SocketMode::DEFAULT`](crate::SocketMode::DEFAULT),
    /// [`OWNER`](crate::SocketMode::OWNER), `0o600`: only the owner's
    /// processes may connect). For example
    /// [`SocketMode::OWNER_AND_GROUP`](crate::SocketMode::OWNER_AND_GROUP)
    /// lets a service account's group in;
    /// [`SocketMode::from_bits`](crate::SocketMode::from_bits) takes any
    /// other mode. The file never exists with looser permissions, even
    /// briefly. Ignored for TCP.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// use netsock::SocketMode;
    /// let builder = Server::<Api>::builder().socket_mode(SocketMode::OWNER_AND_GROUP);
    /// ```
    pub fn socket_mode(mut self, mode: SocketMode) -> Self {
        self.config.socket_mode = mode.bits();
        self
    }

    /// Makes the server a node of a cluster: broadcasts, requests to
    /// rooms and the `fetch_*` queries span every node (see
    /// [`netsock::adapter`](crate::adapter)). Binding then first gets a
    /// node number from the adapter's driver, and fails with
    /// [`Error::Cluster`] if the engine cannot be reached.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// use netsock::adapter::{Adapter, MemoryBus};
    /// # async fn f() -> netsock::Result<()> {
    /// let io = Server::<Api>::builder().adapter(Adapter::new(MemoryBus::new())).bind(0).await?;
    /// # Ok(()) }
    /// ```
    pub fn adapter(mut self, adapter: Adapter) -> Self {
        self.adapter = Some(adapter);
        self
    }

    /// Serves TLS (the `tls` feature): the server presents `tls`'s
    /// certificate and, with [`ServerTls::client_auth`](crate::ServerTls::client_auth),
    /// requires clients to present one of theirs (mutual TLS). Bind a
    /// `host:port` or `tls://host:port` address; the server's
    /// [`local_addr`](Server::local_addr) is then a `tls://` one. A client
    /// whose TLS handshake fails (a plaintext one, one without an accepted
    /// certificate) is counted in [`Rejects::tls`](crate::Rejects::tls),
    /// and the TLS handshake counts against the
    /// [handshake timeout](Self::handshake_timeout).
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    /// # let (cert_pem, key_pem) = (c.cert.pem(), c.key_pair.serialize_pem());
    /// use netsock::ServerTls;
    /// let io = Server::<Api>::builder()
    ///     .tls(ServerTls::from_pem(&cert_pem, &key_pem)?)
    ///     .bind("127.0.0.1:0")
    ///     .await?;
    /// assert!(io.local_addr().to_string().starts_with("tls://127.0.0.1:"));
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.config.server_tls = Some(tls);
        self
    }

    /// Binds the address; see [`Server::bind`].
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// async fn serve_group(path: &std::path::Path) -> netsock::Result<Server<Api>> {
    ///     // Members of the socket file's group may connect too.
    ///     let mode = netsock::SocketMode::OWNER_AND_GROUP;
    ///     Server::<Api>::builder().socket_mode(mode).bind(path).await
    /// }
    /// ```
    pub async fn bind(self, addr: impl IntoAddr) -> Result<Server<In, Out>> {
        let addr = addr.into_addr()?;
        let cluster = match self.adapter {
            Some(adapter) => Some(Cluster::connect(adapter).await?),
            None => None,
        };
        // Ids carry the node's number, so they are unique in the cluster.
        let first_id = cluster
            .as_ref()
            .map_or(0, |c| u64::from(c.node().0) << SocketId::NODE_SHIFT)
            + 1;
        let (listener, local_addr, socket_file) = Listener::bind(&addr, &self.config).await?;
        tracing::info!(addr = %local_addr, "netsock server listening");
        let max_handshakes = self.config.max_handshakes;
        let request_timeout = self.config.request_timeout;
        let server = Server {
            inner: Arc::new(Inner {
                #[cfg(feature = "tls")]
                tls: listener.tls_acceptor(),
                local_addr,
                config: Arc::new(self.config),
                listener: Mutex::new(Some(listener)),
                socket_file: Mutex::new(socket_file),
                registry: Arc::new(Registry::new(cluster.clone())),
                on_connection: RwLock::new(None),
                middleware: RwLock::new(Vec::new()),
                counters: Arc::default(),
                rejects: RejectCounters::default(),
                connections_total: AtomicU64::new(0),
                accept_failures: AtomicU64::new(0),
                handshakes: Arc::new(Semaphore::new(max_handshakes)),
                sessions: Sessions::default(),
                next_id: AtomicU64::new(first_id),
                shutdown: tokio::sync::watch::Sender::new(false),
                accepting: tokio::sync::watch::Sender::new(false),
            }),
        };
        if let Some(cluster) = cluster {
            let node = cluster::ServerNode {
                inner: Arc::downgrade(&server.inner),
            };
            cluster.start(Arc::new(node), request_timeout).await?;
        }
        Ok(server)
    }
}

impl<In: Events, Out: Events> Server<In, Out> {
    /// Listens on `addr`: a port (on 127.0.0.1), `"host:port"`, or a Unix
    /// socket path; see [`Addr`]. Connections queue until [`run`](Server::run).
    ///
    /// A Unix socket file left by a dead server is replaced; one that a live
    /// server answers on gives [`Error::AddrInUse`]; a path that is not a
    /// socket is never touched. The file is removed by [`close`](Server::close)
    /// or when the last handle to the server is dropped.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # async fn f() -> netsock::Result<()> {
    /// let local = Server::<Api>::bind(3000).await?; // 127.0.0.1:3000
    /// let public = Server::<Api>::bind("0.0.0.0:3001").await?; // every interface
    /// let unix = Server::<Api>::bind("/tmp/my-app.sock").await?;
    /// # Ok(()) }
    /// ```
    pub async fn bind(addr: impl IntoAddr) -> Result<Self> {
        Self::builder().bind(addr).await
    }

    /// Options for binding.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # async fn f() -> netsock::Result<()> {
    /// let io = Server::<Api>::builder()
    ///     .request_timeout(std::time::Duration::from_secs(2))
    ///     .max_frame_size(64 * 1024)
    ///     .bind(0)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> ServerBuilder<In, Out> {
        ServerBuilder {
            config: Config {
                recovery: Some(crate::config::Recovery::DEFAULT),
                ..Config::default()
            },
            adapter: None,
            _types: PhantomData,
        }
    }

    /// Replaces a TLS server's certificates (and client roots) while it
    /// runs: connections from now on get the new ones; open connections
    /// keep theirs. Fails with [`Error::TlsConfig`] when `tls` is unusable
    /// (the old certificates stay), or when this server does not serve TLS.
    ///
    /// ```
    /// # fn cert() -> (String, String) {
    /// #     let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    /// #     (c.cert.pem(), c.key_pair.serialize_pem())
    /// # }
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// use netsock::ServerTls;
    /// let (cert_pem, key_pem) = cert();
    /// let io = Server::<Api>::builder().tls(ServerTls::from_pem(cert_pem, key_pem)?).bind(0).await?;
    /// // Later, e.g. when the files change or on SIGHUP:
    /// let (renewed_cert, renewed_key) = cert();
    /// io.reload_tls(ServerTls::from_pem(renewed_cert, renewed_key)?)?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn reload_tls(&self, tls: crate::tls::ServerTls) -> Result<()> {
        let Some(acceptor) = &self.inner.tls else {
            return Err(Error::TlsConfig {
                reason: format!(
                    "the server on {} does not serve TLS; give it a certificate with ServerBuilder::tls",
                    self.inner.local_addr
                ),
            });
        };
        acceptor.replace(tls.build()?);
        tracing::info!(addr = %self.inner.local_addr, "TLS certificates replaced");
        Ok(())
    }

    /// The address the server listens on, with the actual port when port 0
    /// was asked for.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # async fn f() -> netsock::Result<()> {
    /// let io = Server::<Api>::bind(0).await?;
    /// let port = io.local_addr().port().unwrap(); // the port the OS chose
    /// println!("listening on {}", io.local_addr()); // tcp://127.0.0.1:PORT
    /// let socket = Socket::<Api>::connect(port).await?;
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> &Addr {
        &self.inner.local_addr
    }

    /// Sets the handler for each new connection, run once its handshake is
    /// done. Register the socket's handlers in it: the socket's incoming
    /// events wait until the returned future completes. If it returns an
    /// error, the connection is closed and the error logged.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::Error;
    ///
    /// fn setup(io: &Server<Api>) {
    ///     io.on_connection(|socket: Socket<Api>| async move {
    ///         // Register the handlers here: events wait until this returns.
    ///         socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
    ///         socket.on_log(|line| async move { println!("{line}") });
    ///         if socket.peer_cred().is_some_and(|cred| cred.uid == 0) {
    ///             // Closes the connection; the client sees `CloseReason::Application`.
    ///             return Err(Error::Io(std::io::Error::other("no root clients")));
    ///         }
    ///         Ok(())
    ///     });
    /// }
    /// ```
    pub fn on_connection<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket<In, Out>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let f: ConnectionFn<In, Out> = Arc::new(move |socket| Box::pin(handler(socket)));
        *write(&self.inner.on_connection) = Some(f);
    }

    /// Adds a connection middleware (socket.io's `io.use`). Middlewares
    /// run in the order added, after the protocol handshake and before the
    /// client is accepted, each seeing the [`Handshake`]: the client's auth
    /// payload, address and (on Unix sockets) credentials. Return the
    /// handshake (with any data inserted) to go on, or `Err(`[`Refusal`]`)`
    /// to refuse (`Err("reason".into())`): the client's `connect` then
    /// fails with [`Error::Rejected`]`(`[`RejectReason::Refused`]`(reason))`. A
    /// middleware that panics refuses the client. Middlewares together get
    /// the handshake timeout.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// use netsock::{Error, Handshake, PeerAddr, Refusal, RejectReason};
    /// io.middleware(|hs: Handshake| async move {
    ///     match hs.peer_addr() {
    ///         PeerAddr::Tcp(addr) if addr.ip().is_loopback() => Ok(hs),
    ///         _ => Err("local clients only".into()),
    ///     }
    /// });
    /// io.middleware(|hs: Handshake| async move {
    ///     match hs.auth_bytes() {
    ///         Some(b"let me in") => Ok(hs),
    ///         _ => Err(Refusal::new("who are you?")),
    ///     }
    /// });
    /// let socket = Socket::<Api>::builder().auth("let me in").connect(io.local_addr()).await;
    /// assert!(socket.is_ok());
    /// let err = Socket::<Api>::connect(io.local_addr()).await.unwrap_err();
    /// assert!(matches!(err, Error::Rejected(RejectReason::Refused(why)) if why == "who are you?"));
    /// assert_eq!(io.metrics().rejects.refused, 1);
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(Handshake) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Handshake, Refusal>> + Send + 'static,
    {
        let f: MiddlewareFn = Arc::new(move |hs| Box::pin(middleware(hs)));
        write(&self.inner.middleware).push(f);
    }

    /// The connected sockets (net-socket.io's `io.sockets`), in id order.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// fn list(io: &Server<Api>) {
    ///     for socket in io.sockets() {
    ///         println!("{} from {}", socket.id(), socket.peer_addr());
    ///     }
    /// }
    /// ```
    pub fn sockets(&self) -> Vec<Socket<In, Out>> {
        self.inner.registry.select(&Selector::default())
    }

    /// The connected socket with this id.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::SocketId;
    /// async fn kick(io: &Server<Api>, id: SocketId) {
    ///     if let Some(socket) = io.socket(id) {
    ///         socket.close().await;
    ///     }
    /// }
    /// ```
    pub fn socket(&self, id: SocketId) -> Option<Socket<In, Out>> {
        self.inner.registry.get(id)
    }

    /// A snapshot of the server's counters: connections open and accepted,
    /// handshakes refused by reason, traffic summed over every connection,
    /// calls in flight and queued frames now.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # fn f(io: Server<Api>) {
    /// let m = io.metrics();
    /// println!("{} open, {} refused for their schema", m.connections_open, m.rejects.schema);
    /// # }
    /// ```
    pub fn metrics(&self) -> ServerMetrics {
        let sockets = self.sockets();
        let live: Vec<SocketMetrics> = sockets.iter().map(Socket::metrics).collect();
        ServerMetrics {
            connections_open: sockets.len() as u64,
            connections_total: self.inner.connections_total.load(Ordering::Relaxed),
            handshakes_in_progress: (self.inner.config.max_handshakes
                - self.inner.handshakes.available_permits())
                as u64,
            accept_failures: self.inner.accept_failures.load(Ordering::Relaxed),
            rejects: (&self.inner.rejects).into(),
            traffic: (&*self.inner.counters).into(),
            calls_in_flight: live.iter().map(|m| m.calls_in_flight).sum(),
            queue_depth: live.iter().map(|m| m.queue_depth).sum(),
            sessions_detached: sockets
                .iter()
                .filter(|s| s.conn().detached().is_some())
                .count() as u64,
            sessions_resumed: self.inner.sessions.resumed.load(Ordering::Relaxed),
            sessions_lost: self.inner.sessions.lost.load(Ordering::Relaxed),
        }
    }

    /// The members of `room`, in id order.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// fn lobby_size(io: &Server<Api>) -> usize {
    ///     io.in_room("lobby").len()
    /// }
    /// ```
    pub fn in_room(&self, room: &str) -> Vec<Socket<In, Out>> {
        self.to(room).sockets()
    }

    /// The rooms that have members, sorted. A room exists while it has
    /// members: it is dropped when the last one leaves or disconnects.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// fn report(io: &Server<Api>) {
    ///     for room in io.rooms() {
    ///         println!("{room}: {} members", io.in_room(&room).len());
    ///     }
    /// }
    /// ```
    pub fn rooms(&self) -> Vec<String> {
        self.inner.registry.room_names()
    }

    /// The members of `room`, to emit to (see [`Broadcast`]).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// let alice = Socket::<Api>::connect(io.local_addr()).await?;
    /// let bob = Socket::<Api>::connect(io.local_addr()).await?;
    /// io.socket(alice.id()).unwrap().join("lobby");
    /// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// alice.on_log(move |line| {
    ///     let _ = tx.send(line);
    ///     async {}
    /// });
    /// alice.start();
    /// io.to("lobby").emit_log("lobby only".into()).await?;
    /// assert_eq!(rx.recv().await.unwrap(), "lobby only");
    /// assert_eq!(io.to("lobby").sockets().len(), 1); // bob is not in it
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn to(&self, room: impl Into<String>) -> Broadcast<In, Out> {
        Broadcast::new(Arc::downgrade(&self.inner.registry)).to(room)
    }

    /// Every socket but a room's members or one socket (see [`Broadcast`]).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// let alice = Socket::<Api>::connect(io.local_addr()).await?;
    /// let bob = Socket::<Api>::connect(io.local_addr()).await?;
    /// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// bob.on_log(move |line| {
    ///     let _ = tx.send(line);
    ///     async {}
    /// });
    /// bob.start();
    /// io.except(alice.id()).emit_log("not for alice".into()).await?;
    /// assert_eq!(rx.recv().await.unwrap(), "not for alice");
    /// let rest: Vec<_> = io.except(alice.id()).sockets().iter().map(|s| s.id()).collect();
    /// assert_eq!(rest, [bob.id()]);
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn except(&self, who: impl Into<Except>) -> Broadcast<In, Out> {
        Broadcast::new(Arc::downgrade(&self.inner.registry)).except(who)
    }

    /// Sends an event to every connected socket, encoding it once and
    /// never waiting for a slow one (see [`Broadcast`]).
    ///
    /// Fails only if the event cannot be encoded or is too large.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// let a = Socket::<Api>::connect(io.local_addr()).await?;
    /// let b = Socket::<Api>::connect(io.local_addr()).await?;
    /// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// for socket in [&a, &b] {
    ///     let tx = tx.clone();
    ///     socket.on_log(move |line| {
    ///         let _ = tx.send(line);
    ///         async {}
    ///     });
    ///     socket.start();
    /// }
    /// io.emit(Api::Log("to all".into())).await?; // or `io.emit_log(..)`
    /// assert_eq!(rx.recv().await.unwrap(), "to all");
    /// assert_eq!(rx.recv().await.unwrap(), "to all");
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn emit(&self, event: Out) -> Result<()> {
        Broadcast::new(Arc::downgrade(&self.inner.registry))
            .emit(event)
            .await
    }

    /// Runs the server until `signal` completes (e.g. `tokio::signal::ctrl_c()`),
    /// then [shuts it down](Server::shutdown) with `grace` for the requests
    /// in flight.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # use std::time::Duration;
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// let io = Server::<Api>::bind(0).await?;
    /// // In a real program: io.run_until(tokio::signal::ctrl_c(), Duration::from_secs(10))
    /// io.run_until(std::future::ready(()), Duration::from_secs(1)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_until<F: Future>(&self, signal: F, grace: Duration) -> Result<()> {
        tokio::select! {
            result = self.run() => result,
            _ = signal => {
                self.shutdown(grace).await;
                Ok(())
            }
        }
    }

    /// Accepts connections until [`close`](Server::close) is called.
    ///
    /// Handshakes run in their own tasks: a slow or hostile client never
    /// holds up the others. Fails with [`Error::AlreadyRunning`] if the
    /// server is already running or closed. [`spawn`](Server::spawn) runs
    /// it in a task of its own.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # async fn f() -> netsock::Result<()> {
    /// let io = Server::<Api>::bind(0).await?;
    /// // Serve in the background; `close()` makes `run()` return.
    /// let running = io.spawn();
    /// // ...
    /// io.close().await;
    /// running.await?; // what `run()` returned
    /// # Ok(()) }
    /// ```
    pub async fn run(&self) -> Result<()> {
        let accepting = self.claim_listener()?;
        self.accept_loop(accepting).await
    }

    /// The first step of `run`, which `spawn` takes at once rather than in
    /// its task: from here on, `shutdown` waits for the accept loop to let
    /// the listener go, instead of taking it from a `run` not yet started.
    pub(crate) fn claim_listener(&self) -> Result<Accepting> {
        let listener = lock(&self.inner.listener)
            .take()
            .ok_or(Error::AlreadyRunning)?;
        self.inner.accepting.send_replace(true);
        Ok(Accepting {
            listener: Some(listener),
            flag: self.inner.accepting.clone(),
        })
    }

    /// The rest of `run`: accepts on the claimed listener until shutdown.
    pub(crate) async fn accept_loop(&self, accepting: Accepting) -> Result<()> {
        let mut shutdown = self.inner.shutdown.subscribe();
        let span = tracing::info_span!("netsock_server", addr = %self.inner.local_addr);
        async {
            loop {
                let Some(listener) = &accepting.listener else {
                    return Ok(());
                };
                // At most `max_handshakes` strangers at once: beyond that,
                // connections wait in the listen backlog.
                let handshakes = self.inner.handshakes.clone();
                let permit = tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return Ok(()),
                    permit = handshakes.acquire_owned() => permit,
                };
                let Ok(permit) = permit else { return Ok(()) };
                let accepted = tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return Ok(()),
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok(accepted) => {
                        let weak = Arc::downgrade(&self.inner);
                        let peer = &accepted.2;
                        let conn_span = tracing::info_span!(
                            "connection",
                            id = tracing::field::Empty,
                            peer = %peer,
                            transport = peer.transport(),
                        );
                        let serve = serve_connection(weak, accepted, permit);
                        tokio::spawn(serve.instrument(conn_span));
                    }
                    Err(err) => {
                        // Out of file descriptors and the like: the pending
                        // connection stays in the backlog, so retrying at
                        // once would spin. Back off, then retry.
                        self.inner.accept_failures.fetch_add(1, Ordering::Relaxed);
                        warn_throttled!("accept failed", %err, "accept failed; retrying in 50 ms");
                        tokio::select! {
                            _ = shutdown.wait_for(|s| *s) => return Ok(()),
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Stops accepting, closes every connection (clients see
    /// [`CloseReason::Shutdown`]) and removes the Unix socket file.
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
    /// io.close().await;
    /// assert!(io.sockets().is_empty());
    /// let reason = socket.closed().await;
    /// assert!(matches!(reason, DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) {
        self.shutdown(Duration::ZERO).await;
    }

    /// Shuts down gracefully: stops accepting (and removes the Unix socket
    /// file), lets the requests being handled finish for up to `grace`,
    /// then closes every connection with [`CloseReason::Shutdown`], which
    /// clients see as their disconnect reason. Requests still running after
    /// `grace` are dropped, and their callers get `Disconnected`. When it
    /// returns, the listener is closed: a new server can bind the address.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # use std::time::Duration;
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # async fn f(io: Server<Api>) {
    /// io.shutdown(Duration::from_secs(5)).await;
    /// # }
    /// ```
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.send_replace(true);
        if let Some(cluster) = self.inner.registry.cluster() {
            cluster.stop();
        }
        drop(lock(&self.inner.listener).take());
        // Removes the Unix socket file (if ours) now, not when the last handle goes.
        let _ = lock(&self.inner.socket_file).take();
        // A running `run` closes its listener when it sees the signal: wait
        // for that, so the address can be bound again once this returns.
        let _ = self
            .inner
            .accepting
            .subscribe()
            .wait_for(|accepting| !*accepting)
            .await;
        let sockets = self.sockets();
        if !grace.is_zero() {
            let idle = futures_util::future::join_all(sockets.iter().map(Socket::idle));
            if tokio::time::timeout(grace, idle).await.is_err() {
                tracing::warn!(
                    ?grace,
                    "requests still running after the grace period are dropped"
                );
            }
        }
        let closing = sockets
            .iter()
            .map(|s| s.close_with(CloseReason::Shutdown("the server closed".into())));
        futures_util::future::join_all(closing).await;
    }
}

/// How long the accept loop pauses after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Handshakes, checks and lists one accepted connection, then runs the
/// connection handler. `handshaking` is its place among the connections in
/// their handshake, given back once it is listed or refused.
async fn serve_connection<In: Events, Out: Events>(
    server: Weak<Inner<In, Out>>,
    (read, mut writer, peer, cred): Accepted,
    handshaking: OwnedSemaphorePermit,
) {
    let Some(inner) = server.upgrade() else {
        return;
    };
    let id = SocketId(inner.next_id.fetch_add(1, Ordering::Relaxed));
    tracing::Span::current().record("id", id.0);
    let config = inner.config.clone();
    let middleware = crate::sync::read(&inner.middleware).clone();
    let after = config.handshake_timeout;
    drop(inner);
    let mut reader = hello::server_reader(read, &config);
    let handshake = hello::accept::<In, Out>(&mut reader, &mut writer, &config);
    let (hello, ask) = match tokio::time::timeout(after, handshake).await {
        Ok(Ok(accepted)) => accepted,
        Ok(Err(Error::Tls { cause, .. })) => {
            warn_throttled!("TLS handshake failed", %peer, error = %cause, "TLS handshake failed");
            count_reject(&server, |r| &r.tls);
            return;
        }
        Ok(Err(err)) => {
            warn_throttled!("handshake failed", %peer, error = %err, "handshake failed");
            count_reject(
                &server,
                match err {
                    Error::Rejected(RejectReason::VersionMismatch { .. }) => |r| &r.version,
                    Error::Rejected(RejectReason::SchemaMismatch { .. }) => |r| &r.schema,
                    _ => |r| &r.bad_handshake,
                },
            );
            return;
        }
        Err(_) => {
            warn_throttled!("handshake timed out", %peer, ?after, "handshake timed out");
            count_reject(&server, |r| &r.timed_out);
            let after_ms = after.as_millis().try_into().unwrap_or(u64::MAX);
            let reject = hello::reject(&mut writer, RejectReason::HandshakeTimeout { after_ms });
            // A peer that does not read cannot hold the refusal up.
            let _ = tokio::time::timeout(Duration::from_secs(1), reject).await;
            return;
        }
    };
    // Set once the TLS handshake is done, before any plaintext arrives.
    let accepted_cert = reader.get_ref().peer_cert();
    let mut conn = Handshaken {
        id,
        peer: peer.clone(),
        cred,
        cert: accepted_cert.clone(),
        data: Default::default(),
        peer_max_frame: hello.max_frame as usize,
        reader,
        writer,
        session: None,
    };
    // A session asked for, and granted: resumed, or new.
    let resume = match (&ask, config.recovery) {
        (Some(SessionAsk::Resume { token, received }), Some(_)) => Some((*token, *received)),
        _ => None,
    };
    let open = server.upgrade().map_or(0, |inner| inner.registry.len());
    // A session resumed takes no new place; if it is not resumed, the
    // limit is checked below.
    if open >= config.max_connections && resume.is_none() {
        refuse_full(&server, &mut conn.writer, open, config.max_connections).await;
        return;
    }
    if !middleware.is_empty() {
        let hs = Handshake {
            id,
            peer: peer.clone(),
            cred,
            cert: accepted_cert,
            auth: hello.auth.clone(),
            data: Default::default(),
        };
        let verdict = tokio::time::timeout(after, run_middleware(&middleware, hs)).await;
        match verdict {
            Ok(Ok(hs)) => conn.data = hs.data,
            Ok(Err(refusal)) => {
                warn_throttled!("middleware refused", %peer, reason = %refusal, "middleware refused the connection");
                count_reject(&server, |r| &r.refused);
                hello::reject(&mut conn.writer, RejectReason::Refused(refusal.reason)).await;
                return;
            }
            Err(_) => {
                warn_throttled!("middleware timed out", %peer, ?after, "middleware timed out");
                count_reject(&server, |r| &r.timed_out);
                let reason = RejectReason::Refused("the server's checks timed out".into());
                hello::reject(&mut conn.writer, reason).await;
                return;
            }
        }
    }
    let mut lost = None;
    if let Some((token, received)) = resume {
        match resume_session(&server, conn, &token, received, &hello.auth).await {
            Resumed::Done => return,
            Resumed::No(back, reason) => {
                conn = *back;
                lost = Some(reason);
            }
        }
        if open >= config.max_connections {
            refuse_full(&server, &mut conn.writer, open, config.max_connections).await;
            return;
        }
    }
    let on_end = {
        let server = server.clone();
        Box::new(move |id| {
            if let Some(inner) = server.upgrade() {
                // What it sent counts the frames it never got to send.
                if let Some(conn) = inner.registry.get(id).map(|s| s.conn()) {
                    if let Some(session) = &conn.session {
                        let sent = session.sent() + conn.outbox.numbered_queued();
                        inner
                            .sessions
                            .bury(session.token(), session.received(), sent);
                    }
                }
                inner.registry.remove(id);
                inner.sessions.forget(id);
            }
        })
    };
    let Some(inner) = server.upgrade() else {
        return;
    };
    // A new session, when asked for and granted.
    let grant = match (&ask, config.recovery) {
        (Some(_), Some(recovery)) => match inner.sessions.grant(id) {
            Ok(token) => {
                if lost.is_some() {
                    inner.sessions.count_lost();
                }
                let session = Session::new(token, hello.auth.clone(), recovery);
                conn.session = Some(Arc::new(session));
                Some(SessionGrant {
                    token,
                    window_ms: recovery.window().as_millis().try_into().unwrap_or(u64::MAX),
                    resumption: lost.map_or(Resumption::New, Resumption::Lost),
                })
            }
            Err(err) => {
                tracing::warn!(%err, "no session: the system's random generator failed");
                None
            }
        },
        _ => None,
    };
    let welcome = hello::welcome(id, &config, grant.as_ref());
    let meter = Meter {
        own: Arc::default(),
        server: Some(inner.counters.clone()),
    };
    let registry = Arc::downgrade(&inner.registry);
    drop(inner);
    let carry = Carry::new(std::mem::take(&mut conn.data), meter, false);
    let shared = Shared::<In>::spawn(conn, config, carry, Some(on_end));
    let socket = Socket::<In, Out>::from_shared(shared.clone(), registry);
    let Some(inner) = server.upgrade() else {
        return;
    };
    if *inner.shutdown.borrow() {
        inner.rejects.shutting_down.fetch_add(1, Ordering::Relaxed);
        let reason = RejectReason::Other("the server is shutting down".into());
        if let Ok(reject) = frame::encode_control(Header::Reject(reason), shared.max_out) {
            let _ = shared.outbox.push_close(&reject);
        }
        return;
    }
    // Queue the Welcome and list the socket under the registry's lock: once
    // the client's connect returns, `sockets()` includes it, and no emit to
    // all can be queued before its Welcome.
    let welcomed = || welcome.is_ok_and(|w| shared.outbox.try_push(&w).is_ok());
    if !inner.registry.insert_if(id, socket.clone(), welcomed) {
        shared.stop(Some(DisconnectReason::ClosedLocally));
        return;
    }
    inner.connections_total.fetch_add(1, Ordering::Relaxed);
    let handler = crate::sync::read(&inner.on_connection).clone();
    drop(inner);
    // Listed: it counts as open now, not as a handshake.
    drop(handshaking);
    tracing::info!("client connected");
    if let Some(handler) = handler {
        let result = call_caught(|s| handler(s), socket.clone()).await;
        let failed = match result {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err.to_string()),
            Err(panic) => Some(format!("panicked: {panic}")),
        };
        if let Some(message) = failed {
            tracing::warn!(socket = %id, %message, "on_connection handler failed; closing");
            socket.close_with(CloseReason::Application(message)).await;
            return;
        }
    }
    socket.start();
}

/// Refuses a connection because `open` connections are at the limit `max`.
async fn refuse_full<In: Events, Out: Events>(
    server: &Weak<Inner<In, Out>>,
    writer: &mut crate::transport::WriteHalf,
    open: usize,
    max: usize,
) {
    warn_throttled!(
        "server full",
        open,
        max,
        "refusing a connection: server full"
    );
    count_reject(server, |r| &r.full);
    let reason = format!("the server is at its limit of {max} connections");
    hello::reject(writer, RejectReason::Other(reason)).await;
}

/// How a resume went.
enum Resumed {
    /// The session has its new transport.
    Done,
    /// Not resumed, and why: the connection goes on as a new session.
    No(Box<Handshaken>, LostReason),
}

/// Resumes the session `token` names on the connection `conn`, whose
/// client received `received` numbered frames of it: the same socket gets
/// the new transport, the `Welcome` says how much the server received, and
/// both sides send again what the other did not.
async fn resume_session<In: Events, Out: Events>(
    server: &Weak<Inner<In, Out>>,
    mut conn: Handshaken,
    token: &SessionToken,
    received: u64,
    auth: &Option<Vec<u8>>,
) -> Resumed {
    let Some(inner) = server.upgrade() else {
        return Resumed::No(Box::new(conn), LostReason::Unknown);
    };
    let found = inner
        .sessions
        .take(token)
        .and_then(|id| inner.registry.get(id).map(|socket| (id, socket.conn())));
    let Some((id, shared)) = found else {
        let reason = match inner.sessions.unearth(token) {
            Some((received, sent)) => LostReason::Expired { received, sent },
            None => LostReason::Unknown,
        };
        return Resumed::No(Box::new(conn), reason);
    };
    let Some(session) = shared.session.clone() else {
        return Resumed::No(Box::new(conn), LostReason::Unknown);
    };
    if session.auth != *auth {
        // Not this client's: the owner may still resume it.
        inner.sessions.restore(*token, id);
        return Resumed::No(Box::new(conn), LostReason::NotYours);
    }
    let config = inner.config.clone();
    drop(inner);
    // The old transport may not have noticed the cut yet: it is dropped.
    if !shared.detach_now(crate::conn::CLOSE_GRACE).await {
        return Resumed::No(Box::new(conn), LostReason::Unknown);
    }
    let replay = match session.replay_after(received) {
        Ok(replay) => replay,
        Err(err) => {
            tracing::info!(socket = %id, ?err, "the session cannot be resumed");
            if let Some(inner) = server.upgrade() {
                inner.sessions.count_lost();
            }
            shared.expire(DisconnectReason::PeerHungUp).await;
            let reason = match err {
                ReplayError::Lost(reason) => reason,
                ReplayError::Impossible { .. } => LostReason::Unknown,
            };
            return Resumed::No(Box::new(conn), reason);
        }
    };
    let Some(inner) = server.upgrade() else {
        return Resumed::No(Box::new(conn), LostReason::Unknown);
    };
    let token = match inner.sessions.grant(id) {
        Ok(token) => token,
        Err(_) => return Resumed::No(Box::new(conn), LostReason::Unknown),
    };
    session.set_token(token);
    let grant = SessionGrant {
        token,
        window_ms: session
            .limits
            .window()
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX),
        resumption: Resumption::Resumed {
            received: session.received(),
        },
    };
    let Ok(welcome) = hello::welcome(id, &config, Some(&grant)) else {
        return Resumed::No(Box::new(conn), LostReason::Unknown);
    };
    inner.sessions.count_resumed();
    if conn.writer.write_all(&welcome).await.is_err() {
        // Gone again: the session waits for the next try.
        return Resumed::Done;
    }
    if shared.attach(conn.reader, conn.writer, replay) {
        tracing::info!(socket = %id, "session resumed");
    }
    Resumed::Done
}

/// Runs the middlewares in order; the first refusal (or panic) wins.
async fn run_middleware(
    middleware: &[MiddlewareFn],
    mut hs: Handshake,
) -> std::result::Result<Handshake, Refusal> {
    for m in middleware {
        hs = match call_caught(|hs| m(hs), hs).await {
            Ok(verdict) => verdict?,
            Err(panic) => return Err(Refusal::new(format!("a server check failed ({panic})"))),
        };
    }
    Ok(hs)
}

/// Counts a refused handshake.
fn count_reject<In: Events, Out: Events>(
    server: &Weak<Inner<In, Out>>,
    field: fn(&RejectCounters) -> &AtomicU64,
) {
    if let Some(inner) = server.upgrade() {
        field(&inner.rejects).fetch_add(1, Ordering::Relaxed);
    }
}

impl<In: Events, Out: Events> crate::endpoint::Endpoint for Server<In, Out> {
    type In = In;
    type Out = Out;
}

impl<In: Events, Out: Events> crate::endpoint::Emit<Out> for Server<In, Out> {
    fn emit(&self, event: Out) -> impl std::future::Future<Output = Result<()>> + Send {
        Server::emit(self, event)
    }
}
