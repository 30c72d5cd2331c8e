//! The writer task: takes every frame queued in the
//! [outbox](super::outbox) and writes them with one call, waiting for the
//! socket as needed, but not longer than the write timeout.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::outbox::{Batch, Take};
use super::Shared;
use crate::error::DisconnectReason;
use crate::events::Events;
use crate::throttle::warn_throttled;
use crate::transport::WriteHalf;

/// Writes for one transport: `generation` (see [`Outbox::attach`]); a
/// recoverable session's next transport gets a writer of its own.
///
/// [`Outbox::attach`]: super::outbox::Outbox::attach
pub(super) async fn write_loop<In: Events>(
    io: Arc<WriteHalf>,
    shared: Arc<Shared<In>>,
    generation: u64,
) {
    // See `Outbox::take`: a current-thread runtime runs tasks in wake order,
    // so its writer gathers the batch without yielding.
    let gather = matches!(
        tokio::runtime::Handle::current().runtime_flavor(),
        tokio::runtime::RuntimeFlavor::MultiThread
    );
    let mut closed = false;
    let mut watchdog = Watchdog::new(shared.config.write_timeout);
    loop {
        let mut batch = match shared.outbox.take(gather, generation).await {
            Take::Batch(batch) => batch,
            Take::Last(last) => {
                if let Some(frame) = last {
                    let _ = write_all(&io, &frame, &mut 0, &mut watchdog).await;
                }
                break;
            }
            Take::Done => break,
        };
        tracing::trace!(frames = batch.frames, bytes = batch.buf.len(), "frames out");
        let Batch { buf, done, .. } = &mut batch;
        if let Err(reason) = write_all(&io, buf, done, &mut watchdog).await {
            // Senders waiting for room learn at once that none will come,
            // unless a session resumes on another transport.
            if !shared.resumable(&reason) {
                shared.outbox.finish(None);
            }
            // Unless a newer transport took over meanwhile.
            if shared.outbox.serves(generation) {
                shared.stop(Some(reason));
            }
            break;
        }
        shared.meter.add(|c| &c.frames_out, batch.frames as u64);
        shared.meter.add(|c| &c.bytes_out, batch.buf.len() as u64);
        closed = batch.closing;
        shared.outbox.written(batch);
        if closed {
            break;
        }
    }
    // Dropping the last handle on the socket shuts it down.
    shared.outbox.release(generation);
    drop(io);
    if closed {
        // Our Close is out: the reader waits for the peer to hang up.
        shared.stop(None);
    }
}

/// Writes `buf` from `done` on, waiting for room in the socket as needed,
/// but no longer than the write timeout for any byte to go.
async fn write_all(
    io: &WriteHalf,
    buf: &[u8],
    done: &mut usize,
    watchdog: &mut Watchdog,
) -> Result<(), DisconnectReason> {
    loop {
        let before = *done;
        io.write_now(buf, done)
            .map_err(|err| DisconnectReason::from_io(&err))?;
        if *done > before {
            watchdog.progressed();
        }
        if *done == buf.len() {
            return Ok(());
        }
        // Boxed: kept out of the writer task's size, which every
        // connection pays for, idle or not.
        Box::pin(watchdog.writable(io)).await?;
    }
}

/// The write timeout's clock. Its timer is made at the first wait for the
/// socket and then kept: a write that makes progress only notes the time,
/// and the timer is moved when it fires early, so that a busy connection
/// does not pay a timer per wait (and an idle one pays none).
struct Watchdog {
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// When the peer last took bytes, once the timer exists.
    progress: Instant,
}

impl Watchdog {
    fn new(timeout: Duration) -> Self {
        Watchdog {
            timeout,
            timer: None,
            progress: Instant::now(),
        }
    }

    fn progressed(&mut self) {
        if self.timer.is_some() {
            self.progress = Instant::now();
        }
    }

    /// Waits until the socket takes bytes, or fails with `WriteTimeout`
    /// once it took none for the timeout.
    async fn writable(&mut self, io: &WriteHalf) -> Result<(), DisconnectReason> {
        let timeout = self.timeout;
        let timer = match &mut self.timer {
            Some(timer) => timer,
            None => {
                // The write just before this wait was the last progress.
                self.progress = Instant::now();
                self.timer.insert(Box::pin(tokio::time::sleep(timeout)))
            }
        };
        loop {
            tokio::select! {
                ready = io.writable() => {
                    return ready.map_err(|err| DisconnectReason::from_io(&err));
                }
                () = timer.as_mut() => {
                    // Bytes left since the timer was set: wait out the rest.
                    let deadline = self.progress + timeout;
                    if Instant::now() < deadline {
                        timer.as_mut().reset(deadline);
                        continue;
                    }
                    warn_throttled!("write timeout", ?timeout, "the peer stopped reading");
                    return Err(DisconnectReason::WriteTimeout { after: timeout });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::time::Instant;

    use super::super::testing::{config, connect, event, still_waiting, within, Api, Conn};
    use super::super::QueueError;
    use crate::error::DisconnectReason;
    use crate::wire::frame::{self, CloseReason, Header};

    /// The peer receives `Ev(n)` for each `n` of `range`, in order.
    async fn expect_events(conn: &mut Conn, range: std::ops::Range<u32>) {
        for n in range {
            let (header, payload) = conn.peer.recv().await;
            assert_eq!(header, Header::Event);
            assert_eq!(postcard::from_bytes::<Api>(&payload).unwrap(), Api::Ev(n));
        }
    }

    /// Queues `Ev(0)`, `Ev(1)`, ... until the queue has no room even once
    /// every task has run (the peer does not read): gives how many went in.
    async fn fill(conn: &Conn) -> u32 {
        let mut queued = 0;
        while !still_waiting(
            Duration::from_millis(1),
            conn.shared.queue(&event(Api::Ev(queued))),
        )
        .await
        {
            queued += 1;
            assert!(queued < 100_000, "the queue never fills");
        }
        queued
    }

    /// A sender that queues a frame quietly and writes through puts it on
    /// the wire itself: the peer has it before any other task (the writer
    /// task included) has run. A frame queued the usual way waits for the
    /// writer task.
    #[tokio::test(start_paused = true)]
    async fn a_lone_frame_is_written_through_by_its_sender() {
        let mut conn = connect(config(), 1024);
        // Let the connection's tasks reach their waits.
        assert!(still_waiting(Duration::from_millis(1), conn.peer.next()).await);
        conn.shared
            .outbox
            .try_push_with(&event(Api::Ev(1)), true)
            .unwrap();
        conn.shared.write_through();
        let (header, _) = conn.peer.ready().expect("not written through");
        assert_eq!(header, Header::Event);
        let metrics = conn.shared.metrics();
        assert_eq!((metrics.traffic.frames_out, metrics.queue_depth), (1, 0));

        conn.shared.try_queue(&event(Api::Ev(2))).unwrap();
        assert!(conn.peer.ready().is_none(), "written before the writer ran");
        expect_events(&mut conn, 2..3).await;
        assert_eq!(conn.shared.metrics().traffic.frames_out, 2);
    }

    /// With more than one frame queued, writing through leaves them to the
    /// writer task (it writes them while the sender goes on), still in
    /// order.
    #[tokio::test(start_paused = true)]
    async fn more_than_one_queued_frame_is_left_to_the_writer_task() {
        let mut conn = connect(config(), 1024);
        for n in 0..3 {
            conn.shared
                .outbox
                .try_push_with(&event(Api::Ev(n)), true)
                .unwrap();
        }
        conn.shared.write_through();
        assert!(conn.peer.ready().is_none(), "written through");
        expect_events(&mut conn, 0..3).await;
    }

    /// The writer takes every frame queued as one batch: while it is stuck
    /// writing that batch to a peer that reads slowly, all of the queue's
    /// frame slots are free again (one frame at a time would free one).
    #[tokio::test(start_paused = true)]
    async fn the_writer_takes_every_queued_frame_as_one_batch() {
        let mut cfg = config();
        cfg.queue_capacity = 4;
        // Less than one frame: every batch is stuck on its first bytes.
        let mut conn = connect(cfg, 4);
        for n in 0..4 {
            conn.shared.try_queue(&event(Api::Ev(n))).unwrap();
        }
        let fifth = event(Api::Ev(4));
        assert_eq!(conn.shared.try_queue(&fifth), Err(QueueError::Full));
        // Room comes when the writer takes the batch...
        within(conn.shared.queue(&fifth)).await.unwrap();
        // ...and it took all four.
        for n in 5..8 {
            conn.shared.try_queue(&event(Api::Ev(n))).unwrap();
        }
        let ninth = event(Api::Ev(8));
        assert_eq!(conn.shared.try_queue(&ninth), Err(QueueError::Full));
        expect_events(&mut conn, 0..8).await;
        assert_eq!(conn.shared.metrics().traffic.frames_out, 8);
    }

    /// A peer that stops reading fills its socket buffer, then the outgoing
    /// queue up to its byte bound: `try_queue` then says `Full`. Once the
    /// peer reads, everything arrives in order and there is room again.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_fills_the_queue() {
        let mut cfg = config();
        cfg.queue_bytes = 256;
        let mut conn = connect(cfg, 64);
        let queued = fill(&conn).await;
        let frame = event(Api::Ev(queued));
        assert_eq!(conn.shared.try_queue(&frame), Err(QueueError::Full));
        // The byte bound counts a batch until it is all written: the
        // queue holds no more than 256 bytes besides those the socket took
        // (64 at most), and refuses only a frame that would go over.
        let bytes = queued as usize * frame.len();
        assert!(
            bytes + frame.len() > 256 && bytes <= 64 + 256,
            "{bytes} bytes queued"
        );
        assert!(conn.shared.metrics().queue_depth > 0);

        expect_events(&mut conn, 0..queued).await;
        assert_eq!(conn.shared.metrics().queue_depth, 0);
        conn.shared.try_queue(&frame).unwrap();
        expect_events(&mut conn, queued..queued + 1).await;
    }

    /// A peer that takes no byte for `write_timeout` is dropped with
    /// `WriteTimeout`, and senders waiting for room learn it at once: they
    /// get `Closed` at that same instant. The socket is released: the peer
    /// reads what was written, then the end of the stream.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_is_dropped_after_the_write_timeout() {
        let start = Instant::now();
        let mut cfg = config();
        cfg.write_timeout = Duration::from_secs(5);
        cfg.queue_capacity = 4;
        let mut conn = connect(cfg, 64);
        let queued = fill(&conn).await;
        let waiting = tokio::spawn({
            let shared = conn.shared.clone();
            async move {
                let queued = shared.queue(&event(Api::Ev(queued))).await;
                (queued, Instant::now())
            }
        });
        let reason = within(conn.shared.ended()).await;
        assert_eq!(
            reason,
            DisconnectReason::WriteTimeout {
                after: Duration::from_secs(5)
            }
        );
        // The writer was stuck from the start: the time counts from then.
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        let (queued, at) = within(waiting).await.unwrap();
        assert_eq!(queued, Err(QueueError::Closed));
        assert_eq!(at, start + Duration::from_secs(5));
        assert_eq!(
            conn.shared.try_queue(&event(Api::Ev(0))),
            Err(QueueError::Closed)
        );
        let mut rest = Vec::new();
        within(conn.peer.stream.read_to_end(&mut rest))
            .await
            .unwrap();
        assert!(!rest.is_empty());
    }

    /// When the connection ends while a frame is only partly on the wire
    /// (a sender wrote through what the socket took and left the rest to
    /// the writer task), the writer finishes that frame before it sends
    /// the `Close`: the peer never gets a frame cut short by another.
    #[tokio::test(start_paused = true)]
    async fn the_close_never_cuts_into_a_frame_written_in_part() {
        let mut conn = connect(config(), 8);
        assert!(still_waiting(Duration::from_millis(1), conn.peer.next()).await);
        // The peer breaks the protocol: the reader is woken, not yet run.
        conn.peer.write(&[0, 0, 0, 3, 200, 1, 2]).await;
        // A sender writes an 11-byte frame through: 8 bytes go.
        let frame = event(Api::Ev(u32::MAX));
        assert_eq!(frame.len(), 11);
        conn.shared.outbox.try_push_with(&frame, true).unwrap();
        conn.shared.write_through();
        let reason = within(conn.shared.ended()).await;
        let DisconnectReason::Protocol(message) = reason else {
            panic!("not a protocol error: {reason:?}");
        };
        let mut wire = Vec::new();
        within(conn.peer.stream.read_to_end(&mut wire))
            .await
            .unwrap();
        let close = frame::encode(
            &Header::Close(CloseReason::Protocol(message)),
            None::<&()>,
            usize::MAX,
        )
        .unwrap();
        assert_eq!(wire, [&frame[..], &close[..]].concat());
    }
}
