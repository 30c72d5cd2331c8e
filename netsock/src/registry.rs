//! The registry of a server's sockets and rooms: who is connected, who is in
//! which room, which sockets a [`Selector`] picks (`selector.rs`), and
//! delivering frame bytes to them.
//!
//! It is the one place that knows where sockets are, and so the seam where a
//! multi-process adapter plugs in: sockets, broadcasts and the server hold a
//! handle to it, never to each other's internals. Rooms are kept in step
//! with the list of connected sockets, so that no room outlives its members.
//! Delivery never waits: a recipient whose queue is full, or whose frame
//! limit the frame is over, is skipped and told ([`Member::missed`]).
//!
//! A server with an adapter also holds its [`Cluster`] here: a broadcast
//! reaches this registry's sockets, then the cluster's other nodes, which
//! deliver the same bytes to theirs through their own registry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::adapter::Cluster;
use crate::conn::{QueueError, SocketId};
use crate::error::MissReason;
use crate::selector::{Except, Selector};
use crate::sync::lock;
use crate::wire::frame::PREFIX_LEN;

/// What the registry needs of a socket to deliver to it.
pub(crate) trait Member: Clone {
    /// The largest frame body its peer takes.
    fn max_out(&self) -> usize;
    /// Queues a frame without waiting.
    fn offer(&self, frame: &[u8]) -> Result<(), QueueError>;
    /// Counts and reports an event it did not get.
    fn missed(&self, event: &'static str, why: MissReason);
}

/// What one delivery did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Sockets the selector picked.
    pub(crate) recipients: usize,
    /// Of those, the ones skipped because the frame is over their limit...
    pub(crate) too_large: usize,
    /// ...the smallest such limit, and the largest limit of all recipients.
    pub(crate) smallest_limit: usize,
    pub(crate) largest_limit: usize,
}

/// A server's sockets (of any type `S`) and their rooms, under one lock;
/// and the cluster the server is a node of, if any.
pub(crate) struct Registry<S> {
    state: Mutex<State<S>>,
    cluster: Option<Arc<Cluster>>,
}

struct State<S> {
    sockets: BTreeMap<SocketId, S>,
    rooms: HashMap<String, BTreeSet<SocketId>>,
    joined: HashMap<SocketId, BTreeSet<String>>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Registry::new(None)
    }
}

impl<S> Registry<S> {
    /// An empty registry, of a node of `cluster` if given.
    pub(crate) fn new(cluster: Option<Arc<Cluster>>) -> Self {
        Registry {
            state: Mutex::new(State {
                sockets: BTreeMap::new(),
                rooms: HashMap::new(),
                joined: HashMap::new(),
            }),
            cluster,
        }
    }

    /// The cluster this server is a node of (none without an adapter).
    pub(crate) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }
}

impl<S: Member> Registry<S> {
    /// Lists a socket, if `admit` (run under the registry's lock, so that
    /// nothing reaches the socket before what `admit` queues) says yes.
    pub(crate) fn insert_if(&self, id: SocketId, socket: S, admit: impl FnOnce() -> bool) -> bool {
        let mut state = lock(&self.state);
        if !admit() {
            return false;
        }
        state.sockets.insert(id, socket);
        true
    }

    /// Removes a disconnected socket from the list and from all its rooms.
    pub(crate) fn remove(&self, id: SocketId) {
        let mut state = lock(&self.state);
        state.sockets.remove(&id);
        for room in state.joined.remove(&id).unwrap_or_default() {
            state.leave_room(id, &room);
        }
    }

    /// How many sockets are listed.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).sockets.len()
    }

    /// The socket with this id, if listed.
    pub(crate) fn get(&self, id: SocketId) -> Option<S> {
        lock(&self.state).sockets.get(&id).cloned()
    }

    /// Puts a listed socket in a room; false if it is no longer listed.
    pub(crate) fn join(&self, id: SocketId, room: &str) -> bool {
        let mut state = lock(&self.state);
        if !state.sockets.contains_key(&id) {
            return false;
        }
        state.rooms.entry(room.to_owned()).or_default().insert(id);
        state.joined.entry(id).or_default().insert(room.to_owned());
        true
    }

    /// Takes a socket out of a room, dropping the room when it empties.
    pub(crate) fn leave(&self, id: SocketId, room: &str) {
        let mut state = lock(&self.state);
        state.leave_room(id, room);
        if let Some(rooms) = state.joined.get_mut(&id) {
            rooms.remove(room);
            if rooms.is_empty() {
                state.joined.remove(&id);
            }
        }
    }

    /// The rooms a socket is in, sorted.
    pub(crate) fn rooms_of(&self, id: SocketId) -> Vec<String> {
        lock(&self.state)
            .joined
            .get(&id)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Names of the rooms that have members, sorted.
    pub(crate) fn room_names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.state).rooms.keys().cloned().collect();
        names.sort();
        names
    }

    /// The sockets `selector` picks, in id order.
    pub(crate) fn select(&self, selector: &Selector) -> Vec<S> {
        let state = lock(&self.state);
        if selector.rooms.is_empty() && selector.sockets.is_empty() {
            // Everyone but the exceptions: one pass over the sockets, no
            // look-up per id (a broadcast to all is the common case).
            let excepted = |id: &SocketId| {
                selector.except.iter().any(|except| match except {
                    Except::Socket(out) => out == id,
                    Except::Room(room) => state.rooms.get(room).is_some_and(|m| m.contains(id)),
                })
            };
            let mut picked = Vec::with_capacity(state.sockets.len());
            picked.extend(
                state
                    .sockets
                    .iter()
                    .filter(|(id, _)| !excepted(id))
                    .map(|(_, socket)| socket.clone()),
            );
            return picked;
        }
        let mut ids: Vec<SocketId> = if selector.rooms.is_empty() && selector.sockets.is_empty() {
            state.sockets.keys().copied().collect()
        } else {
            let mut ids: Vec<SocketId> = selector
                .rooms
                .iter()
                .flat_map(|room| state.members(room))
                .chain(selector.sockets.iter().copied())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        for except in &selector.except {
            match except {
                Except::Socket(id) => ids.retain(|i| i != id),
                Except::Room(room) => {
                    let out: BTreeSet<SocketId> = state.members(room).collect();
                    ids.retain(|i| !out.contains(i));
                }
            }
        }
        ids.iter()
            .filter_map(|id| state.sockets.get(id).cloned())
            .collect()
    }

    /// Queues `frame` (a whole frame, prefix included) for every socket
    /// `selector` picks, never waiting; a socket whose limit the frame is
    /// over, or whose queue is full, misses it and is told why.
    pub(crate) fn deliver(
        &self,
        selector: &Selector,
        frame: &Bytes,
        event: &'static str,
    ) -> Delivery {
        let size = frame.len() - PREFIX_LEN;
        let recipients = self.select(selector);
        let mut delivery = Delivery {
            recipients: recipients.len(),
            smallest_limit: usize::MAX,
            ..Delivery::default()
        };
        for socket in recipients {
            let max = socket.max_out();
            delivery.largest_limit = delivery.largest_limit.max(max);
            if size > max {
                delivery.too_large += 1;
                delivery.smallest_limit = delivery.smallest_limit.min(max);
                socket.missed(event, MissReason::FrameTooLarge { size, max });
                continue;
            }
            match socket.offer(frame) {
                Ok(()) | Err(QueueError::Closed) => {}
                Err(QueueError::Full) => socket.missed(event, MissReason::QueueFull),
            }
        }
        delivery
    }
}

impl<S> State<S> {
    fn members(&self, room: &str) -> impl Iterator<Item = SocketId> + '_ {
        self.rooms.get(room).into_iter().flatten().copied()
    }

    /// Takes `id` out of `room`'s members, dropping the room when it empties.
    fn leave_room(&mut self, id: SocketId, room: &str) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(&id);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A member that records what it got and missed.
    #[derive(Clone)]
    struct Probe {
        max: usize,
        full: bool,
        got: Arc<Mutex<Vec<usize>>>,
        missed: Arc<Mutex<Vec<String>>>,
    }

    impl Probe {
        fn new(max: usize, full: bool) -> Self {
            Probe {
                max,
                full,
                got: Arc::default(),
                missed: Arc::default(),
            }
        }
    }

    impl Member for Probe {
        fn max_out(&self) -> usize {
            self.max
        }
        fn offer(&self, frame: &[u8]) -> Result<(), QueueError> {
            if self.full {
                return Err(QueueError::Full);
            }
            lock(&self.got).push(frame.len());
            Ok(())
        }
        fn missed(&self, event: &'static str, why: MissReason) {
            lock(&self.missed).push(format!("{event}: {why}"));
        }
    }

    fn registry(members: &[Probe]) -> Registry<Probe> {
        let registry = Registry::default();
        for (i, probe) in members.iter().enumerate() {
            assert!(registry.insert_if(SocketId(i as u64 + 1), probe.clone(), || true));
        }
        registry
    }

    #[test]
    fn rooms_follow_their_members() {
        let registry = registry(&[Probe::new(64, false), Probe::new(64, false)]);
        assert!(registry.join(SocketId(1), "a"));
        assert!(registry.join(SocketId(2), "a"));
        assert!(registry.join(SocketId(2), "b"));
        assert!(!registry.join(SocketId(9), "a"), "not listed");
        assert_eq!(registry.room_names(), ["a", "b"]);
        assert_eq!(registry.rooms_of(SocketId(2)), ["a", "b"]);
        registry.leave(SocketId(2), "b");
        assert_eq!(registry.room_names(), ["a"]);
        registry.remove(SocketId(1));
        registry.remove(SocketId(2));
        assert!(registry.room_names().is_empty());
        assert_eq!(registry.len(), 0);
        assert!(!registry.insert_if(SocketId(3), Probe::new(1, false), || false));
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn selectors_pick_rooms_minus_exceptions() {
        let registry = registry(&[
            Probe::new(64, false),
            Probe::new(64, false),
            Probe::new(64, false),
        ]);
        registry.join(SocketId(1), "a");
        registry.join(SocketId(2), "a");
        registry.join(SocketId(3), "b");
        registry.join(SocketId(2), "muted");
        let pick = |rooms: &[&str], except: Vec<Except>| {
            let selector = Selector {
                rooms: rooms.iter().map(|r| r.to_string()).collect(),
                sockets: Vec::new(),
                except,
            };
            registry.select(&selector).len()
        };
        assert_eq!(pick(&[], vec![]), 3);
        assert_eq!(pick(&["a", "b"], vec![]), 3);
        assert_eq!(pick(&["a"], vec![Except::Room("muted".into())]), 1);
        assert_eq!(pick(&[], vec![Except::Socket(SocketId(3))]), 2);
        assert_eq!(pick(&["nobody"], vec![]), 0);
    }

    #[test]
    fn delivery_skips_and_reports_who_cannot_take_the_frame() {
        let (fits, small, full) = (
            Probe::new(64, false),
            Probe::new(8, false),
            Probe::new(64, true),
        );
        let registry = registry(&[fits.clone(), small.clone(), full.clone()]);
        let frame = Bytes::from(vec![0u8; PREFIX_LEN + 20]);
        let delivery = registry.deliver(&Selector::default(), &frame, "Tick");
        assert_eq!(
            delivery,
            Delivery {
                recipients: 3,
                too_large: 1,
                smallest_limit: 8,
                largest_limit: 64,
            }
        );
        assert_eq!(*lock(&fits.got), [PREFIX_LEN + 20]);
        assert!(lock(&small.missed)[0].contains("exceeds the limit of 8"));
        assert!(lock(&full.missed)[0].contains("queue is full"));
    }
}
