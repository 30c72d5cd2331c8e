//! Which sockets a broadcast picks: [`Selector`] (rooms, sockets by id) and
//! [`Except`] (who is left out). Plain data, below the registry that reads
//! it and the cluster adapter that carries it between nodes.

use crate::conn::SocketId;

/// Who a [`Broadcast`](crate::Broadcast) leaves out: a room's members, or
/// one socket.
///
/// ```
/// use netsock::{Except, SocketId};
/// assert_eq!(Except::from("muted"), Except::Room("muted".into()));
/// assert_eq!(Except::from(SocketId(3)), Except::Socket(SocketId(3)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Which sockets: every one, or the members of some rooms and some sockets
/// by id; minus some rooms or sockets.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Selector {
    /// The rooms whose members are picked; none (and no `sockets`): every
    /// socket.
    pub(crate) rooms: Vec<String>,
    /// Sockets picked by id, besides the rooms' members.
    pub(crate) sockets: Vec<SocketId>,
    /// Who is left out.
    pub(crate) except: Vec<Except>,
}
