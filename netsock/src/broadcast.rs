//! [`Broadcast`]: a set of a server's sockets chosen by room, to emit to (or
//! request from) all at once.

use std::fmt;
use std::sync::Weak;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::mpsc::error::TrySendError;

use crate::conn::lock;
use crate::frame::{self, Header};
use crate::server::Inner;
use crate::{CallError, Error, Events, Result, Socket, SocketId};

/// Who a [`Broadcast`] leaves out: a room's members, or one socket.
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
    pub fn to(mut self, room: impl Into<String>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Leaves out a room's members (`&str`, `String`) or one socket
    /// ([`SocketId`]).
    pub fn except(mut self, who: impl Into<Except>) -> Self {
        self.except.push(who.into());
        self
    }

    /// How long [`request`](Broadcast::request) waits for the replies
    /// (default: the server's request timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The sockets in the set now, in id order.
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
    /// recipient's limit; a recipient with a smaller limit than others is
    /// skipped and told through its error hook.
    pub async fn emit(&self, event: Out) -> Result<()> {
        let recipients = self.sockets();
        let Some(max) = recipients.iter().map(Socket::max_out).max() else {
            return Ok(());
        };
        let frame = frame::encode(&Header::Event, Some(&event), max)?;
        let size = frame.len() - frame::PREFIX_LEN;
        let name = event.variant_name();
        for socket in recipients {
            if size > socket.max_out() {
                socket.report(Error::FrameTooLarge {
                    size,
                    max: socket.max_out(),
                });
                continue;
            }
            match socket.try_queue(frame.clone()) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(_)) => socket.dropped(Error::QueueFull { event: name }),
            }
        }
        Ok(())
    }

    /// Sends the request variant `event` to every socket in the set and
    /// waits, at most the timeout, for all replies: each socket's reply or
    /// error, by socket id. The payload is encoded once.
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
