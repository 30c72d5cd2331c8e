//! The server's room table: which sockets are in which rooms, kept in step
//! with the list of connected sockets so that no room outlives its members.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::SocketId;

/// Connected sockets (of any type `S`) and their rooms, under one lock.
pub(crate) struct Registry<S> {
    pub(crate) sockets: BTreeMap<SocketId, S>,
    rooms: HashMap<String, BTreeSet<SocketId>>,
    joined: HashMap<SocketId, BTreeSet<String>>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Registry {
            sockets: BTreeMap::new(),
            rooms: HashMap::new(),
            joined: HashMap::new(),
        }
    }
}

impl<S> Registry<S> {
    /// Puts a connected socket in a room; false if it is no longer connected.
    pub(crate) fn join(&mut self, id: SocketId, room: &str) -> bool {
        if !self.sockets.contains_key(&id) {
            return false;
        }
        self.rooms.entry(room.to_owned()).or_default().insert(id);
        self.joined.entry(id).or_default().insert(room.to_owned());
        true
    }

    /// Takes a socket out of a room, dropping the room when it empties.
    pub(crate) fn leave(&mut self, id: SocketId, room: &str) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(&id);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
        if let Some(rooms) = self.joined.get_mut(&id) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.joined.remove(&id);
            }
        }
    }

    /// Removes a disconnected socket from the list and from all its rooms.
    pub(crate) fn remove(&mut self, id: SocketId) {
        self.sockets.remove(&id);
        for room in self.joined.remove(&id).unwrap_or_default() {
            if let Some(members) = self.rooms.get_mut(&room) {
                members.remove(&id);
                if members.is_empty() {
                    self.rooms.remove(&room);
                }
            }
        }
    }

    /// The rooms a socket is in.
    pub(crate) fn rooms_of(&self, id: SocketId) -> Vec<String> {
        self.joined
            .get(&id)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Names of the rooms that have members, sorted.
    pub(crate) fn room_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.rooms.keys().cloned().collect();
        names.sort();
        names
    }

    /// The members of a room.
    pub(crate) fn members(&self, room: &str) -> impl Iterator<Item = SocketId> + '_ {
        self.rooms.get(room).into_iter().flatten().copied()
    }
}
