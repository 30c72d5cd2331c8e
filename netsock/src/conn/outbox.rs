//! A connection's outgoing queue: encoded frames appended to one buffer,
//! bounded in frames and in bytes, written to the socket a whole buffer at a
//! time.
//!
//! Senders copy their frame into the buffer under a short lock. Usually the
//! writer task takes the buffer whole (swapping in a spare, so that senders
//! fill one while it writes the other) and writes it with one call; it is
//! woken only when the buffer was empty. A sender that knows no other frame
//! is coming soon (the reader once it has answered every request of a read,
//! a caller with no other call in flight) writes the buffer itself instead,
//! [without waiting](Outbox::write_through): that saves waking a task per
//! round trip. One writer at a time, and bytes leave in the order queued.
//!
//! The frame bound counts the frames waiting in the buffer; the byte bound
//! counts their bytes until they are written, so that a peer that stops
//! reading holds at most that many bytes.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::conn::session::Session;
use crate::conn::QueueError;
use crate::sync::lock;
use crate::transport::WriteHalf;

/// A spare buffer grown past this is replaced by a new one once written, so
/// that one burst does not pin its memory for the life of the connection.
const KEEP_CAPACITY: usize = 64 * 1024;

pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer: frames arrived, a write-through ended, or the end.
    ready: Notify,
    /// Wakes senders waiting for room.
    room: Notify,
    max_frames: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    /// Frames queued and not yet taken: what the frame bound counts.
    buf: BytesMut,
    queued: usize,
    /// An empty buffer to take the place of `buf` when it is taken.
    spare: BytesMut,
    /// Frames, and their bytes, queued or being written: what the byte
    /// bound counts.
    frames: usize,
    bytes: usize,
    /// Someone (the writer task, or a sender writing through) is writing a
    /// batch: nobody else may.
    writing: bool,
    /// The end of a batch a sender could not finish writing: the writer
    /// task writes it before anything else.
    rest: Option<Batch>,
    /// No frame is accepted any more.
    closed: bool,
    /// The last frame queued is a `Close`: the writer stops after it.
    closing: bool,
    /// The connection ended: the writer finishes the frame left in `rest`,
    /// if any, then writes only this frame, if any, and stops.
    last: Option<Option<Bytes>>,
    /// The socket, for senders that write through. The writer task drops
    /// it at the end, so that the last handle's drop shuts the socket down.
    io: Option<Arc<WriteHalf>>,
    /// A recoverable session's log: numbered frames are kept in it as they
    /// are taken to be written.
    log: Option<Arc<Session>>,
    /// Counts the transports of a recoverable session: a batch taken for
    /// one is never finished on the next (the log has its frames).
    generation: u64,
    /// The session's transport broke: frames wait for the next one.
    detached: bool,
}

/// Frames taken from the queue to be written.
pub(crate) struct Batch {
    pub(crate) buf: BytesMut,
    /// Bytes of `buf` already written.
    pub(crate) done: usize,
    pub(crate) frames: usize,
    /// The last frame is a `Close`: the writer stops after it.
    pub(crate) closing: bool,
    /// The transport it was taken for.
    generation: u64,
    /// Its frames count in the bounds (not so for frames sent again after
    /// a resume, which come from the session's log).
    counted: bool,
}

/// What the writer gets from [`Outbox::take`].
pub(crate) enum Take {
    /// Frames to write from `done` on, then to hand back with
    /// [`Outbox::written`].
    Batch(Batch),
    /// The connection ended: write this frame, if any, and stop.
    Last(Option<Bytes>),
    /// Closed, and everything written; or the transport this writer
    /// served is gone.
    Done,
}

impl State {
    /// Takes the queued frames as a batch and marks them being written.
    fn take_batch(&mut self) -> Batch {
        let buf = std::mem::replace(&mut self.buf, std::mem::take(&mut self.spare));
        self.writing = true;
        if let Some(log) = &self.log {
            log.record(&buf);
        }
        Batch {
            buf,
            done: 0,
            frames: std::mem::take(&mut self.queued),
            closing: self.closing && self.closed,
            generation: self.generation,
            counted: true,
        }
    }

    fn push(&mut self, frame: &[u8]) {
        self.buf.extend_from_slice(frame);
        self.queued += 1;
        self.frames += 1;
        self.bytes += frame.len();
    }

    /// Whether a sender that queued into an empty buffer must wake the
    /// writer: not while a batch is being written, whose writer looks again
    /// once done.
    fn must_wake(&self, was_empty: bool) -> bool {
        was_empty && !self.writing && self.rest.is_none()
    }
}

impl Outbox {
    /// An empty queue; `io` lets senders write through (none: never);
    /// `log` keeps a recoverable session's numbered frames.
    pub(crate) fn new(
        max_frames: usize,
        max_bytes: usize,
        io: Option<Arc<WriteHalf>>,
        log: Option<Arc<Session>>,
    ) -> Self {
        Outbox {
            state: Mutex::new(State {
                io,
                log,
                ..State::default()
            }),
            ready: Notify::new(),
            room: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Queues a frame if there is room now. With `quiet`, the writer is not
    /// woken: the sender promises a [`write_through`](Self::write_through)
    /// before it waits on anything.
    pub(crate) fn try_push_with(&self, frame: &[u8], quiet: bool) -> Result<(), QueueError> {
        let mut s = lock(&self.state);
        if s.closed {
            return Err(QueueError::Closed);
        }
        // An empty queue takes any frame, even one over the byte bound.
        let fits =
            s.queued < self.max_frames && (s.bytes == 0 || s.bytes + frame.len() <= self.max_bytes);
        if !fits {
            return Err(QueueError::Full);
        }
        let wake = s.must_wake(s.buf.is_empty()) && !quiet;
        s.push(frame);
        drop(s);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Queues a frame if there is room now.
    pub(crate) fn try_push(&self, frame: &[u8]) -> Result<(), QueueError> {
        self.try_push_with(frame, false)
    }

    /// Queues a frame, waiting for room.
    pub(crate) async fn push(&self, frame: &[u8]) -> Result<(), QueueError> {
        match self.try_push(frame) {
            Err(QueueError::Full) => {}
            done => return done,
        }
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_push(frame) {
                Err(QueueError::Full) => room.await,
                done => return done,
            }
        }
    }

    /// Queues a `Close` frame after everything queued, whatever the bounds,
    /// and accepts nothing after it.
    pub(crate) fn push_close(&self, frame: &[u8]) -> Result<(), QueueError> {
        let mut s = lock(&self.state);
        if s.closed {
            return Err(QueueError::Closed);
        }
        s.push(frame);
        s.closed = true;
        s.closing = true;
        drop(s);
        self.ready.notify_one();
        self.room.notify_waiters();
        Ok(())
    }

    /// Queues a control frame (an `Ack`) after everything queued, whatever
    /// the bounds: it is small, and must not wait behind a full queue.
    pub(crate) fn push_control(&self, frame: &[u8]) -> Result<(), QueueError> {
        let mut s = lock(&self.state);
        if s.closed {
            return Err(QueueError::Closed);
        }
        let wake = s.must_wake(s.buf.is_empty());
        s.push(frame);
        drop(s);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Writes the queued frames now, from the calling task, as far as the
    /// socket takes them without waiting, if there are at most `max` of
    /// them; the writer task finishes what the socket does not take. With
    /// more frames queued, wakes the writer instead: it writes them while
    /// the caller goes on (the reader, say, reading the next requests). Does
    /// nothing while someone else is writing (they look again once done).
    /// Gives the frames and bytes written, once they all are.
    pub(crate) fn write_through(&self, max: usize) -> Option<(usize, usize)> {
        let (mut batch, io) = {
            let mut s = lock(&self.state);
            if s.buf.is_empty() || s.writing || s.rest.is_some() {
                return None;
            }
            match s.io.clone() {
                Some(io) if s.queued <= max && !s.closed => (s.take_batch(), io),
                _ => {
                    drop(s);
                    self.ready.notify_one();
                    return None;
                }
            }
        };
        // The frames left the buffer: room for as many more.
        self.room.notify_waiters();
        // What the socket does not take now, or an error: the writer task
        // takes over, and meets the error itself.
        let _ = io.write_now(&batch.buf, &mut batch.done);
        if batch.done == batch.buf.len() {
            let written = (batch.frames, batch.buf.len());
            self.written(batch);
            return Some(written);
        }
        let mut s = lock(&self.state);
        if batch.generation != s.generation {
            // The transport broke meanwhile: the session's log has these.
            drop(s);
            self.written(batch);
            return None;
        }
        s.rest = Some(batch);
        s.writing = false;
        drop(s);
        self.ready.notify_one();
        None
    }

    /// A recoverable session's transport broke: what was being written is
    /// dropped (the log has it), the writer stops, and frames queue for
    /// the next transport, within the bounds.
    pub(crate) fn detach(&self) {
        let mut s = lock(&self.state);
        s.generation += 1;
        s.detached = true;
        s.io = None;
        s.writing = false;
        if let Some(rest) = s.rest.take().filter(|rest| rest.counted) {
            s.frames -= rest.frames;
            s.bytes -= rest.buf.len();
        }
        drop(s);
        self.ready.notify_waiters();
        self.room.notify_waiters();
    }

    /// A recoverable session has a transport again: `replay` (frames sent
    /// again from the log) goes first, then what queued meanwhile. Gives
    /// the generation the new writer serves.
    pub(crate) fn attach(&self, io: Arc<WriteHalf>, replay: BytesMut) -> u64 {
        let mut s = lock(&self.state);
        s.detached = false;
        s.io = Some(io);
        if !replay.is_empty() {
            s.rest = Some(Batch {
                buf: replay,
                done: 0,
                frames: 0,
                closing: false,
                generation: s.generation,
                counted: false,
            });
        }
        let generation = s.generation;
        drop(s);
        self.ready.notify_one();
        generation
    }

    /// Whether `generation` is the current transport's.
    pub(crate) fn serves(&self, generation: u64) -> bool {
        lock(&self.state).generation == generation
    }

    /// How many numbered frames (see `Header::is_numbered`) are queued and
    /// not yet taken.
    pub(crate) fn numbered_queued(&self) -> u64 {
        let s = lock(&self.state);
        crate::conn::session::frames(&s.buf)
            .filter(|frame| {
                frame
                    .get(crate::wire::frame::PREFIX_LEN)
                    .copied()
                    .is_some_and(crate::wire::frame::numbered_tag)
            })
            .count() as u64
    }

    /// Takes the frames queued and not yet taken (after a session was lost:
    /// what never left).
    pub(crate) fn take_unsent(&self) -> BytesMut {
        let mut s = lock(&self.state);
        let frames = std::mem::take(&mut s.queued);
        let buf = std::mem::take(&mut s.buf);
        s.frames -= frames;
        s.bytes -= buf.len();
        drop(s);
        self.room.notify_waiters();
        buf
    }

    /// The connection ended: refuse frames from now on, and have the writer
    /// send only `last`.
    pub(crate) fn finish(&self, last: Option<Bytes>) {
        let mut s = lock(&self.state);
        s.closed = true;
        s.last = Some(last);
        drop(s);
        self.ready.notify_one();
        self.room.notify_waiters();
    }

    /// Whether this side queued a `Close`.
    pub(crate) fn is_closing(&self) -> bool {
        lock(&self.state).closing
    }

    /// Frames queued or being written.
    pub(crate) fn depth(&self) -> usize {
        lock(&self.state).frames
    }

    /// The writer task's turn: waits for frames to write and takes them.
    ///
    /// With `gather`, the writer lets the tasks that are ready run first
    /// once frames are waiting, so that their frames join the batch. On a
    /// multi-thread runtime the woken writer takes the worker's LIFO slot
    /// and would otherwise run right after the first sender, writing one
    /// frame per call when many tasks send at once.
    pub(crate) async fn take(&self, gather: bool, generation: u64) -> Take {
        let mut gathered = !gather;
        loop {
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let yield_first = {
                let mut s = lock(&self.state);
                if s.generation != generation || s.detached {
                    return Take::Done;
                } else if s.writing {
                    // A sender is writing through; it wakes us when done.
                    false
                } else if let Some(rest) = s.rest.take() {
                    // Before the last frame, even at the end: a frame partly
                    // on the wire is finished, never cut into.
                    s.writing = true;
                    return Take::Batch(rest);
                } else if let Some(last) = s.last.take() {
                    return Take::Last(last);
                } else if !s.buf.is_empty() && gathered {
                    let batch = s.take_batch();
                    drop(s);
                    // The frames left the buffer: room for as many more.
                    self.room.notify_waiters();
                    return Take::Batch(batch);
                } else if s.buf.is_empty() && s.closed {
                    return Take::Done;
                } else {
                    !s.buf.is_empty()
                }
            };
            if yield_first {
                gathered = true;
                tokio::task::yield_now().await;
            } else {
                ready.await;
            }
        }
    }

    /// A batch was written: its frames and bytes leave the bounds, and its
    /// buffer is kept for reuse.
    pub(crate) fn written(&self, mut batch: Batch) {
        let mut s = lock(&self.state);
        if batch.counted {
            s.frames -= batch.frames;
            s.bytes -= batch.buf.len();
        }
        if batch.generation != s.generation {
            // Taken for a transport that broke since; `detach` reset the
            // rest.
            drop(s);
            self.room.notify_waiters();
            return;
        }
        s.writing = false;
        let more = !s.buf.is_empty() || s.last.is_some();
        if batch.buf.capacity() <= KEEP_CAPACITY && s.spare.capacity() == 0 {
            batch.buf.clear();
            s.spare = batch.buf;
        }
        drop(s);
        self.room.notify_waiters();
        if more {
            // Frames queued while this batch was written woke nobody.
            self.ready.notify_one();
        }
    }

    /// The writer task is done with the socket: senders cannot write
    /// through any more, and the socket shuts down when the last handle
    /// goes.
    pub(crate) fn release(&self, generation: u64) {
        let mut s = lock(&self.state);
        if s.generation == generation {
            s.io = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn batch(outbox: &Outbox) -> Batch {
        match outbox.take(false, 0).await {
            Take::Batch(batch) => batch,
            _ => panic!("no batch"),
        }
    }

    #[tokio::test]
    async fn bounded_in_frames_and_bytes_until_written() {
        let outbox = Outbox::new(2, 10, None, None);
        assert_eq!(outbox.try_push(b"1234"), Ok(()));
        assert_eq!(outbox.try_push(b"1234567"), Err(QueueError::Full)); // 11 bytes
        assert_eq!(outbox.try_push(b"1234"), Ok(()));
        assert_eq!(outbox.try_push(b"1"), Err(QueueError::Full)); // 3 frames
        let taken = batch(&outbox).await;
        assert_eq!((taken.frames, taken.closing), (2, false));
        assert_eq!(&taken.buf[..], b"12341234");
        // Taken, not yet written: the frames free their slots, not their
        // bytes.
        assert_eq!(outbox.try_push(b"12"), Ok(()));
        assert_eq!(outbox.try_push(b"1"), Err(QueueError::Full));
        assert_eq!(outbox.depth(), 3);
        outbox.written(taken);
        assert_eq!(outbox.try_push(b"1"), Ok(()));
        let taken = batch(&outbox).await;
        assert_eq!(&taken.buf[..], b"121");
        outbox.written(taken);
        // An empty queue takes a frame over the byte bound.
        assert_eq!(outbox.try_push(&[0; 50]), Ok(()));
        assert_eq!(outbox.depth(), 1);
    }

    #[tokio::test]
    async fn a_waiting_sender_gets_room_once_written() {
        let outbox = Arc::new(Outbox::new(1, 100, None, None));
        outbox.try_push(b"a").unwrap();
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.push(b"b").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let taken = batch(&outbox).await;
        outbox.written(taken);
        assert_eq!(waiting.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn close_is_last_and_finish_ends_everything() {
        let outbox = Outbox::new(1, 1, None, None);
        outbox.try_push(b"full").unwrap();
        outbox.push_close(b"bye").unwrap();
        assert_eq!(outbox.try_push(b"late"), Err(QueueError::Closed));
        assert!(outbox.is_closing());
        let taken = batch(&outbox).await;
        assert_eq!((taken.frames, taken.closing), (2, true));
        assert_eq!(&taken.buf[..], b"fullbye");

        let ended = Outbox::new(8, 64, None, None);
        ended.try_push(b"dropped").unwrap();
        ended.finish(Some(Bytes::from_static(b"last")));
        assert_eq!(ended.push(b"late").await, Err(QueueError::Closed));
        let Take::Last(Some(last)) = ended.take(false, 0).await else {
            panic!("no last frame")
        };
        assert_eq!(&last[..], b"last");
    }

    /// A sender writes through, in queue order; what the socket does not
    /// take, the writer finishes, before any frame queued later.
    #[cfg(feature = "unix")]
    #[tokio::test]
    async fn write_through_keeps_order_and_hands_the_rest_to_the_writer() {
        use tokio::io::AsyncReadExt;
        let (ours, mut theirs) = tokio::net::UnixStream::pair().unwrap();
        let (_read, write) = ours.into_split();
        let outbox = Outbox::new(1024, 1 << 30, Some(Arc::new(WriteHalf::Unix(write))), None);
        outbox.try_push_with(b"one", true).unwrap();
        assert_eq!(outbox.write_through(1), Some((1, 3)));
        let mut got = [0; 3];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"one");
        // More than the socket buffer holds: the rest goes to the writer,
        // and a frame queued meanwhile follows it.
        let big = vec![7u8; 8 << 20];
        outbox.try_push_with(&big, true).unwrap();
        assert_eq!(outbox.write_through(1), None);
        outbox.try_push(b"two").unwrap();
        let rest = batch(&outbox).await;
        assert!(rest.done > 0 && rest.done < big.len(), "{}", rest.done);
        assert_eq!(outbox.write_through(1), None, "the writer is writing");
        let len = big.len();
        let reader = tokio::spawn(async move {
            let mut all = vec![0; len + 3];
            theirs.read_exact(&mut all).await.unwrap();
            all
        });
        let io = lock(&outbox.state).io.clone().unwrap();
        let mut rest = rest;
        while rest.done < rest.buf.len() {
            match io.try_write(&rest.buf[rest.done..]) {
                Ok(n) => rest.done += n,
                Err(_) => io.writable().await.unwrap(),
            }
        }
        outbox.written(rest);
        let next = batch(&outbox).await;
        assert_eq!(&next.buf[..], b"two");
        io.try_write(&next.buf).unwrap();
        let all = reader.await.unwrap();
        assert!(all[..big.len()].iter().all(|&b| b == 7));
        assert_eq!(&all[big.len()..], b"two");
    }
}
