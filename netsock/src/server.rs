//! [`Server`]: listens, handshakes, and keeps the table of connected sockets.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use crate::config::{config_setters, Config};
use crate::conn::{self, lock, write, Command, Shared};
use crate::frame::{self, CloseReason, Header, RejectReason};
use crate::handlers::{call_caught, BoxFuture};
use crate::service::Service;
use crate::transport::{Listener, PeerAddr, ReadHalf, SocketFile, WriteHalf};
use crate::{handshake, Addr, Error, Events, IntoAddr, Result, Socket, SocketId};

type ConnectionFn<In, Out> = Arc<dyn Fn(Socket<In, Out>) -> BoxFuture<Result<()>> + Send + Sync>;

struct Inner<In: Events, Out: Events> {
    local_addr: Addr,
    config: Config,
    listener: Mutex<Option<Listener>>,
    socket_file: Mutex<Option<SocketFile>>,
    sockets: Mutex<BTreeMap<SocketId, Socket<In, Out>>>,
    on_connection: RwLock<Option<ConnectionFn<In, Out>>>,
    next_id: AtomicU64,
    shutdown: tokio::sync::watch::Sender<bool>,
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
/// tokio::spawn({ let io = io.clone(); async move { io.run().await } });
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
            .field("sockets", &lock(&self.inner.sockets).len())
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
    _types: PhantomData<fn(In, Out)>,
}

impl<In: Events, Out: Events> fmt::Debug for ServerBuilder<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .finish()
    }
}

impl<In: Events, Out: Events> ServerBuilder<In, Out> {
    config_setters!();

    /// Binds the address; see [`Server::bind`].
    pub async fn bind(self, addr: impl IntoAddr) -> Result<Server<In, Out>> {
        let addr = addr.into_addr()?;
        let (listener, local_addr, socket_file) = Listener::bind(&addr).await?;
        tracing::info!(addr = %local_addr, "netsock server listening");
        Ok(Server {
            inner: Arc::new(Inner {
                local_addr,
                config: self.config,
                listener: Mutex::new(Some(listener)),
                socket_file: Mutex::new(socket_file),
                sockets: Mutex::new(BTreeMap::new()),
                on_connection: RwLock::new(None),
                next_id: AtomicU64::new(1),
                shutdown: tokio::sync::watch::Sender::new(false),
            }),
        })
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
    pub async fn bind(addr: impl IntoAddr) -> Result<Self> {
        Self::builder().bind(addr).await
    }

    /// Options for binding.
    pub fn builder() -> ServerBuilder<In, Out> {
        ServerBuilder {
            config: Config::default(),
            _types: PhantomData,
        }
    }

    /// The address the server listens on, with the actual port when port 0
    /// was asked for.
    pub fn local_addr(&self) -> &Addr {
        &self.inner.local_addr
    }

    /// Sets the handler for each new connection, run once its handshake is
    /// done. Register the socket's handlers in it: the socket's incoming
    /// events wait until the returned future completes. If it returns an
    /// error, the connection is closed and the error logged.
    pub fn on_connection<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket<In, Out>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let f: ConnectionFn<In, Out> = Arc::new(move |socket| Box::pin(handler(socket)));
        *write(&self.inner.on_connection) = Some(f);
    }

    /// The connected sockets (net-socket.io's `io.sockets`), in id order.
    pub fn sockets(&self) -> Vec<Socket<In, Out>> {
        lock(&self.inner.sockets).values().cloned().collect()
    }

    /// The connected socket with this id.
    pub fn socket(&self, id: SocketId) -> Option<Socket<In, Out>> {
        lock(&self.inner.sockets).get(&id).cloned()
    }

    /// Sends an event to every connected socket, encoding it once.
    ///
    /// Fails only if the event cannot be encoded or is too large; sockets
    /// that close meanwhile are skipped.
    pub async fn emit(&self, event: Out) -> Result<()> {
        let sockets = self.sockets();
        let max = sockets
            .iter()
            .map(|s| s.max_out())
            .min()
            .unwrap_or(usize::MAX);
        let frame = frame::encode(&Header::Event, Some(&event), max)?;
        for socket in sockets {
            // A socket that closed meanwhile is simply skipped.
            let _ = socket.send(frame.clone()).await;
        }
        Ok(())
    }

    /// Serves every connection with `service` (one made by
    /// `#[netsock::service]`, or a tuple of them) until
    /// [`close`](Server::close) is called: [`Service::attach`] then
    /// [`run`](Server::run).
    ///
    /// ```
    /// #[netsock::service]
    /// trait SumNumbers {
    ///     async fn sum(&self, numbers: Vec<i64>) -> i64;
    /// }
    /// struct Summer;
    /// impl SumNumbers for Summer {
    ///     async fn sum(&self, numbers: Vec<i64>) -> i64 { numbers.iter().sum() }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// let io = netsock::Server::<SumNumbersRequest>::bind(0).await?;
    /// let addr = io.local_addr().clone();
    /// tokio::spawn({ let io = io.clone(); async move { io.serve(SumNumbersServer::new(Summer)).await } });
    /// let client = SumNumbersClient::connect(addr).await?;
    /// assert_eq!(client.sum(vec![1, 2, 3]).await?, 6);
    /// io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn serve(&self, service: impl Service<In, Out>) -> Result<()> {
        service.attach(self);
        self.run().await
    }

    /// Accepts connections until [`close`](Server::close) is called.
    ///
    /// Handshakes run in their own tasks: a slow or hostile client never
    /// holds up the others. Fails with [`Error::AlreadyRunning`] if the
    /// server is already running or closed.
    pub async fn run(&self) -> Result<()> {
        let listener = lock(&self.inner.listener)
            .take()
            .ok_or(Error::AlreadyRunning)?;
        let mut shutdown = self.inner.shutdown.subscribe();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((read, write, peer)) => {
                    let weak = Arc::downgrade(&self.inner);
                    tokio::spawn(serve_connection(weak, read, write, peer));
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off and retry.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Stops accepting, closes every connection (clients see
    /// [`CloseReason::Shutdown`]) and removes the Unix socket file.
    pub async fn close(&self) {
        self.inner.shutdown.send_replace(true);
        drop(lock(&self.inner.listener).take());
        drop(lock(&self.inner.socket_file).take());
        let sockets = self.sockets();
        let closing = sockets
            .iter()
            .map(|s| s.close_with(CloseReason::Shutdown("the server closed".into())));
        futures_util::future::join_all(closing).await;
    }
}

async fn serve_connection<In: Events, Out: Events>(
    server: Weak<Inner<In, Out>>,
    read: ReadHalf,
    write: WriteHalf,
    peer: PeerAddr,
) {
    let Some(inner) = server.upgrade() else {
        return;
    };
    let id = SocketId(inner.next_id.fetch_add(1, Ordering::Relaxed));
    let config = inner.config.clone();
    let after = config.handshake_timeout;
    drop(inner);
    let handshake = handshake::accept::<In, Out>(read, write, peer.clone(), &config, id);
    let conn = match tokio::time::timeout(after, handshake).await {
        Ok(Ok((conn, _hello))) => conn,
        Ok(Err(err)) => {
            tracing::warn!(%peer, error = %err, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, ?after, "handshake timed out");
            return;
        }
    };
    let on_end = {
        let server = server.clone();
        Box::new(move |id| {
            if let Some(inner) = server.upgrade() {
                lock(&inner.sockets).remove(&id);
            }
        })
    };
    let welcome = handshake::welcome(id, &config);
    let shared = Shared::<In>::spawn(conn, config, Some(on_end));
    let socket = Socket::<In, Out>::from_shared(shared.clone());
    let Some(inner) = server.upgrade() else {
        return;
    };
    if *inner.shutdown.borrow() {
        let reason = RejectReason::Other("the server is shutting down".into());
        if let Ok(reject) = frame::encode(&Header::Reject(reason), None::<&()>, usize::MAX) {
            let _ = shared.tx.try_send(Command::Close(reject));
        }
        return;
    }
    {
        // Queue the Welcome and list the socket under one lock: once the
        // client's connect returns, `sockets()` includes it, and no emit to
        // all can be queued before its Welcome.
        let mut sockets = lock(&inner.sockets);
        let queued = welcome.is_ok_and(|w| shared.tx.try_send(Command::Frame(w)).is_ok());
        if !queued {
            drop(sockets);
            shared.stop(Some(crate::DisconnectReason::ClosedLocally));
            return;
        }
        sockets.insert(id, socket.clone());
    }
    let handler = conn::read(&inner.on_connection).clone();
    drop(inner);
    tracing::debug!(socket = %id, %peer, "client connected");
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
