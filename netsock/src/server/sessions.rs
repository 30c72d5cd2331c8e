//! A server's recoverable sessions: which socket each token resumes, and
//! how many sessions were resumed or lost.
//!
//! A token is good for one resume: taking it out is how a resume starts,
//! and the resumed socket gets a new one. So a token seen once (replayed)
//! is unknown the second time, and a guessed one is unknown too.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::conn::session::new_token;
use crate::conn::SocketId;
use crate::sync::lock;
use crate::wire::frame::SessionToken;

/// How many ended sessions a server remembers, to tell a client that comes
/// back too late what it lost.
const BURIED: usize = 4096;

#[derive(Default)]
pub(crate) struct Sessions {
    tokens: Mutex<Tokens>,
    /// Sessions that ended unresumed, newest last: their counts, by token.
    buried: Mutex<Buried>,
    pub(crate) resumed: AtomicU64,
    pub(crate) lost: AtomicU64,
}

/// Ended sessions' (received, sent) counts by token, and the tokens oldest
/// first.
type Buried = (HashMap<SessionToken, (u64, u64)>, VecDeque<SessionToken>);

#[derive(Default)]
struct Tokens {
    by_token: HashMap<SessionToken, SocketId>,
    by_id: HashMap<SocketId, SessionToken>,
}

impl Sessions {
    /// A new token for socket `id`'s session, replacing the one it had.
    pub(crate) fn grant(&self, id: SocketId) -> std::io::Result<SessionToken> {
        let token = new_token()?;
        let mut t = lock(&self.tokens);
        if let Some(old) = t.by_id.insert(id, token) {
            t.by_token.remove(&old);
        }
        t.by_token.insert(token, id);
        Ok(token)
    }

    /// The socket `token` resumes, if any; the token is used up.
    pub(crate) fn take(&self, token: &SessionToken) -> Option<SocketId> {
        let mut t = lock(&self.tokens);
        let id = t.by_token.remove(token)?;
        t.by_id.remove(&id);
        Some(id)
    }

    /// Gives `token` back to socket `id` (a resume that was not its
    /// owner's), unless the socket got another meanwhile.
    pub(crate) fn restore(&self, token: SessionToken, id: SocketId) {
        let mut t = lock(&self.tokens);
        if let std::collections::hash_map::Entry::Vacant(slot) = t.by_id.entry(id) {
            slot.insert(token);
            t.by_token.insert(token, id);
        }
    }

    /// Socket `id` ended: its session with it.
    pub(crate) fn forget(&self, id: SocketId) {
        let mut t = lock(&self.tokens);
        if let Some(token) = t.by_id.remove(&id) {
            t.by_token.remove(&token);
        }
    }

    /// A session ended with `token` its newest: remember how many numbered
    /// frames it had received and sent.
    pub(crate) fn bury(&self, token: SessionToken, received: u64, sent: u64) {
        let mut buried = lock(&self.buried);
        let (counts, order) = &mut *buried;
        if counts.insert(token, (received, sent)).is_none() {
            order.push_back(token);
        }
        while order.len() > BURIED {
            if let Some(oldest) = order.pop_front() {
                counts.remove(&oldest);
            }
        }
    }

    /// The counts of the ended session `token` named, if remembered.
    pub(crate) fn unearth(&self, token: &SessionToken) -> Option<(u64, u64)> {
        lock(&self.buried).0.remove(token)
    }

    pub(crate) fn count_resumed(&self) {
        self.resumed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_lost(&self) {
        self.lost.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_resumes_once_and_is_replaced() {
        let sessions = Sessions::default();
        let first = sessions.grant(SocketId(1)).unwrap();
        assert_eq!(sessions.take(&first), Some(SocketId(1)));
        assert_eq!(sessions.take(&first), None); // replayed
        let second = sessions.grant(SocketId(1)).unwrap();
        let third = sessions.grant(SocketId(1)).unwrap();
        assert_eq!(sessions.take(&second), None); // replaced
        sessions.forget(SocketId(1));
        assert_eq!(sessions.take(&third), None); // ended
        assert_eq!(sessions.take(&SessionToken([0; 16])), None); // forged
        sessions.bury(third, 5, 7);
        assert_eq!(sessions.unearth(&third), Some((5, 7)));
        assert_eq!(sessions.unearth(&third), None);
    }
}
