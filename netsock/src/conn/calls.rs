//! A connection's table of calls waiting for their reply.
//!
//! A slot per call, reused once the call is done, so a call costs no
//! allocation once the table has grown to the number in flight. A call's id
//! on the wire is its slot's index and the slot's generation, which changes
//! at each reuse: a late reply to a call that gave up never reaches the next
//! call in that slot.
//!
//! Timeouts use one timer per connection, not one per call: each slot keeps
//! its deadline, and a [`sweep`] task, started by the first call, wakes at
//! the earliest one and fails the calls whose time is up. Calls made with
//! the same timeout have later deadlines than those before them, so the
//! timer rarely moves.

use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{CallError, DisconnectReason};
use crate::sync::lock;

/// A reply payload, or why there is none.
pub(crate) type Reply = Result<bytes::Bytes, CallError>;

#[derive(Default)]
pub(crate) struct Calls {
    table: Mutex<Table>,
    /// Wakes the sweeper: an earlier deadline, or the end.
    sweeper: Notify,
}

#[derive(Default)]
struct Table {
    /// Set when the connection ended: no call is taken any more.
    closed: Option<DisconnectReason>,
    slots: Vec<Slot>,
    /// Indexes of the free slots.
    free: Vec<u32>,
    /// Calls still waiting for their reply.
    waiting: usize,
    /// When the sweeper wakes next, if a call is waiting.
    next_sweep: Option<Instant>,
    /// The sweeper task was started.
    sweeping: bool,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    state: State,
    /// When the call times out (none: never), and its timeout.
    deadline: Option<Instant>,
    timeout: Duration,
}

#[derive(Default)]
enum State {
    #[default]
    Free,
    Waiting(Option<Waker>),
    Done(Reply),
}

fn split(id: u64) -> (usize, u32) {
    ((id & u64::from(u32::MAX)) as usize, (id >> 32) as u32)
}

impl Table {
    /// The slot `id` names, if that call still holds it.
    fn slot(&mut self, id: u64) -> Option<&mut Slot> {
        let (index, generation) = split(id);
        self.slots
            .get_mut(index)
            .filter(|s| s.generation == generation && !matches!(s.state, State::Free))
    }

    fn release(&mut self, id: u64) {
        let (index, _) = split(id);
        if let Some(slot) = self.slots.get_mut(index) {
            if let State::Waiting(_) = std::mem::take(&mut slot.state) {
                self.waiting -= 1;
            }
            self.free.push(index as u32);
        }
    }
}

/// What [`Calls::register`] gives: the call's id, whether the caller must
/// start the connection's [`sweep`] task (at its first call), and whether no
/// other call was waiting.
pub(crate) struct Registered {
    pub(crate) id: u64,
    pub(crate) start_sweeper: bool,
    pub(crate) alone: bool,
}

impl Calls {
    /// Takes a slot for a new call that times out after `timeout`, and gives
    /// its id, unless the connection has ended.
    pub(crate) fn register(&self, timeout: Duration) -> Result<Registered, CallError> {
        // Read before the lock, so that callers do not wait on each other's
        // clock reads.
        let deadline = Instant::now().checked_add(timeout);
        let mut t = lock(&self.table);
        if let Some(reason) = &t.closed {
            return Err(CallError::Disconnected(reason.clone()));
        }
        let start_sweeper = !std::mem::replace(&mut t.sweeping, true);
        let earlier = match (deadline, t.next_sweep) {
            (Some(d), Some(next)) => d < next,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier {
            t.next_sweep = deadline;
        }
        let index = match t.free.pop() {
            Some(index) => index as usize,
            None => {
                t.slots.push(Slot::default());
                t.slots.len() - 1
            }
        };
        let alone = t.waiting == 0;
        t.waiting += 1;
        let slot = &mut t.slots[index];
        // Generations start at 1, so no id is 0.
        slot.generation = slot.generation.wrapping_add(1).max(1);
        slot.state = State::Waiting(None);
        slot.deadline = deadline;
        slot.timeout = timeout;
        let id = u64::from(slot.generation) << 32 | index as u64;
        drop(t);
        if earlier && !start_sweeper {
            self.sweeper.notify_one();
        }
        Ok(Registered {
            id,
            start_sweeper,
            alone,
        })
    }

    /// Fails the calls whose deadline has passed with
    /// [`CallError::Timeout`], and sets when to look again.
    fn expire(&self) {
        let now = Instant::now();
        let mut wakers = Vec::new();
        let mut t = lock(&self.table);
        let mut next: Option<Instant> = None;
        let mut expired = 0;
        for slot in &mut t.slots {
            let (State::Waiting(waker), Some(deadline)) = (&mut slot.state, slot.deadline) else {
                continue;
            };
            if deadline <= now {
                wakers.extend(waker.take());
                let after = slot.timeout;
                slot.state = State::Done(Err(CallError::Timeout { after }));
                expired += 1;
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        t.waiting -= expired;
        t.next_sweep = next;
        drop(t);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// The reply to call `id`, once it is there; the slot is then free.
    pub(crate) fn poll_reply(&self, id: u64, cx: &mut Context<'_>) -> Poll<Reply> {
        let mut t = lock(&self.table);
        let closed = t.closed.clone();
        let Some(slot) = t.slot(id) else {
            // Not registered, or already taken: cannot happen to a caller
            // that polls its own call until it is ready.
            let reason = closed.unwrap_or(DisconnectReason::ClosedLocally);
            return Poll::Ready(Err(CallError::Disconnected(reason)));
        };
        match &mut slot.state {
            State::Waiting(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Done(_) => {
                let State::Done(reply) = std::mem::take(&mut slot.state) else {
                    unreachable!("matched Done above")
                };
                let (index, _) = split(id);
                t.free.push(index as u32);
                Poll::Ready(reply)
            }
            State::Free => unreachable!("slot() skips free slots"),
        }
    }

    /// Hands the reply to call `id`, if it is still waiting; false if not
    /// (it gave up, or the id is unknown).
    pub(crate) fn complete(&self, id: u64, reply: Reply) -> bool {
        let mut t = lock(&self.table);
        let Some(slot) = t.slot(id) else {
            return false;
        };
        let State::Waiting(waker) = &mut slot.state else {
            // A second reply to the same call: keep the first.
            return false;
        };
        let waker = waker.take();
        slot.state = State::Done(reply);
        t.waiting -= 1;
        drop(t);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Frees the slot of a call that stops waiting; true if it was still
    /// waiting for its reply.
    pub(crate) fn forget(&self, id: u64) -> bool {
        let mut t = lock(&self.table);
        let waiting = match t.slot(id) {
            Some(slot) => matches!(slot.state, State::Waiting(_)),
            None => return false,
        };
        t.release(id);
        waiting
    }

    /// The connection ended: every waiting call fails with `reason`, and
    /// no new call is taken.
    pub(crate) fn close(&self, reason: &DisconnectReason) {
        let mut wakers = Vec::new();
        let mut t = lock(&self.table);
        t.closed = Some(reason.clone());
        for slot in &mut t.slots {
            if let State::Waiting(waker) = &mut slot.state {
                wakers.extend(waker.take());
                slot.state = State::Done(Err(CallError::Disconnected(reason.clone())));
            }
        }
        t.waiting = 0;
        drop(t);
        wakers.into_iter().for_each(Waker::wake);
        self.sweeper.notify_one();
    }

    /// Why the connection ended, once it has.
    pub(crate) fn closed(&self) -> Option<DisconnectReason> {
        lock(&self.table).closed.clone()
    }

    /// Calls waiting for their reply.
    pub(crate) fn waiting(&self) -> usize {
        lock(&self.table).waiting
    }
}

/// A connection's call timer: wakes at the earliest deadline of the calls
/// waiting, fails those whose time is up, until the connection ends.
pub(crate) async fn sweep(calls: &Calls) {
    loop {
        let woken = calls.sweeper.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let next = {
            let t = lock(&calls.table);
            if t.closed.is_some() {
                return;
            }
            t.next_sweep
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => calls.expire(),
                    () = woken => {}
                }
            }
            None => woken.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test]
    async fn replies_reach_their_call_and_stale_ids_are_ignored() {
        let calls = Calls::default();
        let a = calls.register(Duration::from_secs(60)).unwrap().id;
        let b = calls.register(Duration::from_secs(60)).unwrap().id;
        assert_ne!(a, b);
        assert_eq!(calls.waiting(), 2);
        assert!(calls.complete(b, Ok(bytes::Bytes::from_static(b"b"))));
        assert!(!calls.complete(b, Ok(bytes::Bytes::from_static(b"again"))));
        let reply = poll_fn(|cx| calls.poll_reply(b, cx)).await.unwrap();
        assert_eq!(&reply[..], b"b");
        // `a` gives up; its slot is reused by `c` under a new id, and a late
        // reply to `a` does not reach `c`.
        assert!(calls.forget(a));
        let c = calls.register(Duration::from_secs(60)).unwrap().id;
        assert!(c != a && c != b && [split(a).0, split(b).0].contains(&split(c).0));
        assert!(!calls.complete(a, Ok(bytes::Bytes::new())));
        assert_eq!(calls.waiting(), 1);
        calls.close(&DisconnectReason::PeerHungUp);
        let failed = poll_fn(|cx| calls.poll_reply(c, cx)).await;
        assert!(matches!(
            failed,
            Err(CallError::Disconnected(DisconnectReason::PeerHungUp))
        ));
        assert!(matches!(
            calls.register(Duration::ZERO),
            Err(CallError::Disconnected(_))
        ));
        assert_eq!(calls.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_time_out_at_their_own_deadline() {
        let calls = std::sync::Arc::new(Calls::default());
        let slow = calls.register(Duration::from_secs(10)).unwrap();
        assert!(slow.start_sweeper);
        tokio::spawn({
            let calls = calls.clone();
            async move { sweep(&calls).await }
        });
        let fast = calls.register(Duration::from_secs(1)).unwrap();
        assert!(!fast.start_sweeper);
        let never = calls.register(Duration::MAX).unwrap().id;
        let start = Instant::now();
        let failed = poll_fn(|cx| calls.poll_reply(fast.id, cx)).await;
        assert!(
            matches!(failed, Err(CallError::Timeout { after }) if after == Duration::from_secs(1))
        );
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        let failed = poll_fn(|cx| calls.poll_reply(slow.id, cx)).await;
        assert!(matches!(failed, Err(CallError::Timeout { .. })));
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(calls.waiting(), 1);
        assert!(calls.complete(never, Ok(bytes::Bytes::new())));
    }

    /// A call is `alone` when no other call waits: its caller then writes
    /// the request through itself. Only the first call starts the sweeper.
    #[tokio::test]
    async fn a_call_is_alone_only_while_no_other_call_waits() {
        let calls = Calls::default();
        let a = calls.register(Duration::from_secs(60)).unwrap();
        assert!(a.alone && a.start_sweeper);
        let b = calls.register(Duration::from_secs(60)).unwrap();
        assert!(!b.alone && !b.start_sweeper);
        assert!(calls.complete(a.id, Ok(bytes::Bytes::new())));
        poll_fn(|cx| calls.poll_reply(a.id, cx)).await.unwrap();
        let c = calls.register(Duration::from_secs(60)).unwrap();
        assert!(!c.alone, "b still waits");
        assert!(calls.forget(b.id));
        assert!(calls.forget(c.id));
        let d = calls.register(Duration::from_secs(60)).unwrap();
        assert!(d.alone && !d.start_sweeper);
    }

    /// What a caller that stops waiting (its future dropped) relies on to
    /// decide whether to send `Cancel`: `forget` says true only while the
    /// call still waits; a reply that arrived just before is dropped with
    /// the slot, and nothing is to be cancelled. Either way the slot is
    /// free for the next call, under a new id.
    #[tokio::test]
    async fn forgetting_a_call_frees_its_slot_and_says_whether_to_cancel() {
        let calls = Calls::default();
        let waiting = calls.register(Duration::from_secs(60)).unwrap().id;
        // Polled once, then dropped: still waiting.
        let polled =
            futures_util::FutureExt::now_or_never(poll_fn(|cx| calls.poll_reply(waiting, cx)));
        assert!(polled.is_none());
        assert!(calls.forget(waiting));
        assert!(!calls.forget(waiting), "forgotten already");
        assert_eq!(calls.waiting(), 0);

        let answered = calls.register(Duration::from_secs(60)).unwrap().id;
        assert_ne!(answered, waiting);
        assert_eq!(split(answered).0, split(waiting).0, "the slot is reused");
        assert!(calls.complete(answered, Ok(bytes::Bytes::from_static(b"late"))));
        assert!(!calls.forget(answered), "it had its reply: no Cancel");
        assert_eq!(calls.waiting(), 0);
        let next = calls.register(Duration::from_secs(60)).unwrap().id;
        assert_eq!(split(next).0, split(answered).0, "the slot is free again");
        // A reply to a forgotten call does not reach the slot's new call.
        assert!(!calls.complete(answered, Ok(bytes::Bytes::new())));
        assert!(!calls.complete(waiting, Ok(bytes::Bytes::new())));
        assert_eq!(calls.waiting(), 1);
    }

    mod on_a_connection {
        //! The call table of a live connection: its reader completes calls
        //! with the peer's replies, and its end fails those still waiting.

        use std::future::poll_fn;
        use std::time::Duration;

        use tokio::time::Instant;

        use super::super::sweep;
        use crate::conn::testing::{config, connect, reply, within};
        use crate::error::{CallError, DisconnectReason};
        use crate::wire::frame::{self, Header, RemoteError};

        /// A `Response` completes its call with the payload, a `Failure`
        /// with the matching `CallError`; replies to ids nobody waits for
        /// (unknown, or answered already) are ignored and the connection
        /// goes on.
        #[tokio::test(start_paused = true)]
        async fn the_peers_replies_complete_their_calls() {
            let mut conn = connect(config(), 4096);
            let calls = &conn.shared.calls;
            let ok = calls.register(Duration::from_secs(60)).unwrap().id;
            let failed = calls.register(Duration::from_secs(60)).unwrap().id;
            let response = frame::encode(&Header::Response { id: ok }, Some(&42u32), 1024);
            conn.peer.write(&response.unwrap()).await;
            let error = RemoteError::NoHandler {
                event: "Req".into(),
            };
            conn.peer
                .send(Header::Failure { id: failed, error }, None)
                .await;
            let again = frame::encode(&Header::Response { id: ok }, Some(&7u32), 1024);
            conn.peer.write(&again.unwrap()).await;
            conn.peer.send(Header::Response { id: 12345 }, None).await;
            let payload = within(poll_fn(|cx| calls.poll_reply(ok, cx))).await;
            assert_eq!(reply::<u32>(&payload.unwrap()), 42);
            let failure = within(poll_fn(|cx| calls.poll_reply(failed, cx))).await;
            assert_eq!(
                failure,
                Err(CallError::NoHandler {
                    event: "Req".into()
                })
            );
            conn.peer.send(Header::Ping, None).await;
            assert_eq!(conn.peer.recv().await.0, Header::Pong);
            assert_eq!(calls.waiting(), 0);
        }

        /// When the connection ends, calls still waiting fail with
        /// `Disconnected` and the reason, their callers are woken, new
        /// calls are refused, and the sweeper stops; a reply that arrived
        /// before the end is kept.
        #[tokio::test(start_paused = true)]
        async fn pending_calls_fail_with_disconnected_when_the_connection_ends() {
            let mut conn = connect(config(), 4096);
            let shared = conn.shared.clone();
            let answered = shared.calls.register(Duration::from_secs(60)).unwrap();
            assert!(answered.start_sweeper);
            let sweeper = tokio::spawn({
                let shared = shared.clone();
                async move { sweep(&shared.calls).await }
            });
            let pending = shared.calls.register(Duration::from_secs(60)).unwrap().id;
            let caller = tokio::spawn({
                let shared = shared.clone();
                async move { poll_fn(|cx| shared.calls.poll_reply(pending, cx)).await }
            });
            let response = frame::encode(&Header::Response { id: answered.id }, Some(&1u32), 1024);
            conn.peer.write(&response.unwrap()).await;
            conn.peer.send(Header::Ping, None).await;
            assert_eq!(conn.peer.recv().await.0, Header::Pong);
            assert_eq!(shared.metrics().calls_in_flight, 1);
            drop(conn.peer);
            let reason = within(shared.ended()).await;
            assert_eq!(reason, DisconnectReason::PeerHungUp);
            let gone = Err(CallError::Disconnected(DisconnectReason::PeerHungUp));
            assert_eq!(within(caller).await.unwrap(), gone);
            let kept = poll_fn(|cx| shared.calls.poll_reply(answered.id, cx)).await;
            assert_eq!(reply::<u32>(&kept.unwrap()), 1);
            assert_eq!(
                shared.calls.register(Duration::from_secs(60)).err(),
                Some(CallError::Disconnected(DisconnectReason::PeerHungUp))
            );
            assert_eq!(shared.metrics().calls_in_flight, 0);
            within(sweeper).await.unwrap();
        }

        /// On a live connection a call with no reply fails with `Timeout`
        /// at its deadline, exactly; the reply that comes after is ignored,
        /// and the slot's next call gets its own reply.
        #[tokio::test(start_paused = true)]
        async fn a_call_times_out_and_its_late_reply_is_ignored() {
            let mut conn = connect(config(), 4096);
            let shared = conn.shared.clone();
            let start = Instant::now();
            let call = shared.calls.register(Duration::from_secs(3)).unwrap();
            tokio::spawn({
                let shared = shared.clone();
                async move { sweep(&shared.calls).await }
            });
            let failed = within(poll_fn(|cx| shared.calls.poll_reply(call.id, cx))).await;
            assert_eq!(
                failed,
                Err(CallError::Timeout {
                    after: Duration::from_secs(3)
                })
            );
            assert_eq!(start.elapsed(), Duration::from_secs(3));
            let next = shared.calls.register(Duration::from_secs(3)).unwrap().id;
            let late = frame::encode(&Header::Response { id: call.id }, Some(&1u32), 1024);
            conn.peer.write(&late.unwrap()).await;
            let own = frame::encode(&Header::Response { id: next }, Some(&2u32), 1024);
            conn.peer.write(&own.unwrap()).await;
            let payload = within(poll_fn(|cx| shared.calls.poll_reply(next, cx))).await;
            assert_eq!(reply::<u32>(&payload.unwrap()), 2);
            assert_eq!(shared.disconnect_reason(), None);
        }
    }
}
