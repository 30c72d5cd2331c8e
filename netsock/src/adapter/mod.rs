//! Scaling out: several server processes (nodes) that act as one server,
//! through a pub/sub engine such as Redis.
//!
//! A server without an adapter keeps every room to itself, as before. Give
//! its builder an [`Adapter`] and it becomes a node of a cluster: every
//! broadcast (`io.emit_*`, `io.to(room)`, `.except(..)`,
//! `socket.broadcast()`, `socket.to(room)`) reaches the matching sockets of
//! every node; requests to a room gather the replies of every node's
//! sockets; [`io.cluster()`](crate::Server::cluster)'s
//! [`sockets`](crate::ServerCluster::sockets),
//! [`in_room`](crate::ServerCluster::in_room),
//! [`rooms`](crate::ServerCluster::rooms) and
//! [`count`](crate::ServerCluster::count) answer for the whole cluster
//! (the server's own [`sockets`](crate::Server::sockets),
//! [`in_room`](crate::Server::in_room) and [`rooms`](crate::Server::rooms)
//! stay this node's); a [`Broadcast`](crate::Broadcast) can make sockets on
//! any node [`join`](crate::Broadcast::join) or
//! [`leave`](crate::Broadcast::leave) a room or
//! [`close`](crate::Broadcast::close), and reach one by id
//! ([`to_socket`](crate::Broadcast::to_socket)); and servers send each
//! other messages ([`ServerCluster::emit`](crate::ServerCluster::emit)).
//!
//! The engine is behind a small [`Driver`] trait: publish bytes on a
//! channel, subscribe to channels, hand out node numbers. The
//! `netsock-redis` crate implements it over Redis; [`MemoryBus`] connects
//! servers in one process (for tests and examples); another engine (NATS,
//! say) is a crate that implements `Driver`, with no change to netsock.
//!
//! A broadcast is encoded once, on the emitting node: the frame's bytes
//! travel through the engine behind a small header, and each node queues
//! them for its sockets as they came, without decoding or encoding the
//! event again.
//!
//! ```
//! use netsock::adapter::{Adapter, MemoryBus};
//! use netsock::{Events, Server, Socket};
//!
//! #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
//! enum Chat { Line(String) }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> netsock::Result<()> {
//! let bus = MemoryBus::new();
//! let a = Server::<Chat>::builder().adapter(Adapter::new(bus.clone())).bind(0).await?;
//! let b = Server::<Chat>::builder().adapter(Adapter::new(bus.clone())).bind(0).await?;
//! a.spawn();
//! b.spawn();
//! a.cluster().wait_for_nodes(1).await;
//! let on_b = Socket::<Chat>::connect(b.local_addr()).await?;
//! # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! on_b.on_line(move |line| { let _ = tx.send(line); async {} });
//! on_b.start();
//! a.emit_line("to every node".into()).await?; // emitted on a, heard on b
//! assert_eq!(rx.recv().await.unwrap(), "to every node");
//! # Ok(()) }
//! ```

mod cluster;
mod memory;
mod wire;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

pub(crate) use cluster::{Cluster, Local};
pub use memory::MemoryBus;
pub(crate) use wire::Command;

pub use crate::conn::NodeId;
use crate::conn::SocketId;
pub use crate::error::ClusterError;

/// A boxed future, as [`Driver`]'s methods return (the trait is used as
/// `dyn Driver`).
///
/// ```
/// use netsock::adapter::BoxFuture;
/// let ready: BoxFuture<'static, u32> = Box::pin(async { 7 });
/// ```
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One message for the engine to publish: bytes on a channel.
///
/// ```
/// use netsock::adapter::Outgoing;
/// let m = Outgoing { channel: "chat#all".into(), message: bytes::Bytes::from_static(b"..") };
/// assert_eq!(&*m.channel, "chat#all");
/// ```
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The channel.
    pub channel: Arc<str>,
    /// The message, opaque to the driver.
    pub message: Bytes,
}

/// A pub/sub engine a cluster of servers talks through: the part of an
/// adapter that knows the engine (Redis, NATS, ...). Everything else (the
/// messages, nodes and their heartbeats, gathering replies, delivering to
/// local sockets) is netsock's.
///
/// What a driver must do:
///
/// * [`publish`](Driver::publish) a batch of messages, in order, each to
///   every subscriber of its channel (including this node's own
///   subscription: a node ignores its own messages). An error means the
///   batch (or its rest) was not sent: netsock counts it as lost and sends
///   the next batch anyway, so the driver should reconnect by itself.
/// * [`subscribe`](Driver::subscribe) to channels: return once the
///   subscription holds, then hand every message to the [`Inbox`] without
///   waiting, until [`Inbox::is_closed`]. When the connection to the engine
///   drops, tell the inbox ([`Inbox::lost_connection`]), reconnect (with
///   back-off), subscribe again and tell it ([`Inbox::reconnected`]).
/// * hand out a [`node_number`](Driver::node_number) no other live node of
///   the named cluster has, from 1 to 2²⁴ − 1.
///
/// ```
/// use netsock::adapter::{BoxFuture, Driver, Inbox, Outgoing};
/// use netsock::ClusterError;
///
/// /// A cluster of one: publishes nowhere (every broadcast stays local).
/// struct Alone;
///
/// impl Driver for Alone {
///     fn node_number<'a>(&'a self, _cluster: &'a str) -> BoxFuture<'a, Result<u32, ClusterError>> {
///         Box::pin(async { Ok(1) })
///     }
///     fn publish(&self, _batch: Vec<Outgoing>) -> BoxFuture<'_, Result<(), ClusterError>> {
///         Box::pin(async { Ok(()) })
///     }
///     fn subscribe(&self, _channels: Vec<String>, _inbox: Inbox) -> BoxFuture<'_, Result<(), ClusterError>> {
///         Box::pin(async { Ok(()) })
///     }
/// }
/// let adapter = netsock::adapter::Adapter::new(Alone);
/// ```
pub trait Driver: Send + Sync + 'static {
    /// A number for this node that no other live node of cluster `cluster`
    /// has (1 to 2²⁴ − 1).
    fn node_number<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<u32, ClusterError>>;

    /// Publishes `batch`, in order.
    fn publish(&self, batch: Vec<Outgoing>) -> BoxFuture<'_, Result<(), ClusterError>>;

    /// Subscribes to `channels` and hands each message to `inbox` until it
    /// is closed, riding out lost connections (see the trait's
    /// documentation).
    fn subscribe(
        &self,
        channels: Vec<String>,
        inbox: Inbox,
    ) -> BoxFuture<'_, Result<(), ClusterError>>;
}

/// Where a [`Driver`] hands the messages of its subscription.
///
/// ```
/// # use netsock::adapter::Inbox;
/// fn on_message(inbox: &Inbox, payload: bytes::Bytes) {
///     if !inbox.is_closed() {
///         inbox.push(payload); // never waits
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Inbox {
    pub(crate) cluster: Weak<Cluster>,
    pub(crate) stopped: tokio::sync::watch::Receiver<bool>,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Inbox {
    /// Hands over one message; never waits (a broadcast is queued for the
    /// local sockets at once, a request runs in a task of its own).
    ///
    /// ```
    /// # fn f(inbox: &netsock::adapter::Inbox) {
    /// inbox.push(bytes::Bytes::from_static(b"a message from the engine"));
    /// # }
    /// ```
    pub fn push(&self, message: Bytes) {
        if let Some(cluster) = self.cluster.upgrade() {
            cluster.receive(message);
        }
    }

    /// True once the node stopped: the driver should drop its subscription.
    ///
    /// ```
    /// # fn f(inbox: &netsock::adapter::Inbox) {
    /// while !inbox.is_closed() {
    ///     // read from the engine, push...
    /// #   break;
    /// }
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.cluster.upgrade().is_none_or(|c| c.is_stopped())
    }

    /// Completes once the node stopped (its server closed or dropped).
    ///
    /// ```
    /// # async fn f(inbox: netsock::adapter::Inbox) {
    /// tokio::select! {
    ///     () = inbox.closed() => { /* unsubscribe, end the task */ }
    ///     // message = subscription.next() => inbox.push(message),
    /// }
    /// # }
    /// ```
    pub async fn closed(&self) {
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// Tells the node that the subscription's connection dropped (counted
    /// in [`ClusterMetrics::lost_connections`], logged).
    ///
    /// ```
    /// # fn f(inbox: &netsock::adapter::Inbox) {
    /// inbox.lost_connection(&netsock::ClusterError::Driver("connection reset".into()));
    /// # }
    /// ```
    pub fn lost_connection(&self, error: &ClusterError) {
        if let Some(cluster) = self.cluster.upgrade() {
            cluster.lost_connection(error);
        }
    }

    /// Tells the node that the subscription holds again after a lost
    /// connection: it announces itself again.
    ///
    /// ```
    /// # fn f(inbox: &netsock::adapter::Inbox) {
    /// inbox.reconnected();
    /// # }
    /// ```
    pub fn reconnected(&self) {
        if let Some(cluster) = self.cluster.upgrade() {
            cluster.reconnected();
        }
    }
}

/// A [`Driver`] and the settings of the cluster, for
/// [`ServerBuilder::adapter`](crate::ServerBuilder::adapter).
///
/// ```
/// use std::time::Duration;
/// use netsock::adapter::{Adapter, MemoryBus};
/// let adapter = Adapter::new(MemoryBus::new())
///     .name("chat")
///     .heartbeat(Duration::from_secs(2))
///     .node_timeout(Duration::from_secs(6));
/// ```
#[derive(Clone)]
pub struct Adapter {
    pub(crate) driver: Arc<dyn Driver>,
    pub(crate) options: Options,
}

impl fmt::Debug for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adapter")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The settings of [`Adapter`].
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) name: String,
    pub(crate) heartbeat: Duration,
    pub(crate) node_timeout: Duration,
    pub(crate) queue: usize,
    pub(crate) fetch_timeout: Duration,
    pub(crate) reply_grace: Duration,
    pub(crate) max_requests: usize,
    pub(crate) max_remote_calls: usize,
}

impl Adapter {
    /// An adapter over `driver`, with the default settings.
    ///
    /// ```
    /// let adapter = netsock::adapter::Adapter::new(netsock::adapter::MemoryBus::new());
    /// ```
    pub fn new(driver: impl Driver) -> Self {
        Adapter {
            driver: Arc::new(driver),
            options: Options {
                name: "netsock".into(),
                heartbeat: Duration::from_secs(5),
                node_timeout: Duration::from_secs(15),
                queue: 4096,
                fetch_timeout: Duration::from_secs(5),
                reply_grace: Duration::from_millis(200),
                max_requests: 1024,
                max_remote_calls: 256,
            },
        }
    }

    /// The cluster's name (default `"netsock"`): the prefix of its channels.
    /// Servers with the same driver and name are one cluster; give each
    /// application (and each event type) a name of its own.
    ///
    /// ```
    /// # use netsock::adapter::{Adapter, MemoryBus};
    /// let adapter = Adapter::new(MemoryBus::new()).name("game-eu");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.options.name = name.into();
        self
    }

    /// How often a node tells the others it is alive (default 5 s).
    ///
    /// ```
    /// # use netsock::adapter::{Adapter, MemoryBus};
    /// let adapter = Adapter::new(MemoryBus::new()).heartbeat(std::time::Duration::from_secs(1));
    /// ```
    pub fn heartbeat(mut self, every: std::time::Duration) -> Self {
        self.options.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// How long a node may stay silent before the others forget it
    /// (default 15 s): requests and queries stop waiting for it.
    ///
    /// ```
    /// # use netsock::adapter::{Adapter, MemoryBus};
    /// let adapter = Adapter::new(MemoryBus::new()).node_timeout(std::time::Duration::from_secs(3));
    /// ```
    pub fn node_timeout(mut self, after: std::time::Duration) -> Self {
        self.options.node_timeout = after;
        self
    }

    /// How many messages wait at most for the driver (default 4,096): when
    /// the engine is down or slower than the emits, further messages reach
    /// this node's sockets only, the emit fails with
    /// [`ClusterError::Backlog`] and they are counted in
    /// [`ClusterMetrics::dropped`]. Memory stays bounded.
    ///
    /// ```
    /// # use netsock::adapter::{Adapter, MemoryBus};
    /// let adapter = Adapter::new(MemoryBus::new()).queue(1024);
    /// ```
    pub fn queue(mut self, messages: usize) -> Self {
        self.options.queue = messages.max(1);
        self
    }

    /// How long [`fetch_sockets`](crate::Server::fetch_sockets) and the
    /// other cluster queries wait for the other nodes (default 5 s).
    ///
    /// ```
    /// # use netsock::adapter::{Adapter, MemoryBus};
    /// let adapter = Adapter::new(MemoryBus::new()).fetch_timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn fetch_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.options.fetch_timeout = timeout;
        self
    }

    /// How much longer than its timeout a request to a room waits for the
    /// other nodes' replies, for the trip back (default 200 ms).
    ///
    /// ```
    /// # use netsock::adapter::{Adapter, MemoryBus};
    /// let adapter = Adapter::new(MemoryBus::new()).reply_grace(std::time::Duration::from_millis(50));
    /// ```
    pub fn reply_grace(mut self, grace: std::time::Duration) -> Self {
        self.options.reply_grace = grace;
        self
    }
}

/// A socket somewhere in the cluster, as
/// [`fetch_sockets`](crate::Server::fetch_sockets) lists it.
///
/// ```
/// use netsock::adapter::SocketInfo;
/// fn where_is(s: &SocketInfo) -> String {
///     format!("socket {} on {} in {:?}", s.id, s.id.node(), s.rooms)
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SocketInfo {
    /// Its id; [`SocketId::node`] is its node.
    pub id: SocketId,
    /// Its rooms, sorted.
    pub rooms: Vec<String>,
}

/// A node's counters of what went through its adapter, from
/// [`ServerCluster::metrics`](crate::ServerCluster::metrics).
///
/// ```
/// # use netsock::{Events, Server};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
/// fn report(io: &Server<Api>) {
///     if let Some(m) = io.cluster().metrics() {
///         println!("{}: {} other nodes, {} lost", m.node, m.nodes.len(), m.dropped + m.publish_failed);
///     }
/// }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterMetrics {
    /// This node.
    pub node: NodeId,
    /// The other nodes it hears from now.
    pub nodes: Vec<NodeId>,
    /// Messages handed to the driver and published.
    pub published: u64,
    /// Messages the driver failed to publish (the engine was down): lost.
    pub publish_failed: u64,
    /// Messages never queued for the driver because its queue was full:
    /// lost (the emit failed with [`ClusterError::Backlog`]).
    pub dropped: u64,
    /// Messages waiting for the driver now.
    pub queue_depth: u64,
    /// Messages received from other nodes.
    pub received: u64,
    /// Broadcast frames from other nodes queued for this node's sockets,
    /// as they came: never decoded or encoded again here.
    pub frames_relayed: u64,
    /// Messages from the engine that could not be decoded (another
    /// version, or not netsock's), ignored.
    pub undecodable: u64,
    /// Messages from other nodes that never arrived here: each node numbers
    /// what it sends, and a gap (the subscription was down, the engine
    /// dropped them, or the sender's publish failed) is counted here.
    pub missed: u64,
    /// Times the driver lost its subscription's connection.
    pub lost_connections: u64,
    /// Times it subscribed again after one.
    pub reconnects: u64,
    /// Other nodes forgotten for their silence.
    pub nodes_timed_out: u64,
}
