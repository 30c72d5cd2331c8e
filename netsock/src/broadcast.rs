//! [`Broadcast`]: a set of a server's sockets chosen by room, to emit to (or
//! request from) all at once.

use std::fmt;
use std::sync::Weak;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::conn::{lock, QueueError};
use crate::frame::{self, Header};
use crate::server::Inner;
use crate::{CallError, Error, Events, Result, Socket, SocketId};

/// Who a [`Broadcast`] leaves out: a room's members, or one socket.
///
/// ```
/// use netsock::{Except, SocketId};
/// assert_eq!(Except::from("muted"), Except::Room("muted".into()));
/// assert_eq!(Except::from(SocketId(3)), Except::Socket(SocketId(3)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Except {
    /// Every member of this room.
    Room(String),
    /// This socket.
    Socket(SocketId),
}

impl From<&str> for Except {
    fn from(room: &str) -> Self {
        Except::Room(room.to_owned())
    }
}

impl From<String> for Except {
    fn from(room: String) -> Self {
        Except::Room(room)
    }
}

impl From<SocketId> for Except {
    fn from(id: SocketId) -> Self {
        Except::Socket(id)
    }
}

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
/// [`Error::QueueFull`] and counted in [`Socket::dropped_events`]; the sender
/// and the other recipients never wait for it.
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
    server: Weak<Inner<In, Out>>,
    rooms: Vec<String>,
    except: Vec<Except>,
    timeout: Option<Duration>,
}

impl<In: Events, Out: Events> Clone for Broadcast<In, Out> {
    fn clone(&self) -> Self {
        Broadcast {
            server: self.server.clone(),
            rooms: self.rooms.clone(),
            except: self.except.clone(),
            timeout: self.timeout,
        }
    }
}

impl<In: Events, Out: Events> fmt::Debug for Broadcast<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("rooms", &self.rooms)
            .field("except", &self.except)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<In: Events, Out: Events> Broadcast<In, Out> {
    pub(crate) fn new(server: Weak<Inner<In, Out>>) -> Self {
        Broadcast {
            server,
            rooms: Vec::new(),
            except: Vec::new(),
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
        self.rooms.push(room.into());
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
        self.except.push(who.into());
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

    /// The sockets in the set now, in id order.
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
        let Some(server) = self.server.upgrade() else {
            return Vec::new();
        };
        let registry = lock(&server.registry);
        let mut ids: Vec<SocketId> = if self.rooms.is_empty() {
            registry.sockets.keys().copied().collect()
        } else {
            let mut ids: Vec<SocketId> = self
                .rooms
                .iter()
                .flat_map(|r| registry.members(r))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        for except in &self.except {
            match except {
                Except::Socket(id) => ids.retain(|i| i != id),
                Except::Room(room) => {
                    let out: Vec<SocketId> = registry.members(room).collect();
                    ids.retain(|i| !out.contains(i));
                }
            }
        }
        ids.iter()
            .filter_map(|id| registry.sockets.get(id).cloned())
            .collect()
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
    ///     socket.start();
    /// }
    /// io.to("lobby").except(a.id()).emit(Api::Log("hi".into())).await?;
    /// assert_eq!(rx.recv().await.unwrap(), ("b", "hi".to_string()));
    /// io.to("empty room").emit_log("nobody hears this".into()).await?; // not an error
    /// # io.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn emit(&self, event: Out) -> Result<()> {
        let recipients = self.sockets();
        let Some(max) = recipients.iter().map(Socket::max_out).max() else {
            return Ok(());
        };
        let frame = frame::encode(&Header::Event, Some(&event), max)?;
        let size = frame.len() - frame::PREFIX_LEN;
        let name = event.variant_name();
        let mut too_small = None::<(usize, usize)>;
        for socket in recipients {
            if size > socket.max_out() {
                let (skipped, smallest) = too_small.get_or_insert((0, max));
                *skipped += 1;
                *smallest = socket.max_out().min(*smallest);
                socket.dropped(Error::FrameTooLarge {
                    size,
                    max: socket.max_out(),
                });
                continue;
            }
            match socket.try_queue(&frame) {
                Ok(()) | Err(QueueError::Closed) => {}
                Err(QueueError::Full) => socket.dropped(Error::QueueFull { event: name }),
            }
        }
        match too_small {
            None => Ok(()),
            Some((skipped, max)) => Err(Error::BroadcastTooLarge { size, max, skipped }),
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
    ///     socket.start();
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
        let payload = if Out::VARIANTS
            .get(event.variant_index() as usize)
            .is_some_and(|v| v.is_request())
        {
            postcard::to_stdvec(&event).map_err(|e| CallError::Codec(e.to_string()))
        } else {
            Err(CallError::NotARequest {
                event: event.variant_name().to_owned(),
            })
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
        futures_util::future::join_all(calls).await
    }
}

impl<In: Events, Out: Events> crate::Endpoint for Broadcast<In, Out> {
    type In = In;
    type Out = Out;
}

impl<In: Events, Out: Events> crate::Emit<Out> for Broadcast<In, Out> {
    fn emit(&self, event: Out) -> impl std::future::Future<Output = Result<()>> + Send {
        Broadcast::emit(self, event)
    }
}
