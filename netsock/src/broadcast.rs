//! [`Broadcast`]: a set of a server's sockets chosen by room, to emit to (or
//! request from) all at once; on a server with an adapter, the matching
//! sockets of every node of its cluster.

use std::fmt;
use std::sync::Weak;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::adapter::{Command, SocketInfo};
use crate::conn::SocketId;
use crate::error::{CallError, Error, Result};
use crate::events::Events;
use crate::registry::Registry;
use crate::selector::{Except, Selector};
use crate::socket::Socket;
use crate::wire::frame::{self, Header};

/// A set of a server's sockets: every socket, or the members of some rooms,
/// minus some rooms or sockets. Made by [`Server::to`](crate::Server::to),
/// [`Server::except`](crate::Server::except),
/// [`Socket::broadcast`](crate::Socket::broadcast) and
/// [`Socket::to`](crate::Socket::to); the generated `emit_*` methods work on
/// it.
///
/// The set is resolved when you emit. An event is encoded once and the same
/// bytes are queued for every recipient without waiting: a recipient whose
/// outgoing queue is full (it stopped reading) misses the event, which is
/// reported to that socket's [error hook](Socket::on_error) as
/// [`SocketError::Missed`](crate::SocketError::Missed) and counted in
/// [`Socket::dropped_events`]; the sender and the other recipients never
/// wait for it.
///
/// On a server with an [adapter](crate::adapter), the set spans every node
/// of the cluster: the frame is published once for the other nodes, which
/// queue the same bytes for their matching sockets.
///
/// ```
/// # use netsock::{Events, Server, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)]
/// # enum Chat { Message { text: String } }
/// # async fn f(io: Server<Chat>, socket: Socket<Chat>) -> netsock::Result<()> {
/// socket.join("lobby");
/// io.to("lobby").except(socket.id()).emit_message("hi all".into()).await?;
/// socket.broadcast().emit_message("everyone but me".into()).await?;
/// # Ok(()) }
/// ```
pub struct Broadcast<In: Events, Out: Events = In> {
    registry: Weak<Registry<Socket<In, Out>>>,
    selector: Selector,
    timeout: Option<Duration>,
}

impl<In: Events, Out: Events> Clone for Broadcast<In, Out> {
    fn clone(&self) -> Self {
        Broadcast {
            registry: self.registry.clone(),
            selector: self.selector.clone(),
            timeout: self.timeout,
        }
    }
}

impl<In: Events, Out: Events> fmt::Debug for Broadcast<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("rooms", &self.selector.rooms)
            .field("sockets", &self.selector.sockets)
            .field("except", &self.selector.except)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<In: Events, Out: Events> Broadcast<In, Out> {
    pub(crate) fn new(registry: Weak<Registry<Socket<In, Out>>>) -> Self {
        Broadcast {
            registry,
            selector: Selector::default(),
            timeout: None,
        }
    }

    /// Narrows to the members of `room` (several `to` calls: members of any).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::SocketId;
    /// fn lobby_or_kitchen(io: &Server<Api>) -> Vec<SocketId> {
    ///     io.to("lobby").to("kitchen").sockets().iter().map(|s| s.id()).collect()
    /// }
    /// ```
    pub fn to(mut self, room: impl Into<String>) -> Self {
        self.selector.rooms.push(room.into());
        self
    }

    /// Adds one socket, by id, on whichever node of the cluster it is
    /// (socket.io's `io.to(socketId)`).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::SocketId;
    /// async fn lobby_and_admin(io: &Server<Api>, admin: SocketId) -> netsock::Result<()> {
    ///     io.to("lobby").to_socket(admin).emit_log("heads up".into()).await
    /// }
    /// ```
    pub fn to_socket(mut self, id: SocketId) -> Self {
        self.selector.sockets.push(id);
        self
    }

    /// Leaves out a room's members (`&str`, `String`) or one socket
    /// ([`SocketId`]).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::SocketId;
    /// async fn announce(io: &Server<Api>, author: SocketId) -> netsock::Result<()> {
    ///     io.to("lobby").except("muted").except(author).emit_log("news".into()).await
    /// }
    /// ```
    pub fn except(mut self, who: impl Into<Except>) -> Self {
        self.selector.except.push(who.into());
        self
    }

    /// How long [`request`](Broadcast::request) waits for the replies
    /// (default: the server's request timeout).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::{CallError, SocketId};
    /// async fn quick_poll(io: &Server<Api>) -> Vec<(SocketId, Result<i64, CallError>)> {
    ///     let workers = io.to("workers").timeout(std::time::Duration::from_millis(500));
    ///     workers.request(Api::Sum(vec![1, 2])).await
    /// }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// This node's sockets in the set now, in id order
    /// ([`fetch_sockets`](Broadcast::fetch_sockets) for the whole cluster).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// async fn close_room(io: &Server<Api>, room: &str) {
    ///     for socket in io.to(room).sockets() {
    ///         socket.close().await;
    ///     }
    /// }
    /// ```
    pub fn sockets(&self) -> Vec<Socket<In, Out>> {
        match self.registry.upgrade() {
            Some(registry) => registry.select(&self.selector),
            None => Vec::new(),
        }
    }

    /// Sends `event` to every socket in the set, encoding it once and never
    /// waiting for a recipient (see the type's documentation).
    ///
    /// Fails with [`Error::FrameTooLarge`] if the event is over every
    /// recipient's frame limit (then nobody gets it), and with
    /// [`Error::BroadcastTooLarge`] if it is over some recipients' limit:
    /// those are skipped (each counted in its
    /// [`events_dropped`](crate::Traffic::events_dropped) and told through
    /// its error hook), the others get it.
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
    /// for (name, socket) in [("a", &a), ("b", &b)] {
    ///     io.socket(socket.id()).unwrap().join("lobby");
    ///     let tx = tx.clone();
    ///     socket.on_log(move |line| {
    ///         let _ = tx.send((name, line));
    ///         async {}
    ///     });
    /// }
    /// io.to("lobby").except(a.id()).emit(Api::Log("hi".into())).await?;
    /// assert_eq!(rx.recv().await.unwrap(), ("b", "hi".to_string()));
    /// io.to("empty room").emit_log("nobody hears this".into()).await?; // not an error
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn emit(&self, event: Out) -> Result<()> {
        let Some(registry) = self.registry.upgrade() else {
            return Ok(());
        };
        // Each recipient's limit is checked as it is delivered.
        let frame = frame::encode(&Header::Event, Some(&event), usize::MAX)?;
        let size = frame.len() - frame::PREFIX_LEN;
        let sent = registry.deliver(&self.selector, &frame, event.variant_name());
        // The same bytes, once, for the other nodes' sockets.
        if let Some(cluster) = registry.cluster() {
            cluster.broadcast(&self.selector, &frame, event.variant_index())?;
        }
        match sent.too_large {
            0 => Ok(()),
            n if n == sent.recipients => Err(Error::FrameTooLarge {
                size,
                max: sent.largest_limit,
            }),
            skipped => Err(Error::BroadcastTooLarge {
                size,
                max: sent.smallest_limit,
                skipped,
            }),
        }
    }

    /// Sends the request variant `event` to every socket in the set and
    /// waits, at most the timeout, for all replies: each socket's reply or
    /// error, by socket id. The payload is encoded once.
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
    /// for (socket, bonus) in [(&a, 10), (&b, 20)] {
    ///     io.socket(socket.id()).unwrap().join("workers");
    ///     socket.on_sum(move |numbers| async move { bonus + numbers.iter().sum::<i64>() });
    /// }
    /// let replies = io.to("workers").request::<i64>(Api::Sum(vec![1, 2])).await;
    /// assert_eq!(replies, [(a.id(), Ok(13)), (b.id(), Ok(23))]);
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request<R: DeserializeOwned>(
        &self,
        event: Out,
    ) -> Vec<(SocketId, std::result::Result<R, CallError>)> {
        let recipients = self.sockets();
        let cluster = self.registry.upgrade().and_then(|r| r.cluster().cloned());
        let payload = match Out::VARIANTS.get(event.variant_index() as usize) {
            Some(v) if v.stream || v.upload.is_some() => Err(CallError::StreamProtocol {
                message: format!(
                    "{} {}, which a broadcast cannot ask for",
                    v.name,
                    if v.stream {
                        "answers with a stream"
                    } else {
                        "carries an upload"
                    }
                ),
            }),
            Some(v) if v.is_request() => {
                postcard::to_stdvec(&event).map_err(|e| CallError::Codec(e.to_string()))
            }
            _ => Err(CallError::NotARequest {
                event: event.variant_name().to_owned(),
            }),
        };
        let calls = recipients.into_iter().map(|socket| {
            let socket = match self.timeout {
                Some(t) => socket.timeout(t),
                None => socket,
            };
            let payload = &payload;
            async move {
                let result = match payload {
                    Ok(payload) => {
                        socket
                            .call(|id, timeout_ms, max| {
                                frame::encode_with_payload(
                                    &Header::Request { id, timeout_ms },
                                    payload,
                                    max,
                                )
                            })
                            .await
                    }
                    Err(e) => Err(e.clone()),
                };
                (socket.id(), result)
            }
        });
        let local = futures_util::future::join_all(calls);
        let (Some(cluster), Ok(payload)) = (cluster, &payload) else {
            return local.await;
        };
        // The other nodes' sockets, at the same time.
        let remote = cluster.call(&self.selector, payload, self.timeout);
        let (mut replies, remote) = futures_util::future::join(local, remote).await;
        match remote {
            Ok(remote) => replies.extend(remote.into_iter().map(|(id, reply)| {
                let decoded = reply.and_then(|payload| {
                    postcard::from_bytes(&payload).map_err(|e| {
                        let ty = std::any::type_name::<R>();
                        CallError::Codec(format!("cannot decode the reply as {ty}: {e}"))
                    })
                });
                (id, decoded)
            })),
            Err(error) => {
                tracing::warn!(%error, "a request to a room reached this node's sockets only");
            }
        }
        replies.sort_by_key(|(id, _)| *id);
        replies
    }

    /// The sockets in the set on every node of the cluster, with their
    /// rooms, in id order (socket.io's `fetchSockets`). Without an adapter,
    /// this node's. Nodes that do not answer within the adapter's
    /// [`fetch_timeout`](crate::adapter::Adapter::fetch_timeout) are left
    /// out.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// async fn lobby(io: &Server<Api>) -> netsock::Result<Vec<netsock::SocketId>> {
    ///     Ok(io.to("lobby").fetch_sockets().await?.iter().map(|s| s.id).collect())
    /// }
    /// ```
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>> {
        let Some(registry) = self.registry.upgrade() else {
            return Ok(Vec::new());
        };
        let mut sockets = describe(&registry.select(&self.selector));
        if let Some(cluster) = registry.cluster().cloned() {
            drop(registry);
            sockets.extend(cluster.fetch(&self.selector).await?);
            sockets.sort_by_key(|s| s.id);
        }
        Ok(sockets)
    }

    /// Puts every socket in the set, on every node, in `room` (socket.io's
    /// `socketsJoin`). This node's sockets are in it when this returns; the
    /// other nodes' as soon as the message reaches them.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// fn promote(io: &Server<Api>) -> netsock::Result<()> {
    ///     io.to("waiting").join("playing")
    /// }
    /// ```
    pub fn join(&self, room: impl Into<String>) -> Result<()> {
        self.command(Command::Join(vec![room.into()]))
    }

    /// Takes every socket in the set, on every node, out of `room`
    /// (socket.io's `socketsLeave`).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// fn end_game(io: &Server<Api>) -> netsock::Result<()> {
    ///     io.to("playing").leave("playing")
    /// }
    /// ```
    pub fn leave(&self, room: impl Into<String>) -> Result<()> {
        self.command(Command::Leave(vec![room.into()]))
    }

    /// Closes the connection of every socket in the set, on every node
    /// (socket.io's `disconnectSockets`); it returns at once, the sockets
    /// close in the background.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// fn kick(io: &Server<Api>, id: netsock::SocketId) -> netsock::Result<()> {
    ///     io.to_socket(id).close()
    /// }
    /// ```
    pub fn close(&self) -> Result<()> {
        self.command(Command::Disconnect)
    }

    /// Applies `command` to this node's sockets in the set, and sends it to
    /// the other nodes.
    fn command(&self, command: Command) -> Result<()> {
        let Some(registry) = self.registry.upgrade() else {
            return Ok(());
        };
        apply_locally(&registry.select(&self.selector), &command);
        if let Some(cluster) = registry.cluster() {
            cluster.command(&self.selector, command)?;
        }
        Ok(())
    }
}

/// Each socket's id and rooms.
pub(crate) fn describe<In: Events, Out: Events>(sockets: &[Socket<In, Out>]) -> Vec<SocketInfo> {
    sockets
        .iter()
        .map(|s| SocketInfo {
            id: s.id(),
            rooms: s.rooms(),
        })
        .collect()
}

/// Makes these (local) sockets join, leave or disconnect.
pub(crate) fn apply_locally<In: Events, Out: Events>(
    sockets: &[Socket<In, Out>],
    command: &Command,
) {
    for socket in sockets {
        match command {
            Command::Join(rooms) => rooms.iter().for_each(|r| socket.join(r)),
            Command::Leave(rooms) => rooms.iter().for_each(|r| socket.leave(r)),
            Command::Disconnect => {
                let socket = socket.clone();
                tokio::spawn(async move { socket.close().await });
            }
        }
    }
}

impl<In: Events, Out: Events> crate::endpoint::Endpoint for Broadcast<In, Out> {
    type In = In;
    type Out = Out;
}

impl<In: Events, Out: Events> crate::endpoint::Emit<Out> for Broadcast<In, Out> {
    fn emit(&self, event: Out) -> impl std::future::Future<Output = Result<()>> + Send {
        Broadcast::emit(self, event)
    }
}

/// Broadcasts from a server's socket.
impl<In: Events, Out: Events> Socket<In, Out> {
    /// Every other socket of this socket's server (socket.io's
    /// `socket.broadcast`). On a client socket it reaches no one.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// # let io = Server::<Api>::bind(0).await?;
    /// # io.spawn();
    /// io.on_connection(|s: Socket<Api>| async move {
    ///     // Relay each line to every other client.
    ///     let me = s.clone();
    ///     s.on_log(move |line| {
    ///         let me = me.clone();
    ///         async move { me.broadcast().emit_log(line).await.unwrap() }
    ///     });
    ///     Ok(())
    /// });
    /// let alice = Socket::<Api>::connect(io.local_addr()).await?;
    /// let bob = Socket::<Api>::connect(io.local_addr()).await?;
    /// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// bob.on_log(move |line| {
    ///     let _ = tx.send(line);
    ///     async {}
    /// });
    /// alice.emit_log("hi, all".into()).await?;
    /// assert_eq!(rx.recv().await.unwrap(), "hi, all");
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn broadcast(&self) -> Broadcast<In, Out> {
        Broadcast::new(self.registry.clone()).except(self.id())
    }

    /// The other members of `room` (socket.io's `socket.to(room)`).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// /// On the server: relays each line to the sender's room mates.
    /// fn relay(socket: &Socket<Api>) {
    ///     let me = socket.clone();
    ///     socket.on_log(move |line| {
    ///         let me = me.clone();
    ///         async move {
    ///             let _ = me.to("lobby").emit_log(line).await;
    ///         }
    ///     });
    /// }
    /// ```
    pub fn to(&self, room: impl Into<String>) -> Broadcast<In, Out> {
        self.broadcast().to(room)
    }
}
