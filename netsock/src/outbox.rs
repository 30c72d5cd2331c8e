//! A connection's outgoing queue: encoded frames appended to one buffer,
//! bounded in frames and in bytes, which the writer task takes whole and
//! writes with one call.
//!
//! Senders copy their frame into the buffer under a short lock and wake the
//! writer only when the buffer was empty; the writer swaps the buffer for its
//! spare one, so that while it writes, senders fill the other. The frame
//! bound counts the frames waiting in the buffer; the byte bound counts
//! their bytes until they are written, so that a peer that stops reading
//! holds at most that many bytes.

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::conn::{lock, QueueError};

/// A spare buffer grown past this is replaced by a new one once written, so
/// that one burst does not pin its memory for the life of the connection.
const KEEP_CAPACITY: usize = 64 * 1024;

pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer: frames arrived, or the end.
    ready: Notify,
    /// Wakes senders waiting for room.
    room: Notify,
    max_frames: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    /// Frames queued and not yet taken by the writer: what the frame bound
    /// counts.
    buf: BytesMut,
    queued: usize,
    /// Frames, and their bytes, queued or being written: what the byte
    /// bound counts.
    frames: usize,
    bytes: usize,
    /// No frame is accepted any more.
    closed: bool,
    /// The last frame queued is a `Close`: the writer stops after it.
    closing: bool,
    /// The connection ended: the writer writes only this frame, if any, and
    /// stops.
    last: Option<Option<Bytes>>,
}

/// What the writer gets from [`Outbox::take`].
pub(crate) enum Take {
    /// Frames to write, now in the writer's buffer; `closing` when the last
    /// of them is a `Close`.
    Batch { frames: usize, closing: bool },
    /// The connection ended: write this frame, if any, and stop.
    Last(Option<Bytes>),
    /// Closed, and everything written.
    Done,
}

impl Outbox {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            room: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Queues a frame if there is room now.
    pub(crate) fn try_push(&self, frame: &[u8]) -> Result<(), QueueError> {
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
        let wake = s.buf.is_empty();
        s.buf.extend_from_slice(frame);
        s.queued += 1;
        s.frames += 1;
        s.bytes += frame.len();
        drop(s);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
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
        s.buf.extend_from_slice(frame);
        s.queued += 1;
        s.frames += 1;
        s.bytes += frame.len();
        s.closed = true;
        s.closing = true;
        drop(s);
        self.ready.notify_one();
        self.room.notify_waiters();
        Ok(())
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

    /// Waits for frames to write and moves them into `into` (which must be
    /// empty).
    ///
    /// With `gather`, the writer lets the tasks that are ready run first
    /// once frames are waiting, so that their frames join the batch. On a
    /// multi-thread runtime the woken writer takes the worker's LIFO slot
    /// and would otherwise run right after the first sender, writing one
    /// frame per call when many tasks send at once.
    pub(crate) async fn take(&self, into: &mut BytesMut, gather: bool) -> Take {
        let mut gathered = !gather;
        loop {
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let yield_first = {
                let mut s = lock(&self.state);
                if let Some(last) = s.last.take() {
                    return Take::Last(last);
                }
                if !s.buf.is_empty() && gathered {
                    std::mem::swap(&mut s.buf, into);
                    let frames = std::mem::take(&mut s.queued);
                    let closing = s.closing && s.closed;
                    drop(s);
                    // The frames left the buffer: room for as many more.
                    self.room.notify_waiters();
                    return Take::Batch { frames, closing };
                }
                if s.buf.is_empty() && s.closed {
                    return Take::Done;
                }
                !s.buf.is_empty()
            };
            if yield_first {
                gathered = true;
                tokio::task::yield_now().await;
            } else {
                ready.await;
            }
        }
    }

    /// The writer wrote `frames` frames from `buf`: they leave the bounds.
    /// Clears `buf` for the next batch.
    pub(crate) fn written(&self, frames: usize, buf: &mut BytesMut) {
        let mut s = lock(&self.state);
        s.frames -= frames;
        s.bytes -= buf.len();
        drop(s);
        self.room.notify_waiters();
        if buf.capacity() > KEEP_CAPACITY {
            *buf = BytesMut::new();
        } else {
            buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_frames_and_bytes_until_written() {
        let outbox = Outbox::new(2, 10);
        assert_eq!(outbox.try_push(b"1234"), Ok(()));
        assert_eq!(outbox.try_push(b"1234567"), Err(QueueError::Full)); // 11 bytes
        assert_eq!(outbox.try_push(b"1234"), Ok(()));
        assert_eq!(outbox.try_push(b"1"), Err(QueueError::Full)); // 3 frames
        let mut buf = BytesMut::new();
        let Take::Batch { frames, closing } = outbox.take(&mut buf, false).await else {
            panic!("no batch")
        };
        assert_eq!((frames, closing, &buf[..]), (2, false, &b"12341234"[..]));
        // Taken, not yet written: the frames free their slots, not their
        // bytes.
        assert_eq!(outbox.try_push(b"12"), Ok(()));
        assert_eq!(outbox.try_push(b"1"), Err(QueueError::Full));
        assert_eq!(outbox.depth(), 3);
        outbox.written(frames, &mut buf);
        assert_eq!(outbox.try_push(b"1"), Ok(()));
        let Take::Batch { frames, .. } = outbox.take(&mut buf, false).await else {
            panic!("no batch")
        };
        outbox.written(frames, &mut buf);
        assert!(buf.is_empty());
        // An empty queue takes a frame over the byte bound.
        assert_eq!(outbox.try_push(&[0; 50]), Ok(()));
        assert_eq!(outbox.depth(), 1);
    }

    #[tokio::test]
    async fn a_waiting_sender_gets_room_once_written() {
        let outbox = std::sync::Arc::new(Outbox::new(1, 100));
        outbox.try_push(b"a").unwrap();
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.push(b"b").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let mut buf = BytesMut::new();
        let Take::Batch { frames, .. } = outbox.take(&mut buf, false).await else {
            panic!("no batch")
        };
        outbox.written(frames, &mut buf);
        assert_eq!(waiting.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn close_is_last_and_finish_ends_everything() {
        let outbox = Outbox::new(1, 1);
        outbox.try_push(b"full").unwrap();
        outbox.push_close(b"bye").unwrap();
        assert_eq!(outbox.try_push(b"late"), Err(QueueError::Closed));
        assert!(outbox.is_closing());
        let mut buf = BytesMut::new();
        let Take::Batch { frames, closing } = outbox.take(&mut buf, false).await else {
            panic!("no batch")
        };
        assert_eq!((frames, closing, &buf[..]), (2, true, &b"fullbye"[..]));

        let ended = Outbox::new(8, 64);
        ended.try_push(b"dropped").unwrap();
        ended.finish(Some(Bytes::from_static(b"last")));
        assert_eq!(ended.push(b"late").await, Err(QueueError::Closed));
        let Take::Last(Some(last)) = ended.take(&mut BytesMut::new(), false).await else {
            panic!("no last frame")
        };
        assert_eq!(&last[..], b"last");
    }
}
