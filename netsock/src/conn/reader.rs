//! The reader: decodes the frames a connection receives and routes each
//! one: events to [dispatch](super::dispatch), requests to
//! [serve](super::serve), replies to the [call table](super::calls); it
//! also runs the heartbeat, and notices the end of the connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tokio_util::codec::FramedRead;

use bytes::{Buf, Bytes};

use super::dispatch::{handle_now, EventTask, Inbound, Started};
use super::serve::{requested, serve_now, spawn_request};
use super::session::{ACK_DELAY, ACK_EVERY};
use super::streams::Dir;
use super::{Shared, CLOSE_GRACE};
use crate::error::DisconnectReason;
use crate::events::Events;
use crate::sync::lock;
use crate::throttle::warn_throttled;
use crate::transport::ReadHalf;
use crate::wire::frame::{self, FrameCodec, FrameError, Header, EVENT_TAG, VOLATILE_TAG};

/// `frames` is borrowed, not taken: an `async fn` keeps its arguments
/// twice, once as given and once as locals, and this future lives as long
/// as its connection.
pub(super) async fn read_loop<In: Events>(
    shared: &Arc<Shared<In>>,
    frames: &mut FramedRead<ReadHalf, FrameCodec>,
    events: &mut Option<EventTask>,
) -> DisconnectReason {
    let permits = Arc::new(Semaphore::new(shared.config.max_concurrent_requests));
    // Set once this side has sent its Close: keep reading (and delivering)
    // what the peer sent before it saw our Close, until it hangs up.
    let mut closing: Option<tokio::time::Instant> = None;
    // Heartbeat: when nothing arrived for `interval`, send a Ping; when still
    // nothing arrived `timeout` later, give up. The timer is only moved when
    // it fires, so a busy connection pays one clock read per read.
    let heartbeat = shared.config.heartbeat;
    // When the latest read returned: the clock is read once per read, and
    // frames decoded from the same read share it.
    let mut arrived = tokio::time::Instant::now();
    let mut last_seen = arrived;
    let mut ping_at: Option<tokio::time::Instant> = None;
    let beat = tokio::time::sleep(heartbeat.map_or(Duration::from_secs(3600), |(i, _)| i));
    tokio::pin!(beat);
    // Made once and polled again each time round, not made anew per frame:
    // registering with the `Notify` costs a lock.
    let stop = shared.stop.notified();
    tokio::pin!(stop);
    // A session acknowledges what it received every `ACK_EVERY` frames, and
    // `ACK_DELAY` after a frame it has not acknowledged.
    let session = shared.session.as_deref();
    // Boxed, and made when first armed: a timer is over a hundred bytes,
    // which the reader of every connection without a session would carry.
    let mut ack_timer: Option<Pin<Box<Sleep>>> = None;
    let mut ack_armed = false;
    // Frames of the read buffer counted in already (see `count_in`).
    let mut ahead = 0;
    loop {
        // Events already read, while the reader may run their handlers
        // itself, are handled where they lie in the read buffer: none is
        // split off it. A stream's items already read are split off
        // without going through the decoder.
        let max = frames.decoder().max_frame_size();
        let buffered = frames.read_buffer();
        if let Some(body) = frame::peek_body(buffered, max) {
            let len = frame::PREFIX_LEN + body.len();
            let event = matches!(body.first(), Some(&(EVENT_TAG | VOLATILE_TAG)));
            if event && shared.events_queued.load(Ordering::Acquire) == 0 && shared.has_started() {
                count_in(shared, &mut ahead, len, &buffered[len..], max);
                last_seen = arrived;
                tracing::trace!(socket = %shared.id, tag = body[0], len = body.len() - 1, "event in");
                if let (Some(session), EVENT_TAG) = (session, body[0]) {
                    session.note_received();
                }
                let payload = &body[1..];
                let inbound = match handle_now(shared, payload).await {
                    Started::Done => None,
                    Started::Running(running) => Some(Inbound::Running(running)),
                    Started::Waits => Some(Inbound::Payload(Bytes::copy_from_slice(payload))),
                };
                frames.read_buffer_mut().advance(len);
                if let Some(inbound) = inbound {
                    if let Err(reason) = hand_over(shared, events, stop.as_mut(), inbound).await {
                        return reason;
                    }
                }
                continue;
            }
            if let Some((id, head)) = frame::stream_item_head(body) {
                count_in(shared, &mut ahead, len, &buffered[len..], max);
                last_seen = arrived;
                let size = body.len();
                tracing::trace!(socket = %shared.id, id, len = size - head, "stream item in");
                if let Some(session) = session {
                    session.note_received();
                }
                let mut item = frames.read_buffer_mut().split_to(len).freeze();
                item.advance(frame::PREFIX_LEN + head);
                stream_item(shared, id, size, item);
                continue;
            }
        }
        // The rest of a read is decoded without looking at the timers and
        // signals below (they cost a waker registration each): they are
        // looked at again once per read, which a buffer's worth of frames
        // does not hold up for long.
        let next = if frame::has_frame(frames.read_buffer()) {
            frames.next().await
        } else {
            if let Some(session) = session {
                if let Some(received) = session.ack_due(ACK_EVERY) {
                    ack(shared, received);
                } else if session.unacked() && !ack_armed {
                    ack_armed = true;
                    let at = tokio::time::Instant::now() + ACK_DELAY;
                    match &mut ack_timer {
                        Some(timer) => timer.as_mut().reset(at),
                        None => ack_timer = Some(Box::pin(tokio::time::sleep_until(at))),
                    }
                }
            }
            // Replies to the requests of a read are queued quietly; once the
            // read's frames are all handled, they go out in one write, from
            // here (see `Outbox::write_through`).
            shared.write_through();
            tokio::select! {
                biased;
                () = fired(&mut ack_timer), if ack_armed => {
                    ack_armed = false;
                    if let Some(received) = session.and_then(|s| s.ack_due(1)) {
                        ack(shared, received);
                    }
                    continue;
                }
                () = &mut beat, if heartbeat.is_some() && closing.is_none() => {
                    let Some((interval, timeout)) = heartbeat else { continue };
                    let now = tokio::time::Instant::now();
                    match ping_at {
                        // Our ping went unanswered: nothing at all arrived since.
                        Some(ping) if last_seen < ping => {
                            tracing::warn!(?interval, ?timeout, "the peer stopped answering heartbeats");
                            return DisconnectReason::HeartbeatTimeout { after: interval + timeout };
                        }
                        _ if now < last_seen + interval => {
                            ping_at = None;
                            beat.as_mut().reset(last_seen + interval);
                        }
                        _ => {
                            if let Ok(ping) = frame::encode(&Header::Ping, None::<&()>, usize::MAX) {
                                let _ = shared.outbox.try_push(&ping);
                            }
                            ping_at = Some(now);
                            beat.as_mut().reset(now + timeout);
                        }
                    }
                    continue;
                }
                () = &mut stop => {
                    stop.set(shared.stop.notified());
                    match lock(&shared.stop_reason).take() {
                        Some(reason) => return reason,
                        None => {
                            closing.get_or_insert(tokio::time::Instant::now() + CLOSE_GRACE);
                            continue;
                        }
                    }
                }
                () = sleep_until(closing) => return DisconnectReason::ClosedLocally,
                next = frames.next() => next,
            }
        };
        if closing.is_some() && !matches!(next, Some(Ok(_))) {
            return DisconnectReason::ClosedLocally;
        }
        let body = match next {
            None => return DisconnectReason::PeerHungUp,
            Some(Ok(body)) => body,
            Some(Err(FrameError::TooLarge { size, max })) => {
                warn_throttled!("oversized frame", socket = %shared.id, size, max, "peer sent an oversized frame");
                return DisconnectReason::FrameTooLarge { size, max };
            }
            Some(Err(FrameError::Io(err))) => return DisconnectReason::from_io(&err),
            Some(Err(FrameError::Truncated { received, expected })) => {
                return DisconnectReason::CutMidFrame { received, expected }
            }
            Some(Err(err)) => return DisconnectReason::Protocol(err.to_string()),
        };
        if frames.decoder_mut().fresh_read() {
            arrived = tokio::time::Instant::now();
        }
        last_seen = arrived;
        let size = body.len();
        let max = frames.decoder().max_frame_size();
        count_in(
            shared,
            &mut ahead,
            size + frame::PREFIX_LEN,
            frames.read_buffer(),
            max,
        );
        let (header, payload) = match frame::decode_body(body) {
            Ok(decoded) => decoded,
            Err(err) => {
                warn_throttled!("protocol error", socket = %shared.id, error = %err, "protocol error");
                return DisconnectReason::Protocol(err.to_string());
            }
        };
        tracing::trace!(socket = %shared.id, ?header, len = payload.len(), "frame in");
        if let Some(session) = session {
            if header.is_numbered() {
                session.note_received();
            }
        }
        match header {
            Header::Event | Header::Volatile => {
                // The first of a read (the rest are handled above, in the
                // buffer): handled here when nothing is queued before it and
                // its handler finishes at once; otherwise by the event task.
                let queued = shared.events_queued.load(Ordering::Acquire) > 0;
                let inbound = if queued || !shared.has_started() {
                    Inbound::Payload(payload)
                } else {
                    match handle_now(shared, &payload).await {
                        Started::Done => continue,
                        Started::Running(running) => Inbound::Running(running),
                        Started::Waits => Inbound::Payload(payload),
                    }
                };
                if let Err(reason) = hand_over(shared, events, stop.as_mut(), inbound).await {
                    return reason;
                }
            }
            Header::Request { id, timeout_ms } => {
                let request = (id, arrived.into_std(), timeout_ms);
                // An upload's items follow its request at once: its side
                // opens here, before they are read.
                let variant = requested::<In>(&payload);
                let upload = variant
                    .is_some_and(|v| v.upload.is_some())
                    .then(|| shared.streams.expect_upload(shared.clone(), id))
                    .flatten();
                let name = variant.map_or("<unknown>", |v| v.name);
                let Some(work) = serve_now(shared, request, payload, upload, name).await else {
                    continue;
                };
                shared.write_through();
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        let permit = permits.clone().acquire_owned();
                        match Box::pin(unless_stopped(shared, stop.as_mut(), permit)).await {
                            Ok(Ok(permit)) => permit,
                            Ok(Err(_)) => return DisconnectReason::ClosedLocally,
                            Err(reason) => return reason,
                        }
                    }
                };
                spawn_request(shared, id, work, permit);
            }
            Header::Response { id } => shared.complete_call(id, Ok(payload)),
            Header::Failure { id, error } => shared.complete_call(id, Err(error.into())),
            Header::Cancel { id } => {
                if let Some(handle) = lock(&shared.running).remove(&id) {
                    handle.abort();
                }
                shared.streams.cancel(id);
            }
            Header::StreamItem { id } => stream_item(shared, id, size, payload),
            Header::StreamEnd { id, error } => shared.streams.end(Dir::Answer, id, error),
            Header::Credit { id, items, bytes } => {
                shared.streams.credit(Dir::Answer, id, items, bytes)
            }
            Header::UploadItem { id } => {
                shared.streams.item(Dir::Upload, id, size, payload);
            }
            Header::UploadEnd { id, error } => shared.streams.end(Dir::Upload, id, error),
            Header::UploadCredit { id, items, bytes } => {
                shared.streams.credit(Dir::Upload, id, items, bytes)
            }
            Header::Ping => {
                if let Ok(pong) = frame::encode(&Header::Pong, None::<&()>, usize::MAX) {
                    let _ = shared.outbox.try_push(&pong);
                }
            }
            Header::Pong => {}
            Header::Ack { received } => {
                let acknowledged = match session {
                    Some(session) => session.acknowledged(received).map_err(|e| format!("{e:?}")),
                    None => Err("an Ack without a session".to_owned()),
                };
                if let Err(message) = acknowledged {
                    return DisconnectReason::Protocol(format!("bad Ack: {message}"));
                }
            }
            Header::Close(_) if closing.is_some() => return DisconnectReason::ClosedLocally,
            Header::Close(reason) => return DisconnectReason::ClosedByPeer(reason),
            other => {
                let message = format!("unexpected {other:?} frame after the handshake");
                return DisconnectReason::Protocol(message);
            }
        }
    }
}

/// Queues a session's `Ack`, whatever the queue's bounds.
fn ack<In: Events>(shared: &Shared<In>, received: u64) {
    if let Ok(frame) = frame::encode(&Header::Ack { received }, None::<&()>, usize::MAX) {
        let _ = shared.outbox.push_control(&frame);
    }
}

/// Hands an item of the stream `id` (its frame body `size` bytes) to the
/// stream; an item over the stream's credit cancels it.
fn stream_item<In>(shared: &Shared<In>, id: u64, size: usize, item: Bytes) {
    if let Some(cancel) = shared.streams.item(Dir::Answer, id, size, item) {
        let _ = shared.outbox.try_push(&cancel);
    }
}

/// Counts a frame of `len` bytes in before anything it does can be seen (a
/// call it completes, say), with the whole frames of `rest`, the read
/// buffer after it, the first time round: each read's frames are counted
/// once, `ahead` keeping how many of them are still to come.
fn count_in<In>(shared: &Shared<In>, ahead: &mut u64, len: usize, rest: &[u8], max: usize) {
    if *ahead > 0 {
        *ahead -= 1;
        return;
    }
    let (frames, bytes) = frame::whole_frames(rest, max);
    *ahead = frames;
    shared.meter.add(|c| &c.frames_in, frames + 1);
    shared.meter.add(|c| &c.bytes_in, bytes + len as u64);
}

/// Hands an event to the connection's event task (started by the first
/// one), behind those it has: waits for room in its queue, unless the
/// connection stops first.
async fn hand_over<In: Events>(
    shared: &Arc<Shared<In>>,
    events: &mut Option<EventTask>,
    stop: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    inbound: Inbound,
) -> Result<(), DisconnectReason> {
    let task = events.get_or_insert_with(|| EventTask::start(shared));
    shared.events_queued.fetch_add(1, Ordering::AcqRel);
    // The send may wait: replies queued quietly go out first.
    shared.write_through();
    // Without waiting when there is room (no stop signal to watch); the
    // wait is boxed, out of the reader's size.
    let inbound = match task.tx.try_send(inbound) {
        Ok(()) => return Ok(()),
        Err(tokio::sync::mpsc::error::TrySendError::Full(inbound)) => inbound,
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
            return Err(DisconnectReason::ClosedLocally)
        }
    };
    let send = task.tx.send(inbound);
    match Box::pin(unless_stopped(shared, stop, send)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(DisconnectReason::ClosedLocally),
        Err(reason) => Err(reason),
    }
}

/// Awaits `wait`, unless the connection is told to stop first: then gives
/// why. Everything the reader waits on besides the socket goes through
/// here, so that a connection whose peer is gone never stays parked (on a
/// request permit held by handlers that wait for queue room, say).
async fn unless_stopped<In, T>(
    shared: &Shared<In>,
    stop: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    wait: impl Future<Output = T>,
) -> Result<T, DisconnectReason> {
    tokio::select! {
        biased;
        // A graceful close (no reason) does not wait for room either.
        () = stop => Err(lock(&shared.stop_reason).take().unwrap_or(DisconnectReason::ClosedLocally)),
        done = wait => Ok(done),
    }
}

/// Waits for `timer`, for ever when there is none.
async fn fired(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot};
    use tokio::time::Instant;

    use super::super::testing::{
        config, connect, event, on_event, on_request, request, still_waiting, within, Api,
        DropGuard, EV, REQ,
    };
    use crate::error::DisconnectReason;
    use crate::wire::frame::{self, CloseReason, Header};

    /// Registers an event handler that reports each `Ev` it gets, and starts
    /// the connection.
    fn collect_events(shared: &super::Shared<Api>) -> mpsc::UnboundedReceiver<u32> {
        let (tx, rx) = mpsc::unbounded_channel();
        on_event(shared, EV, move |value| {
            if let Api::Ev(n) = value {
                let _ = tx.send(n);
            }
            async {}
        });
        shared.start();
        rx
    }

    /// A stream that carries one byte at a time splits every frame over
    /// many reads: the reader puts each one back together, and delivers
    /// them in order.
    #[tokio::test(start_paused = true)]
    async fn frames_split_across_reads_are_delivered_whole_and_in_order() {
        let mut conn = connect(config(), 1);
        let mut got = collect_events(&conn.shared);
        for n in [1, 300, 70_000] {
            conn.peer.write(&event(Api::Ev(n))).await;
        }
        for n in [1, 300, 70_000] {
            assert_eq!(within(got.recv()).await, Some(n));
        }
    }

    /// Many frames in one read, the last one cut short, are all delivered,
    /// in order, and counted once each.
    #[tokio::test(start_paused = true)]
    async fn many_frames_in_one_read_are_delivered_in_order() {
        let mut conn = connect(config(), 64 * 1024);
        let mut got = collect_events(&conn.shared);
        let mut bytes = Vec::new();
        for n in 0..200 {
            bytes.extend_from_slice(&event(Api::Ev(n)));
        }
        let last = event(Api::Ev(200));
        bytes.extend_from_slice(&last[..3]);
        conn.peer.write(&bytes).await;
        for n in 0..200 {
            assert_eq!(within(got.recv()).await, Some(n));
        }
        conn.peer.write(&last[3..]).await;
        assert_eq!(within(got.recv()).await, Some(200));
        let traffic = conn.shared.metrics().traffic;
        assert_eq!(traffic.frames_in, 201);
        assert_eq!(traffic.bytes_in, (bytes.len() + last.len() - 3) as u64);
    }

    /// A frame is counted in before its handler runs, whether it is the
    /// first of a read or handled where it lies in the read buffer, with a
    /// frame of another kind between them.
    #[tokio::test(start_paused = true)]
    async fn frames_are_counted_before_their_handlers_run() {
        let mut conn = connect(config(), 64 * 1024);
        let (tx, mut seen) = mpsc::unbounded_channel();
        let shared = Arc::downgrade(&conn.shared);
        on_event(&conn.shared, EV, move |value| {
            let Api::Ev(n) = value else {
                unreachable!("registered for Ev")
            };
            let counted = shared.upgrade().map(|s| s.metrics().traffic.frames_in);
            let _ = tx.send((n, counted));
            async {}
        });
        conn.shared.start();
        let ping = frame::encode(&Header::Ping, None::<&()>, 1024).unwrap();
        let mut bytes = Vec::new();
        for n in 0..10 {
            bytes.extend_from_slice(&event(Api::Ev(n)));
            if n == 4 {
                bytes.extend_from_slice(&ping);
            }
        }
        conn.peer.write(&bytes).await;
        for n in 0..10 {
            let (got, counted) = within(seen.recv()).await.unwrap();
            assert_eq!(got, n);
            let before = u64::from(n) + 1 + u64::from(n > 4);
            assert!(counted.unwrap() >= before, "event {n}: {counted:?}");
        }
        assert_eq!(conn.shared.metrics().traffic.frames_in, 11);
    }

    /// A `Ping` is answered with a `Pong`, even before the socket starts.
    #[tokio::test(start_paused = true)]
    async fn a_ping_gets_a_pong() {
        let mut conn = connect(config(), 1024);
        conn.peer.send(Header::Ping, None).await;
        assert_eq!(conn.peer.recv().await.0, Header::Pong);
        assert_eq!(conn.shared.disconnect_reason(), None);
    }

    /// A length prefix over our frame limit ends the connection at once
    /// (without waiting for the body), and the peer is told why.
    #[tokio::test(start_paused = true)]
    async fn an_oversized_length_prefix_ends_with_frame_too_large() {
        let mut cfg = config();
        cfg.max_frame_size = 1024;
        let mut conn = connect(cfg, 1024);
        conn.peer.write(&4096u32.to_be_bytes()).await;
        let reason = within(conn.shared.ended()).await;
        assert_eq!(
            reason,
            DisconnectReason::FrameTooLarge {
                size: 4096,
                max: 1024
            }
        );
        let frames = conn.peer.until_eof().await;
        let headers: Vec<_> = frames.into_iter().map(|(h, _)| h).collect();
        assert_eq!(
            headers,
            [Header::Close(CloseReason::FrameTooLarge {
                size: 4096,
                max: 1024
            })]
        );
    }

    /// A frame whose header does not decode is a protocol error: the
    /// connection ends with `Protocol`, and the peer is told.
    #[tokio::test(start_paused = true)]
    async fn a_garbage_header_ends_with_a_protocol_error() {
        let mut conn = connect(config(), 1024);
        // Body of 3 bytes: header tag 200, which no header has.
        conn.peer.write(&[0, 0, 0, 3, 200, 1, 2]).await;
        let reason = within(conn.shared.ended()).await;
        let DisconnectReason::Protocol(message) = reason else {
            panic!("not a protocol error: {reason:?}");
        };
        let frames = conn.peer.until_eof().await;
        let headers: Vec<_> = frames.into_iter().map(|(h, _)| h).collect();
        assert_eq!(headers, [Header::Close(CloseReason::Protocol(message))]);
    }

    /// A handshake frame once the handshake is done is a protocol error too.
    #[tokio::test(start_paused = true)]
    async fn a_handshake_frame_after_the_handshake_is_a_protocol_error() {
        let mut conn = connect(config(), 1024);
        let welcome = Header::Welcome {
            id: 1,
            max_frame: 1024,
        };
        conn.peer.send(welcome, None).await;
        let reason = within(conn.shared.ended()).await;
        assert!(
            matches!(&reason, DisconnectReason::Protocol(m) if m.contains("Welcome")),
            "{reason:?}"
        );
    }

    /// The peer hanging up ends the connection with `PeerHungUp`; the
    /// events it sent before are still delivered.
    #[tokio::test(start_paused = true)]
    async fn end_of_stream_is_peer_hung_up() {
        let mut conn = connect(config(), 1024);
        let mut got = collect_events(&conn.shared);
        conn.peer.write(&event(Api::Ev(1))).await;
        drop(conn.peer);
        assert_eq!(
            within(conn.shared.ended()).await,
            DisconnectReason::PeerHungUp
        );
        assert_eq!(got.try_recv(), Ok(1));
    }

    /// A `Close` from the peer ends the connection with its reason, and
    /// nothing is sent back.
    #[tokio::test(start_paused = true)]
    async fn a_close_from_the_peer_ends_with_its_reason() {
        let mut conn = connect(config(), 1024);
        conn.peer
            .send(Header::Close(CloseReason::Normal), None)
            .await;
        assert_eq!(
            within(conn.shared.ended()).await,
            DisconnectReason::ClosedByPeer(CloseReason::Normal)
        );
        assert!(conn.peer.until_eof().await.is_empty());
    }

    fn heartbeat(interval: u64, timeout: u64) -> crate::config::Config {
        let mut cfg = config();
        cfg.heartbeat = Some((Duration::from_secs(interval), Duration::from_secs(timeout)));
        cfg
    }

    /// A silent peer is pinged after `interval`, and given up `timeout`
    /// later: `HeartbeatTimeout` after `interval + timeout` in all.
    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_pinged_then_given_up() {
        let start = Instant::now();
        let mut conn = connect(heartbeat(10, 5), 1024);
        assert_eq!(conn.peer.recv().await.0, Header::Ping);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        let reason = within(conn.shared.ended()).await;
        assert_eq!(
            reason,
            DisconnectReason::HeartbeatTimeout {
                after: Duration::from_secs(15)
            }
        );
        assert_eq!(start.elapsed(), Duration::from_secs(15));
    }

    /// A peer that answers each ping stays connected: pings come every
    /// `interval` after the last answer, for as long as it answers.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_answers_pings_stays_connected() {
        let mut conn = connect(heartbeat(10, 5), 1024);
        for _ in 0..10 {
            let asked = Instant::now();
            assert_eq!(conn.peer.recv().await.0, Header::Ping);
            assert_eq!(asked.elapsed(), Duration::from_secs(10));
            conn.peer.send(Header::Pong, None).await;
        }
        assert_eq!(conn.shared.disconnect_reason(), None);
        // It stops answering: given up `timeout` after the next ping.
        assert_eq!(conn.peer.recv().await.0, Header::Ping);
        let pinged = Instant::now();
        let reason = within(conn.shared.ended()).await;
        assert!(matches!(reason, DisconnectReason::HeartbeatTimeout { .. }));
        assert_eq!(pinged.elapsed(), Duration::from_secs(5));
    }

    /// A peer that sends anything more often than `interval` is never
    /// pinged: any frame counts as a sign of life.
    #[tokio::test(start_paused = true)]
    async fn a_talking_peer_is_never_pinged() {
        let mut conn = connect(heartbeat(10, 5), 1024);
        for _ in 0..20 {
            // Nothing at all comes from us for 9 s...
            assert!(still_waiting(Duration::from_secs(9), conn.peer.next()).await);
            // ...then the peer says something (an unsolicited `Pong`).
            conn.peer.send(Header::Pong, None).await;
        }
        assert_eq!(conn.shared.disconnect_reason(), None);
    }

    /// With every request permit held by a handler that does not finish,
    /// the reader waits for a permit before reading on; a stop signal
    /// still ends it at once, with the stop's reason (`unless_stopped`).
    /// Before that fix, such a connection stayed parked for good.
    #[tokio::test(start_paused = true)]
    async fn a_stop_interrupts_a_reader_waiting_for_a_request_permit() {
        let reason = DisconnectReason::Io {
            kind: std::io::ErrorKind::Other,
            message: "test".into(),
        };
        let ended = stop_a_reader_waiting_for_a_permit(Some(reason.clone())).await;
        assert_eq!(ended, reason);
    }

    /// The same with a graceful stop (the one that follows our `Close`),
    /// which does not wait for a permit either.
    #[tokio::test(start_paused = true)]
    async fn a_graceful_stop_interrupts_a_reader_waiting_for_a_request_permit() {
        let ended = stop_a_reader_waiting_for_a_permit(None).await;
        assert_eq!(ended, DisconnectReason::ClosedLocally);
    }

    async fn stop_a_reader_waiting_for_a_permit(
        stop: Option<DisconnectReason>,
    ) -> DisconnectReason {
        let mut cfg = config();
        cfg.max_concurrent_requests = 1;
        let mut conn = connect(cfg, 1024);
        let (started, mut handlers) = mpsc::unbounded_channel();
        let (dropped_tx, dropped) = oneshot::channel();
        let dropped_tx = std::sync::Mutex::new(Some(dropped_tx));
        on_request(&conn.shared, REQ, move |value| {
            let _ = started.send(value);
            let guard = DropGuard(dropped_tx.lock().unwrap().take());
            async move {
                let _guard = guard;
                std::future::pending::<u32>().await
            }
        });
        conn.shared.start();
        conn.peer.write(&request(1, Api::Req(1))).await;
        conn.peer.write(&request(2, Api::Req(2))).await;
        conn.peer.send(Header::Ping, None).await;
        // The second handler started (inline, in the reader), did not
        // finish, and waits for the first one's permit: the ping after it
        // is not read.
        assert_eq!(within(handlers.recv()).await, Some(Api::Req(1)));
        assert_eq!(within(handlers.recv()).await, Some(Api::Req(2)));
        assert!(still_waiting(Duration::from_secs(60), conn.peer.next()).await);
        conn.shared.stop(stop);
        let reason = within(conn.shared.ended()).await;
        // The running handler was aborted on the way out.
        within(dropped).await.unwrap();
        reason
    }
}
