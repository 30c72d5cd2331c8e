//! The reader: decodes the frames a connection receives and routes each
//! one: events to [dispatch](super::dispatch), requests to
//! [serve](super::serve), replies to the [call table](super::calls); it
//! also runs the heartbeat, and notices the end of the connection.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::codec::FramedRead;

use super::dispatch::{handle_now, EventTask, Inbound};
use super::serve::{serve_now, spawn_request};
use super::{Shared, CLOSE_GRACE};
use crate::error::DisconnectReason;
use crate::events::Events;
use crate::sync::lock;
use crate::throttle::warn_throttled;
use crate::transport::ReadHalf;
use crate::wire::frame::{self, FrameCodec, FrameError, Header};

pub(super) async fn read_loop<In: Events>(
    shared: &Arc<Shared<In>>,
    mut frames: FramedRead<ReadHalf, FrameCodec>,
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
    loop {
        // The rest of a read is decoded without looking at the timers and
        // signals below (they cost a waker registration each): they are
        // looked at again once per read, which a buffer's worth of frames
        // does not hold up for long.
        let next = if frame::has_frame(frames.read_buffer()) {
            frames.next().await
        } else {
            // Replies to the requests of a read are queued quietly; once the
            // read's frames are all handled, they go out in one write, from
            // here (see `Outbox::write_through`).
            shared.write_through();
            tokio::select! {
                biased;
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
            Some(Err(err)) => return DisconnectReason::Protocol(err.to_string()),
        };
        if frames.decoder_mut().fresh_read() {
            arrived = tokio::time::Instant::now();
        }
        last_seen = arrived;
        shared.meter.add(|c| &c.frames_in, 1);
        shared
            .meter
            .add(|c| &c.bytes_in, (body.len() + frame::PREFIX_LEN) as u64);
        let (header, payload) = match frame::decode(&body) {
            Ok(decoded) => decoded,
            Err(err) => {
                warn_throttled!("protocol error", socket = %shared.id, error = %err, "protocol error");
                return DisconnectReason::Protocol(err.to_string());
            }
        };
        tracing::trace!(socket = %shared.id, ?header, len = payload.len(), "frame in");
        match header {
            Header::Event => {
                // Handled here when nothing is queued before it and its
                // handler finishes at once; otherwise by the event task.
                let queued = shared.events_queued.load(Ordering::Acquire) > 0;
                let inbound = if queued || !*shared.started.borrow() {
                    Inbound::Payload(payload)
                } else {
                    match handle_now(shared, payload).await {
                        None => continue,
                        Some(running) => running,
                    }
                };
                let task = events.get_or_insert_with(|| EventTask::start(shared));
                shared.events_queued.fetch_add(1, Ordering::AcqRel);
                // The send may wait: replies queued quietly go out first.
                shared.write_through();
                match unless_stopped(shared, stop.as_mut(), task.tx.send(inbound)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return DisconnectReason::ClosedLocally,
                    Err(reason) => return reason,
                }
            }
            Header::Request { id, timeout_ms } => {
                let request = (id, arrived.into_std(), timeout_ms);
                let Some(work) = serve_now(shared, request, payload).await else {
                    continue;
                };
                shared.write_through();
                let permit = permits.clone().acquire_owned();
                let permit = match unless_stopped(shared, stop.as_mut(), permit).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => return DisconnectReason::ClosedLocally,
                    Err(reason) => return reason,
                };
                spawn_request(shared, id, work, permit);
            }
            Header::Response { id } => shared.complete_call(id, Ok(payload)),
            Header::Failure { id, error } => shared.complete_call(id, Err(error.into())),
            Header::Cancel { id } => {
                if let Some(handle) = lock(&shared.running).remove(&id) {
                    handle.abort();
                }
            }
            Header::Ping => {
                if let Ok(pong) = frame::encode(&Header::Pong, None::<&()>, usize::MAX) {
                    let _ = shared.outbox.try_push(&pong);
                }
            }
            Header::Pong => {}
            Header::Close(_) if closing.is_some() => return DisconnectReason::ClosedLocally,
            Header::Close(reason) => return DisconnectReason::ClosedByPeer(reason),
            other => {
                let message = format!("unexpected {other:?} frame after the handshake");
                return DisconnectReason::Protocol(message);
            }
        }
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

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
