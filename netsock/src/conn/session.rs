//! A recoverable session's bookkeeping, the same on both sides: the count
//! of numbered frames received (what this side acknowledges), and the
//! numbered frames sent and not yet acknowledged (what it sends again after
//! a cut), bounded in frames and bytes. See the wire protocol's *Sessions*.
//!
//! Frames enter the log as the writer takes them from the outbox, so the
//! log's order is the order they left in; the peer's `Ack` trims it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::config::Recovery;
use crate::sync::lock;
use crate::wire::frame::{numbered_tag, LostReason, SessionToken, PREFIX_LEN};

/// Acknowledge after this many numbered frames...
pub(crate) const ACK_EVERY: u64 = 64;
/// ...or this long after the first one not acknowledged.
pub(crate) const ACK_DELAY: Duration = Duration::from_millis(200);

pub(crate) struct Session {
    /// The token the client shows to resume: a server accepts only its
    /// newest, a client shows the newest it was given.
    token: Mutex<SessionToken>,
    /// Server: the `auth` bytes the session was opened with; a resume must
    /// show the same.
    pub(crate) auth: Option<Vec<u8>>,
    /// The bounds, and (as the server granted it) the window.
    pub(crate) limits: Recovery,
    /// Numbered frames received from the peer.
    received: AtomicU64,
    /// The count last sent in an `Ack`.
    acked: AtomicU64,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    /// Numbered frames sent and not acknowledged, whole (prefix included),
    /// one chunk per batch written (one copy each).
    chunks: VecDeque<Chunk>,
    /// Sequence number of the first frame of `chunks[0]`, or of the next
    /// frame when empty.
    first: u64,
    /// Frames and bytes in `chunks`.
    frames: u64,
    bytes: usize,
    /// Frames were dropped before the peer acknowledged them, to keep the
    /// bounds: from then on the session cannot be resumed.
    dropped: u64,
}

/// Numbered frames back to back.
struct Chunk {
    bytes: Bytes,
    frames: u64,
}

/// Why a resume cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReplayError {
    /// This side no longer has frames the peer did not receive.
    Lost(LostReason),
    /// The peer claims frames this side never sent.
    Impossible { claimed: u64, sent: u64 },
}

impl Session {
    pub(crate) fn new(token: SessionToken, auth: Option<Vec<u8>>, limits: Recovery) -> Self {
        Session {
            token: Mutex::new(token),
            auth,
            limits,
            received: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            log: Mutex::new(Log {
                first: 1,
                ..Log::default()
            }),
        }
    }

    pub(crate) fn token(&self) -> SessionToken {
        *lock(&self.token)
    }

    pub(crate) fn set_token(&self, token: SessionToken) {
        *lock(&self.token) = token;
    }

    /// A numbered frame arrived.
    pub(crate) fn note_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Numbered frames received from the peer.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The count to acknowledge now, if there is news and at least `at_least`
    /// frames of it.
    pub(crate) fn ack_due(&self, at_least: u64) -> Option<u64> {
        let received = self.received();
        let acked = self.acked.load(Ordering::Relaxed);
        (received > acked && received - acked >= at_least.max(1)).then(|| {
            self.acked.store(received, Ordering::Relaxed);
            received
        })
    }

    /// Whether some received frame is not acknowledged yet.
    pub(crate) fn unacked(&self) -> bool {
        self.received() > self.acked.load(Ordering::Relaxed)
    }

    /// Numbered frames sent in all.
    pub(crate) fn sent(&self) -> u64 {
        let log = lock(&self.log);
        log.first - 1 + log.frames
    }

    /// Numbered frames sent and not acknowledged (whether or not they
    /// arrived, this side cannot know).
    pub(crate) fn unconfirmed(&self) -> u64 {
        let log = lock(&self.log);
        log.frames + log.dropped
    }

    /// Keeps the numbered frames of `batch` (whole frames, back to back),
    /// which is leaving for the peer.
    pub(crate) fn record(&self, batch: &[u8]) {
        let numbered = |frame: &&[u8]| frame.get(PREFIX_LEN).copied().is_some_and(numbered_tag);
        let (all, count) = frames(batch).fold((true, 0u64), |(all, count), frame| {
            let n = numbered(&frame);
            (all && n, count + u64::from(n))
        });
        if count == 0 {
            return;
        }
        // Usually every frame of a batch is numbered: one copy of it all.
        let bytes = if all {
            Bytes::copy_from_slice(batch)
        } else {
            let mut kept = BytesMut::with_capacity(batch.len());
            for frame in frames(batch).filter(numbered) {
                kept.extend_from_slice(frame);
            }
            kept.freeze()
        };
        let mut log = lock(&self.log);
        log.frames += count;
        log.bytes += bytes.len();
        log.chunks.push_back(Chunk {
            bytes,
            frames: count,
        });
        while log.frames > self.limits.max_frames() as u64 || log.bytes > self.limits.max_bytes() {
            let Some(oldest) = log.chunks.pop_front() else {
                break;
            };
            log.bytes -= oldest.bytes.len();
            log.frames -= oldest.frames;
            log.first += oldest.frames;
            log.dropped += oldest.frames;
        }
    }

    /// The peer received `received` numbered frames: forget those.
    pub(crate) fn acknowledged(&self, received: u64) -> Result<(), ReplayError> {
        let mut log = lock(&self.log);
        let sent = log.first - 1 + log.frames;
        if received > sent {
            return Err(ReplayError::Impossible {
                claimed: received,
                sent,
            });
        }
        while log.first <= received {
            let skip = received + 1 - log.first;
            let Some(front) = log.chunks.front_mut() else {
                break;
            };
            let (gone, cut) = if skip >= front.frames {
                let gone = front.frames;
                let bytes = front.bytes.len();
                log.chunks.pop_front();
                (gone, bytes)
            } else {
                let cut = frames(&front.bytes)
                    .take(skip as usize)
                    .map(<[u8]>::len)
                    .sum::<usize>();
                front.bytes = front.bytes.slice(cut..);
                front.frames -= skip;
                (skip, cut)
            };
            log.first += gone;
            log.frames -= gone;
            log.bytes -= cut;
        }
        Ok(())
    }

    /// After a cut: the frames the peer did not receive, given that it
    /// received `received`, back to back, to send again first.
    pub(crate) fn replay_after(&self, received: u64) -> Result<BytesMut, ReplayError> {
        self.acknowledged(received)?;
        let log = lock(&self.log);
        if log.first != received + 1 {
            // Frames after `received` were dropped to keep the bounds.
            return Err(ReplayError::Lost(LostReason::Overflowed));
        }
        let mut out = BytesMut::with_capacity(log.bytes);
        for chunk in &log.chunks {
            out.extend_from_slice(&chunk.bytes);
        }
        Ok(out)
    }

    /// Whether this side dropped frames the peer may not have received.
    pub(crate) fn overflowed(&self) -> bool {
        lock(&self.log).dropped > 0
    }
}

/// The whole frames (prefix included) of `buf`, back to back; a last one
/// cut short is given as it is.
pub(crate) fn frames(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let prefix = buf.get(at..at + PREFIX_LEN)?;
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let end = (at + PREFIX_LEN + len).min(buf.len());
        let frame = &buf[at..end];
        at = end;
        Some(frame)
    })
}

/// A new random token, from the operating system's generator.
pub(crate) fn new_token() -> std::io::Result<SessionToken> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(SessionToken(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::{encode, Header};

    fn event(n: u8) -> Bytes {
        encode(&Header::Event, Some(&n), 1024).unwrap()
    }

    fn session(frames: usize) -> Session {
        Session::new(
            SessionToken([0; 16]),
            None,
            Recovery::DEFAULT.with_max_frames(frames),
        )
    }

    /// Numbered frames are kept until acknowledged; control frames never.
    #[test]
    fn keeps_numbered_frames_until_acknowledged() {
        let s = session(100);
        let ping = encode(&Header::Ping, None::<&()>, 1024).unwrap();
        let mut batch = BytesMut::new();
        for frame in [event(1), ping.clone(), event(2), event(3)] {
            batch.extend_from_slice(&frame);
        }
        s.record(&batch);
        assert_eq!((s.sent(), s.unconfirmed()), (3, 3));
        s.acknowledged(1).unwrap();
        assert_eq!(s.unconfirmed(), 2);
        let replay = s.replay_after(2).unwrap();
        assert_eq!(&replay[..], &event(3)[..]);
        assert_eq!(
            s.acknowledged(4),
            Err(ReplayError::Impossible {
                claimed: 4,
                sent: 3
            })
        );
    }

    /// A batch's numbered frames are trimmed one by one as the peer
    /// acknowledges them.
    #[test]
    fn a_batch_is_trimmed_frame_by_frame() {
        let s = session(100);
        let mut batch = BytesMut::new();
        for n in 1..=4 {
            batch.extend_from_slice(&event(n));
        }
        s.record(&batch);
        s.acknowledged(2).unwrap();
        assert_eq!(s.unconfirmed(), 2);
        let replay = s.replay_after(3).unwrap();
        assert_eq!(&replay[..], &event(4)[..]);
        // A volatile event is never kept.
        let mut volatile = BytesMut::from(&event(5)[..]);
        volatile[PREFIX_LEN] = crate::wire::frame::VOLATILE_TAG;
        s.record(&volatile);
        assert_eq!(s.sent(), 4);
    }

    /// Past its bound the log drops the oldest, and a resume that needs
    /// them is refused.
    #[test]
    fn a_log_past_its_bound_cannot_resume() {
        let s = session(2);
        for n in 1..=3 {
            s.record(&event(n));
        }
        assert!(s.overflowed());
        assert_eq!(
            s.replay_after(0),
            Err(ReplayError::Lost(LostReason::Overflowed))
        );
        // Had the peer got the first, the other two are still here.
        assert_eq!(s.replay_after(1).unwrap().len(), 2 * event(2).len());
    }

    #[test]
    fn acknowledges_every_so_often() {
        let s = session(10);
        assert_eq!(s.ack_due(1), None);
        for _ in 0..ACK_EVERY - 1 {
            s.note_received();
        }
        assert_eq!(s.ack_due(ACK_EVERY), None);
        assert!(s.unacked());
        s.note_received();
        assert_eq!(s.ack_due(ACK_EVERY), Some(ACK_EVERY));
        assert!(!s.unacked());
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_token().unwrap(), new_token().unwrap());
    }
}
