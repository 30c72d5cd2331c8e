//! A server as a node of a cluster: what its [`Cluster`] asks of it
//! ([`Local`]), and the server's cluster-wide methods.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::adapter::{BoxFuture, ClusterMetrics, Command, Local, NodeId, SocketInfo};
use crate::broadcast::{apply_locally, describe, Broadcast};
use crate::conn::SocketId;
use crate::error::{CallError, ClusterError, Error, Result};
use crate::events::Events;
use crate::selector::Selector;
use crate::server::{Inner, Server};
use crate::throttle::warn_throttled;
use crate::wire::frame::{self, Header};

/// The server, as its cluster sees it.
pub(crate) struct ServerNode<In: Events, Out: Events> {
    pub(crate) inner: Weak<Inner<In, Out>>,
}

impl<In: Events, Out: Events> Local for ServerNode<In, Out> {
    fn deliver(&self, selector: &Selector, frame: &Bytes, variant: u32) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let event = Out::VARIANTS
            .get(variant as usize)
            .map_or("(unknown event)", |v| v.name);
        inner.registry.deliver(selector, frame, event);
    }

    fn describe(&self, selector: &Selector) -> Vec<SocketInfo> {
        let Some(inner) = self.inner.upgrade() else {
            return Vec::new();
        };
        describe(&inner.registry.select(selector))
    }

    fn rooms(&self) -> Vec<String> {
        self.inner
            .upgrade()
            .map(|inner| inner.registry.room_names())
            .unwrap_or_default()
    }

    fn apply(&self, selector: &Selector, command: &Command) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let sockets = inner.registry.select(selector);
        apply_locally(&sockets, command);
    }

    fn call(
        &self,
        selector: Selector,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> BoxFuture<'static, Vec<(SocketId, std::result::Result<Bytes, CallError>)>> {
        let sockets = match self.inner.upgrade() {
            Some(inner) => inner.registry.select(&selector),
            None => Vec::new(),
        };
        Box::pin(async move {
            let calls = sockets.into_iter().map(|socket| {
                let socket = match timeout {
                    Some(t) => socket.timeout(t),
                    None => socket,
                };
                let payload = &payload;
                async move {
                    let make = |id, timeout_ms, max| {
                        frame::encode_with_payload(
                            &Header::Request { id, timeout_ms },
                            payload,
                            max,
                        )
                    };
                    (socket.id(), socket.call_with(make, Ok).await)
                }
            });
            futures_util::future::join_all(calls).await
        })
    }
}

/// A server's view of its cluster, from [`Server::cluster`]: the other
/// nodes, and the cluster-wide answers to what [`Server::sockets`],
/// [`Server::in_room`] and [`Server::rooms`] answer for this node alone.
/// Without an adapter, the cluster is this server.
///
/// ```
/// # use netsock::{Events, Server};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
/// async fn report(io: &Server<Api>) -> netsock::Result<()> {
///     let cluster = io.cluster();
///     println!(
///         "{}: {} sockets here, {} in the cluster of {} nodes",
///         cluster.node(),
///         io.sockets().len(),
///         cluster.count().await?,
///         cluster.nodes().len() + 1,
///     );
///     Ok(())
/// }
/// ```
pub struct ServerCluster<In: Events, Out: Events = In> {
    server: Server<In, Out>,
}

impl<In: Events, Out: Events> Clone for ServerCluster<In, Out> {
    fn clone(&self) -> Self {
        ServerCluster {
            server: self.server.clone(),
        }
    }
}

impl<In: Events, Out: Events> std::fmt::Debug for ServerCluster<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCluster")
            .field("node", &self.node())
            .field("nodes", &self.nodes())
            .finish()
    }
}

impl<In: Events, Out: Events> Server<In, Out> {
    /// This server's view of its cluster (see [`netsock::adapter`](crate::adapter)).
    ///
    /// ```
    /// # use netsock::{Events, Server, NodeId};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// let io = Server::<Api>::bind(0).await?;
    /// assert_eq!(io.cluster().node(), NodeId(0)); // no adapter: a cluster of one
    /// assert_eq!(io.cluster().count().await?, 0);
    /// # Ok(()) }
    /// ```
    pub fn cluster(&self) -> ServerCluster<In, Out> {
        ServerCluster {
            server: self.clone(),
        }
    }

    /// The socket with this id, on whichever node it is, to emit to, make
    /// join or leave a room, or close (see [`Broadcast`]).
    ///
    /// ```
    /// # use netsock::{Events, Server, SocketId};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Note(String) }
    /// async fn poke(io: &Server<Api>, id: SocketId) -> netsock::Result<()> {
    ///     io.to_socket(id).emit_note("just you".into()).await
    /// }
    /// ```
    pub fn to_socket(&self, id: SocketId) -> Broadcast<In, Out> {
        Broadcast::new(Arc::downgrade(&self.inner.registry)).to_socket(id)
    }

    /// Every socket of the cluster, with its rooms, in id order (socket.io's
    /// `fetchSockets`; the same as `io.cluster().sockets()`).
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// async fn everyone(io: &Server<Api>) -> netsock::Result<()> {
    ///     for s in io.fetch_sockets().await? {
    ///         println!("{} on {} in {:?}", s.id, s.id.node(), s.rooms);
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>> {
        Broadcast::new(Arc::downgrade(&self.inner.registry))
            .fetch_sockets()
            .await
    }
}

impl<In: Events, Out: Events> ServerCluster<In, Out> {
    fn adapter(&self) -> Option<&Arc<crate::adapter::Cluster>> {
        self.server.inner.registry.cluster()
    }

    /// This server's node number; [`NodeId(0)`](NodeId) without an adapter.
    ///
    /// ```
    /// # use netsock::{Events, Server, NodeId};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// fn me(io: &Server<Api>) -> NodeId {
    ///     io.cluster().node()
    /// }
    /// ```
    pub fn node(&self) -> NodeId {
        self.adapter().map_or(NodeId(0), |c| c.node())
    }

    /// The other nodes this server hears from now, in order (none without
    /// an adapter).
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// fn peers(io: &Server<Api>) -> String {
    ///     io.cluster().nodes().iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
    /// }
    /// ```
    pub fn nodes(&self) -> Vec<NodeId> {
        self.adapter().map(|c| c.nodes()).unwrap_or_default()
    }

    /// Waits until this server hears from at least `count` other nodes (at
    /// once without an adapter). Bound it with a timeout.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # async fn f(io: Server<Api>) {
    /// let cluster = io.cluster();
    /// let wait = cluster.wait_for_nodes(2);
    /// if tokio::time::timeout(std::time::Duration::from_secs(5), wait).await.is_err() {
    ///     eprintln!("the other two nodes are not up yet");
    /// }
    /// # }
    /// ```
    pub async fn wait_for_nodes(&self, count: usize) {
        if let Some(cluster) = self.adapter() {
            cluster.wait_for_nodes(count).await;
        }
    }

    /// The counters of this node's adapter (none without one).
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// let io = Server::<Api>::bind(0).await?;
    /// assert!(io.cluster().metrics().is_none()); // no adapter
    /// # Ok(()) }
    /// ```
    pub fn metrics(&self) -> Option<ClusterMetrics> {
        self.adapter().map(|c| c.metrics())
    }

    /// Every socket of the cluster, with its rooms, in id order;
    /// [`Server::sockets`] is this node's alone. Nodes that do not answer
    /// within the adapter's
    /// [`fetch_timeout`](crate::adapter::Adapter::fetch_timeout) are left out.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// async fn ids(io: &Server<Api>) -> netsock::Result<Vec<netsock::SocketId>> {
    ///     Ok(io.cluster().sockets().await?.iter().map(|s| s.id).collect())
    /// }
    /// ```
    pub async fn sockets(&self) -> Result<Vec<SocketInfo>> {
        self.server.fetch_sockets().await
    }

    /// The members of `room` on every node, in id order;
    /// [`Server::in_room`] is this node's alone.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// async fn lobby_size(io: &Server<Api>) -> netsock::Result<usize> {
    ///     Ok(io.cluster().in_room("lobby").await?.len())
    /// }
    /// ```
    pub async fn in_room(&self, room: &str) -> Result<Vec<SocketInfo>> {
        self.server.to(room).fetch_sockets().await
    }

    /// The rooms with members on any node, sorted; [`Server::rooms`] is
    /// this node's alone.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// async fn rooms(io: &Server<Api>) -> netsock::Result<Vec<String>> {
    ///     io.cluster().rooms().await
    /// }
    /// ```
    pub async fn rooms(&self) -> Result<Vec<String>> {
        let mut rooms = self.server.rooms();
        if let Some(cluster) = self.adapter() {
            rooms.extend(cluster.rooms().await?);
            rooms.sort();
            rooms.dedup();
        }
        Ok(rooms)
    }

    /// How many sockets the cluster has; `io.sockets().len()` is this
    /// node's.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// let io = Server::<Api>::bind(0).await?;
    /// assert_eq!(io.cluster().count().await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn count(&self) -> Result<usize> {
        Ok(self.sockets().await?.len())
    }

    /// Sends `message` to the other servers of the cluster (socket.io's
    /// `serverSideEmit`): each hands it to its
    /// [`on_message`](ServerCluster::on_message) handler, decoded as that
    /// handler's type. Without an adapter nobody gets it.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// fn reload(io: &Server<Api>) -> netsock::Result<()> {
    ///     io.cluster().emit(&("reload", 3u32))
    /// }
    /// ```
    pub fn emit<T: Serialize>(&self, message: &T) -> Result<()> {
        let Some(cluster) = self.adapter() else {
            return Ok(());
        };
        let payload = postcard::to_stdvec(message).map_err(|e| {
            Error::Cluster(ClusterError::Driver(format!(
                "cannot encode the message: {e}"
            )))
        })?;
        Ok(cluster.message(&payload)?)
    }

    /// Sets the handler of the messages other servers send with
    /// [`emit`](ServerCluster::emit); one that does not decode as `T` is
    /// logged and dropped. The handler runs on the adapter's receiving
    /// task: keep it short, spawn for longer work.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// fn listen(io: &Server<Api>) {
    ///     io.cluster().on_message(|from, (what, n): (String, u32)| {
    ///         println!("{from} says {what} {n}");
    ///     });
    /// }
    /// ```
    pub fn on_message<T, F>(&self, handler: F)
    where
        T: DeserializeOwned,
        F: Fn(NodeId, T) + Send + Sync + 'static,
    {
        let Some(cluster) = self.adapter() else {
            return;
        };
        cluster.on_message(Arc::new(move |from, payload: Bytes| {
            match postcard::from_bytes::<T>(&payload) {
                Ok(message) => handler(from, message),
                Err(error) => {
                    warn_throttled!("bad server message", node = from.0, %error, "a message from another server does not decode");
                }
            }
        }));
    }
}
