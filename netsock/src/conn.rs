//! One live connection: its shared state, and the tasks that drive it.
//!
//! * the **reader** decodes frames, completes pending calls (see
//!   [`calls`](crate::calls)), answers requests (at once when the handler is
//!   ready at once, else in a task of their own) and handles events (at once
//!   when nothing is queued before them and the handler is ready at once,
//!   else through the event task). Once a read's frames are handled it
//!   writes a lone reply itself;
//! * the **event task**, started by the first event the reader cannot
//!   finish, runs event handlers one at a time, in arrival order;
//! * the **writer** takes every frame queued in the bounded
//!   [outbox](crate::outbox) and writes them with one call.
//!
//! Incoming events and requests wait until the socket is *started* (see
//! [`Socket`](crate::Socket)), so handlers registered right after connecting
//! miss nothing.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{AbortHandle, Abortable, OptionFuture};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;
use tracing::Instrument;

use crate::calls::{Calls, Reply};
use crate::config::Config;
use crate::events::variant_name;
use crate::frame::{self, CloseReason, FrameCodec, Header, RemoteError};
use crate::handlers::{call_caught, BoxFuture, Handlers, Slot};
use crate::metrics::{Meter, SocketMetrics};
use crate::outbox::{Batch, Outbox, Take};
use crate::throttle::warn_throttled;
use crate::transport::{PeerAddr, PeerCred, ReadHalf, WriteHalf};
use crate::{DisconnectReason, Error, Events, SocketId};

/// Why a frame could not be queued without waiting.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueueError {
    /// The queue is at its frame or byte limit.
    Full,
    /// The connection is gone.
    Closed,
}

/// Everything a socket handle shares with its connection's tasks.
pub(crate) struct Shared<In> {
    pub(crate) id: SocketId,
    pub(crate) peer: PeerAddr,
    pub(crate) config: Config,
    /// Largest frame the peer accepts.
    pub(crate) max_out: usize,
    pub(crate) outbox: Outbox,
    /// Calls waiting for their reply.
    pub(crate) calls: Calls,
    pub(crate) running: Mutex<HashMap<u64, AbortHandle>>,
    /// Requests being handled, inline or in a task (see [`Handling`]).
    handling: AtomicUsize,
    /// Events handed to the event task and not yet handled.
    events_queued: AtomicUsize,
    /// Signalled when the last running request handler finishes.
    idle: Notify,
    pub(crate) handlers: Arc<RwLock<Handlers<In>>>,
    pub(crate) started: Arc<watch::Sender<bool>>,
    pub(crate) state: watch::Sender<Option<DisconnectReason>>,
    stop: Notify,
    stop_reason: Mutex<Option<DisconnectReason>>,
    pub(crate) cred: Option<PeerCred>,
    pub(crate) data: Arc<Mutex<Data>>,
    pub(crate) meter: Meter,
}

/// Per-socket typed data, keyed by type.
pub(crate) type Data = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

/// What a socket keeps from one connection to the next when a client
/// reconnects: its handlers, its data, whether it has started, and its
/// counters.
pub(crate) struct Carry<In> {
    handlers: Arc<RwLock<Handlers<In>>>,
    data: Arc<Mutex<Data>>,
    started: Arc<watch::Sender<bool>>,
    meter: Meter,
}

impl<In: Events> Carry<In> {
    /// A new socket's: no handlers yet, not started.
    pub(crate) fn new(data: Data, meter: Meter) -> Self {
        Carry {
            handlers: Arc::new(RwLock::new(Handlers::new(In::VARIANTS.len()))),
            data: Arc::new(Mutex::new(data)),
            started: Arc::new(watch::Sender::new(false)),
            meter,
        }
    }
}

/// What a finished handshake hands over to the connection.
pub(crate) struct Handshaken {
    pub(crate) id: SocketId,
    pub(crate) peer: PeerAddr,
    pub(crate) cred: Option<PeerCred>,
    pub(crate) data: Data,
    pub(crate) peer_max_frame: usize,
    pub(crate) reader: FramedRead<ReadHalf, FrameCodec>,
    pub(crate) writer: WriteHalf,
}

/// Called once when a server's connection has ended, before `closed()`
/// resolves; client connections have none.
pub(crate) type OnEnd = Box<dyn FnOnce(SocketId) + Send>;

/// Waits until `state` holds a reason, and gives it.
pub(crate) async fn wait_for_reason(
    state: &watch::Sender<Option<DisconnectReason>>,
) -> DisconnectReason {
    let mut state = state.subscribe();
    let reason = match state.wait_for(Option::is_some).await {
        Ok(reason) => reason.clone(),
        Err(_) => None,
    };
    reason.unwrap_or(DisconnectReason::ClosedLocally)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<In: Events> Shared<In> {
    /// Spawns the connection's tasks and returns its shared state.
    pub(crate) fn spawn(
        conn: Handshaken,
        config: Config,
        carry: Carry<In>,
        on_end: Option<OnEnd>,
    ) -> Arc<Self> {
        let io = Arc::new(conn.writer);
        let shared = Arc::new(Shared {
            id: conn.id,
            peer: conn.peer,
            max_out: conn.peer_max_frame.min(config.max_frame_size),
            outbox: Outbox::new(config.queue_capacity, config.queue_bytes, Some(io.clone())),
            config,
            calls: Calls::default(),
            running: Mutex::new(HashMap::new()),
            handling: AtomicUsize::new(0),
            events_queued: AtomicUsize::new(0),
            idle: Notify::new(),
            handlers: carry.handlers,
            started: carry.started,
            state: watch::Sender::new(None),
            stop: Notify::new(),
            stop_reason: Mutex::new(None),
            cred: conn.cred,
            data: carry.data,
            meter: carry.meter,
        });
        // Every task of the connection runs in the caller's connection span.
        let span = tracing::Span::current();
        let writer = tokio::spawn(write_loop(io, shared.clone()).instrument(span.clone()));
        let reader_shared = shared.clone();
        tokio::spawn(
            async move {
                let mut events = None;
                let reason = read_loop(&reader_shared, conn.reader, &mut events).await;
                // A writer blocked on a peer that stopped reading gets a grace
                // period to send its last frame, then is dropped with the socket.
                tokio::spawn(async move {
                    let mut writer = writer;
                    if tokio::time::timeout(CLOSE_GRACE, &mut writer)
                        .await
                        .is_err()
                    {
                        writer.abort();
                    }
                });
                // Dropping the sender lets the event task finish the queue.
                let events = events.map(|task: EventTask| task.handle);
                reader_shared.finish(reason, events, on_end).await;
            }
            .instrument(span),
        );
        shared
    }

    /// The share of the byte budget a frame takes: its size, but at most
    /// the whole budget, so that one frame larger than it can still go alone.
    /// What the next connection of this socket takes over.
    pub(crate) fn carry(&self) -> Carry<In> {
        Carry {
            handlers: self.handlers.clone(),
            data: self.data.clone(),
            started: self.started.clone(),
            meter: self.meter.clone(),
        }
    }

    /// Queues a frame, waiting for room.
    pub(crate) async fn queue(&self, frame: &[u8]) -> Result<(), QueueError> {
        self.outbox.push(frame).await
    }

    /// Queues a frame if there is room now.
    pub(crate) fn try_queue(&self, frame: &[u8]) -> Result<(), QueueError> {
        self.outbox.try_push(frame)
    }

    /// Writes a lone queued frame from the calling task, if nobody is
    /// writing; wakes the writer for more (see [`Outbox::write_through`]).
    pub(crate) fn write_through(&self) {
        if let Some((frames, bytes)) = self.outbox.write_through(1) {
            self.meter.add(|c| &c.frames_out, frames as u64);
            self.meter.add(|c| &c.bytes_out, bytes as u64);
        }
    }

    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.handling.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Lets incoming events and requests through to the handlers.
    pub(crate) fn start(&self) {
        // A read first: emits call this every time, and the socket is
        // nearly always started already.
        if !*self.started.borrow() {
            self.started
                .send_if_modified(|s| !std::mem::replace(s, true));
        }
    }

    async fn wait_started(&self) {
        if *self.started.borrow() {
            return;
        }
        let mut rx = self.started.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Why the connection ended, if it has.
    pub(crate) fn disconnect_reason(&self) -> Option<DisconnectReason> {
        self.state.borrow().clone()
    }

    /// The reason to report when the writer queue is gone.
    /// Why the connection ended, once it has (the reason is known a little
    /// before [`ended`](Self::ended) resolves).
    pub(crate) fn gone(&self) -> DisconnectReason {
        self.disconnect_reason()
            .or_else(|| self.calls.closed())
            .unwrap_or(if self.outbox.is_closing() {
                DisconnectReason::ClosedLocally
            } else {
                DisconnectReason::PeerHungUp
            })
    }

    /// Waits until the connection has ended and its events were delivered.
    pub(crate) async fn ended(&self) -> DisconnectReason {
        wait_for_reason(&self.state).await
    }

    pub(crate) fn metrics(&self) -> SocketMetrics {
        SocketMetrics {
            traffic: (&*self.meter.own).into(),
            calls_in_flight: self.calls.waiting() as u64,
            queue_depth: self.outbox.depth() as u64,
        }
    }

    /// Shows an incoming value to the `on_any` observer, if any.
    fn observe(&self, value: &In) {
        let any = read(&self.handlers).any.clone();
        if let Some(any) = any {
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| any(value))) {
                let message = crate::handlers::panic_message(&*p);
                tracing::warn!(socket = %self.id, %message, "on_any observer panicked");
            }
        }
    }

    pub(crate) fn report(&self, err: Error) {
        let hook = read(&self.handlers).error.clone();
        match hook {
            Some(hook) => hook(err),
            None => {
                let kind = match &err {
                    Error::DecodeEvent { .. } => "undecodable event",
                    Error::NoHandler { .. } => "event without a handler",
                    Error::RequestAsEvent { .. } => "request sent as an event",
                    Error::HandlerPanicked { .. } => "event handler panicked",
                    Error::QueueFull { .. } => "event dropped: queue full",
                    Error::FrameTooLarge { .. } => "event dropped: over the peer's limit",
                    _ => "socket error",
                };
                warn_throttled!(kind, socket = %self.id, error = %err, "netsock socket error");
            }
        }
    }

    fn complete_call(&self, id: u64, reply: Reply) {
        if !self.calls.complete(id, reply) {
            // The caller may have given up in the meantime; that is fine.
            tracing::trace!(socket = %self.id, id, "reply to a call that is no longer waiting");
        }
    }

    /// Stops the connection from this side: at once with `Some(reason)`;
    /// with `None` (our Close is sent), after the peer hangs up or
    /// [`CLOSE_GRACE`] passes, delivering what it still sends.
    /// Sends a close frame with `reason` and waits for the end; a peer that
    /// stopped reading cannot hold it up for more than twice the grace.
    pub(crate) async fn close(&self, reason: CloseReason) {
        // Events already received are delivered before the end.
        self.start();
        let graceful = async {
            if let Ok(frame) = frame::encode_control(Header::Close(reason), self.max_out) {
                if self.outbox.push_close(&frame).is_err() {
                    return;
                }
            }
            self.ended().await;
        };
        if tokio::time::timeout(2 * CLOSE_GRACE, graceful)
            .await
            .is_err()
        {
            self.stop(Some(DisconnectReason::ClosedLocally));
            self.ended().await;
        }
    }

    pub(crate) fn stop(&self, reason: Option<DisconnectReason>) {
        if let Some(reason) = reason {
            lock(&self.stop_reason).get_or_insert(reason);
        }
        self.stop.notify_one();
    }

    /// Ends the connection: tells the writer (and the peer, when it broke
    /// the protocol), fails pending calls, lets the events already received
    /// reach their handlers, then publishes the reason and runs
    /// `on_disconnect` hooks.
    async fn finish(
        &self,
        reason: DisconnectReason,
        events: Option<tokio::task::JoinHandle<()>>,
        on_end: Option<OnEnd>,
    ) {
        tracing::info!(%reason, "disconnected");
        let server_side = on_end.is_some();
        let tell_peer = match &reason {
            DisconnectReason::FrameTooLarge { size, max } => Some(CloseReason::FrameTooLarge {
                size: *size as u64,
                max: *max as u64,
            }),
            DisconnectReason::Protocol(message) => Some(CloseReason::Protocol(message.clone())),
            _ => None,
        };
        let last =
            tell_peer.and_then(|r| frame::encode_control(Header::Close(r), self.max_out).ok());
        // The writer sends `last` only; senders waiting for queue room learn
        // the connection is gone.
        self.outbox.finish(last);
        self.calls.close(&reason);
        for (_, handle) in lock(&self.running).drain() {
            handle.abort();
        }
        // Events received before the end are delivered: a client socket that
        // was never started starts now; a server socket starts when its
        // connection handler completes.
        if !server_side {
            self.start();
        }
        if let Some(Err(err)) = OptionFuture::from(events).await {
            tracing::warn!(socket = %self.id, %err, "event task failed");
        }
        if let Some(on_end) = on_end {
            on_end(self.id);
        }
        self.state.send_replace(Some(reason.clone()));
        let hooks = read(&self.handlers).disconnect.clone();
        for hook in hooks {
            if let Err(message) = call_caught(|r| hook(r), reason.clone()).await {
                tracing::warn!(socket = %self.id, %message, "on_disconnect handler panicked");
            }
        }
        // A server's socket is done for good: drop the handlers, and with them
        // the socket handles they hold. A client's may reconnect; its
        // supervisor clears them at the very end.
        if server_side {
            write(&self.handlers).clear();
        }
    }
}

async fn read_loop<In: Events>(
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
            Some(Err(Error::FrameTooLarge { size, max })) => {
                warn_throttled!("oversized frame", socket = %shared.id, size, max, "peer sent an oversized frame");
                return DisconnectReason::FrameTooLarge { size, max };
            }
            Some(Err(Error::Io(err))) => return DisconnectReason::from_io(&err),
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

/// A connection's event task and the queue feeding it, started by the first
/// event that cannot be handled in the reader: an idle connection has
/// neither.
struct EventTask {
    tx: mpsc::Sender<Inbound>,
    handle: tokio::task::JoinHandle<()>,
}

/// What the reader hands the event task.
enum Inbound {
    /// An event to decode and handle.
    Payload(Bytes),
    /// An event whose handler the reader started and which is still waiting.
    Running(Running),
}

/// A started event handler and the event's name.
type Running = (BoxFuture<()>, &'static str);

impl EventTask {
    fn start<In: Events>(shared: &Arc<Shared<In>>) -> Self {
        let (tx, rx) = mpsc::channel(shared.config.queue_capacity);
        // The reader runs in the connection's span; so does its event task.
        let span = tracing::Span::current();
        let handle = tokio::spawn(event_loop(shared.clone(), rx).instrument(span));
        EventTask { tx, handle }
    }
}

/// Runs event handlers one at a time, in the order the events arrived.
async fn event_loop<In: Events>(shared: Arc<Shared<In>>, mut events: mpsc::Receiver<Inbound>) {
    shared.wait_started().await;
    while let Some(inbound) = events.recv().await {
        let running = match inbound {
            Inbound::Running(running) => Some(running),
            Inbound::Payload(payload) => start_handler(&shared, payload),
        };
        if let Some((handler, event)) = running {
            if let Err(p) = AssertUnwindSafe(handler).catch_unwind().await {
                let message = crate::handlers::panic_message(&*p);
                shared.report(Error::HandlerPanicked { event, message });
            }
        }
        // Handled: once nothing is queued, the reader handles events itself.
        shared.events_queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Handles an event in the reader when its handler finishes at once (the
/// common case: no task wake-up); otherwise gives back the started handler
/// for the event task.
async fn handle_now<In: Events>(shared: &Arc<Shared<In>>, payload: Bytes) -> Option<Inbound> {
    let (mut handler, event) = start_handler(shared, payload)?;
    let polled = std::future::poll_fn(|cx| {
        Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
            handler.as_mut().poll(cx)
        })))
    })
    .await;
    match polled {
        Ok(Poll::Ready(())) => None,
        Ok(Poll::Pending) => Some(Inbound::Running((handler, event))),
        Err(p) => {
            let message = crate::handlers::panic_message(&*p);
            shared.report(Error::HandlerPanicked { event, message });
            None
        }
    }
}

/// Decodes an event and calls its handler, giving the handler's future;
/// reports an event that cannot be decoded or has no handler.
fn start_handler<In: Events>(shared: &Shared<In>, payload: Bytes) -> Option<Running> {
    let value = match postcard::from_bytes::<In>(&payload) {
        Ok(value) => value,
        Err(source) => {
            shared.meter.add(|c| &c.events_invalid, 1);
            shared.report(Error::DecodeEvent { source });
            return None;
        }
    };
    shared.observe(&value);
    let index = value.variant_index();
    let event = variant_name::<In>(index);
    if In::VARIANTS
        .get(index as usize)
        .is_some_and(|v| v.is_request())
    {
        shared.meter.add(|c| &c.events_invalid, 1);
        shared.report(Error::RequestAsEvent { event });
        return None;
    }
    let slot = read(&shared.handlers).slot(index);
    let Slot::Event(handler) = slot else {
        shared.meter.add(|c| &c.events_unhandled, 1);
        shared.report(Error::NoHandler { event });
        return None;
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler(value))) {
        Ok(future) => Some((future, event)),
        Err(p) => {
            let message = crate::handlers::panic_message(&*p);
            shared.report(Error::HandlerPanicked { event, message });
            None
        }
    }
}

/// A request being answered: resolves to the reply frame, if any.
type Work = std::pin::Pin<Box<dyn Future<Output = Option<Bytes>> + Send>>;

/// Answers a request at once when its handler is ready at once (no task
/// spawned: the common case of a handler that does not wait); otherwise
/// hands back the started work for [`spawn_request`].
async fn serve_now<In: Events>(
    shared: &Arc<Shared<In>>,
    (id, arrived, timeout_ms): (u64, std::time::Instant, u32),
    payload: Bytes,
) -> Option<(Work, tracing::Span, Handling<In>)> {
    let span = tracing::debug_span!("request", id, event = tracing::field::Empty);
    let handling = Handling::new(shared);
    let task_shared = shared.clone();
    let mut work: Work = Box::pin(crate::deadline::with_deadline(
        arrived,
        timeout_ms,
        async move { answer(&task_shared, id, payload).await },
    ));
    // Not started: the handlers may not be registered yet; wait in a task.
    if !*shared.started.borrow() {
        return Some((work, span, handling));
    }
    let polled = std::future::poll_fn(|cx| Poll::Ready(span.in_scope(|| work.as_mut().poll(cx))));
    let Poll::Ready(reply) = polled.await else {
        return Some((work, span, handling));
    };
    if let Some(reply) = reply {
        // Quietly: the reader writes it through once the read is handled.
        match shared.outbox.try_push_with(&reply, true) {
            Ok(()) => shared.meter.add(|c| &c.requests_served, 1),
            // Rare: wait for room in a task, not here in the reader.
            Err(QueueError::Full) => {
                return Some((Box::pin(std::future::ready(Some(reply))), span, handling));
            }
            Err(QueueError::Closed) => {}
        }
    }
    None
}

/// Counts a request as being handled while it lives, so that a graceful
/// shutdown waits for it, from before its handler first runs (inline, in the
/// reader) until its reply is queued or it is dropped.
struct Handling<In: Events>(Arc<Shared<In>>);

impl<In: Events> Handling<In> {
    fn new(shared: &Arc<Shared<In>>) -> Self {
        shared.handling.fetch_add(1, Ordering::SeqCst);
        Handling(shared.clone())
    }
}

impl<In: Events> Drop for Handling<In> {
    fn drop(&mut self) {
        if self.0.handling.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Finishes answering a request in its own task, cancellable by the
/// caller's `Cancel`, within the limit on concurrent requests.
fn spawn_request<In: Events>(
    shared: &Arc<Shared<In>>,
    id: u64,
    (work, span, handling): (Work, tracing::Span, Handling<In>),
    permit: OwnedSemaphorePermit,
) {
    let (handle, registration) = AbortHandle::new_pair();
    lock(&shared.running).insert(id, handle);
    let task_shared = shared.clone();
    let work = Abortable::new(
        async move {
            task_shared.wait_started().await;
            if let Some(reply) = work.await {
                if task_shared.queue(&reply).await.is_ok() {
                    task_shared.meter.add(|c| &c.requests_served, 1);
                }
            }
        },
        registration,
    );
    let shared = shared.clone();
    tokio::spawn(
        async move {
            let _permit = permit;
            let _handling = handling;
            let _ = work.await;
            lock(&shared.running).remove(&id);
        }
        .instrument(span),
    );
}

/// Runs the handler for one request and returns the reply frame.
async fn answer<In: Events>(shared: &Shared<In>, id: u64, payload: Bytes) -> Option<Bytes> {
    let value = match postcard::from_bytes::<In>(&payload) {
        Ok(value) => value,
        Err(e) => {
            return failure(
                id,
                RemoteError::BadRequest {
                    message: e.to_string(),
                },
                shared.max_out,
            )
        }
    };
    shared.observe(&value);
    let index = value.variant_index();
    let event = variant_name::<In>(index);
    tracing::Span::current().record("event", event);
    if !In::VARIANTS
        .get(index as usize)
        .is_some_and(|v| v.is_request())
    {
        let event = event.to_owned();
        return failure(id, RemoteError::NotARequest { event }, shared.max_out);
    }
    let slot = read(&shared.handlers).slot(index);
    let Slot::Request(handler) = slot else {
        let event = event.to_owned();
        return failure(id, RemoteError::NoHandler { event }, shared.max_out);
    };
    match call_caught(|v| handler(v, id, shared.max_out), value).await {
        Ok(reply) => reply,
        Err(message) => {
            warn_throttled!("request handler panicked", socket = %shared.id, %event, %message, "request handler panicked");
            failure(id, RemoteError::HandlerPanicked { message }, shared.max_out)
        }
    }
}

/// A `Failure` frame within the peer's limit `max` (its text shortened to
/// fit).
pub(crate) fn failure(id: u64, error: RemoteError, max: usize) -> Option<Bytes> {
    frame::encode_control(Header::Failure { id, error }, max).ok()
}

/// Encodes a handler's reply, or a failure saying why it cannot be sent.
pub(crate) fn encode_reply<R: serde::Serialize>(id: u64, reply: &R, max: usize) -> Option<Bytes> {
    match frame::encode(&Header::Response { id }, Some(reply), max) {
        Ok(frame) => Some(frame),
        Err(Error::FrameTooLarge { size, max }) => failure(
            id,
            RemoteError::ResponseTooLarge {
                size: size as u64,
                max: max as u64,
            },
            max,
        ),
        Err(e) => failure(
            id,
            RemoteError::Encode {
                message: e.to_string(),
            },
            max,
        ),
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// How long a closing side keeps reading while the peer finishes, and how
/// long `close()` waits for the outgoing queue before dropping the connection.
pub(crate) const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

async fn write_loop<In: Events>(io: Arc<WriteHalf>, shared: Arc<Shared<In>>) {
    // See `Outbox::take`: a current-thread runtime runs tasks in wake order,
    // so its writer gathers the batch without yielding.
    let gather = matches!(
        tokio::runtime::Handle::current().runtime_flavor(),
        tokio::runtime::RuntimeFlavor::MultiThread
    );
    let mut closed = false;
    loop {
        let mut batch = match shared.outbox.take(gather).await {
            Take::Batch(batch) => batch,
            Take::Last(last) => {
                if let Some(frame) = last {
                    let _ = write_all(&io, &frame, &mut 0, shared.config.write_timeout).await;
                }
                break;
            }
            Take::Done => break,
        };
        tracing::trace!(frames = batch.frames, bytes = batch.buf.len(), "frames out");
        let Batch { buf, done, .. } = &mut batch;
        if let Err(reason) = write_all(&io, buf, done, shared.config.write_timeout).await {
            // Senders waiting for room learn at once that none will come.
            shared.outbox.finish(None);
            shared.stop(Some(reason));
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
    shared.outbox.release();
    drop(io);
    if closed {
        // Our Close is out: the reader waits for the peer to hang up.
        shared.stop(None);
    }
}

/// Writes `buf` from `done` on, waiting for room in the socket as needed,
/// but no longer than `timeout` for any byte to go.
async fn write_all(
    io: &WriteHalf,
    buf: &[u8],
    done: &mut usize,
    timeout: Duration,
) -> Result<(), DisconnectReason> {
    loop {
        io.write_now(buf, done)
            .map_err(|err| DisconnectReason::from_io(&err))?;
        if *done == buf.len() {
            return Ok(());
        }
        // Boxed: kept out of the writer task's size, which every
        // connection pays for, idle or not.
        match Box::pin(tokio::time::timeout(timeout, io.writable())).await {
            Ok(ready) => ready.map_err(|err| DisconnectReason::from_io(&err))?,
            Err(_) => {
                warn_throttled!("write timeout", ?timeout, "the peer stopped reading");
                return Err(DisconnectReason::WriteTimeout { after: timeout });
            }
        }
    }
}
