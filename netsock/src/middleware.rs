//! Connection middleware: code that sees each client's handshake before the
//! connection is accepted (socket.io's `io.use`).

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::conn::Data;
use crate::handlers::BoxFuture;
use crate::{PeerAddr, PeerCred, SocketId};

pub(crate) type MiddlewareFn =
    Arc<dyn Fn(Handshake) -> BoxFuture<Result<Handshake, String>> + Send + Sync>;

/// A client's handshake, as [`Server::middleware`](crate::Server::middleware)
/// sees it: who connects, from where, with which credentials, and data to
/// attach to the socket if it is accepted.
///
/// ```
/// # use netsock::{Events, Handshake, Server};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Chat { Hi }
/// # async fn f(io: Server<Chat>) {
/// struct User(String);
/// io.middleware(|mut hs: Handshake| async move {
///     match hs.auth::<String>() {
///         Some(token) if token == "let me in" => {
///             hs.insert(User("alice".into()));
///             Ok(hs)
///         }
///         _ => Err("a valid token is required".to_string()),
///     }
/// });
/// # }
/// ```
pub struct Handshake {
    pub(crate) id: SocketId,
    pub(crate) peer: PeerAddr,
    pub(crate) cred: Option<PeerCred>,
    pub(crate) auth: Option<Vec<u8>>,
    pub(crate) data: Data,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("cred", &self.cred)
            .field("auth_len", &self.auth.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// The id the socket will have.
    pub fn id(&self) -> SocketId {
        self.id
    }

    /// The client's address.
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.peer
    }

    /// On a Unix socket, the client process's uid, gid and pid, from the
    /// kernel (not from anything the client sent).
    pub fn peer_cred(&self) -> Option<PeerCred> {
        self.cred
    }

    /// The client's auth payload as sent, if any
    /// ([`SocketBuilder::auth`](crate::SocketBuilder::auth) sends bytes as
    /// they are; [`auth_value`](crate::SocketBuilder::auth_value) encodes a
    /// value with postcard).
    pub fn auth_bytes(&self) -> Option<&[u8]> {
        self.auth.as_deref()
    }

    /// The client's auth payload decoded as `T`; `None` when absent or not
    /// a `T`.
    pub fn auth<T: DeserializeOwned>(&self) -> Option<T> {
        postcard::from_bytes(self.auth.as_deref()?).ok()
    }

    /// Attaches a value to the socket, readable later with
    /// [`Socket::data`](crate::Socket::data) in every handler. One value per
    /// type; a second insert replaces the first.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.data.insert(
            TypeId::of::<T>(),
            Arc::new(value) as Arc<dyn Any + Send + Sync>,
        );
    }
}
