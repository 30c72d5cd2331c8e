//! One live connection: its shared state, and the tasks that drive it.
//! Both ends run the same code; a server's socket and a client's differ
//! only in who made the connection and in what ends it.
//!
//! * the [**reader**](reader) decodes frames and routes each one: events to
//!   [dispatch](dispatch) (handled in the reader when nothing is queued
//!   before them and the handler is ready at once, else by the event
//!   task), requests to [serve](serve) (answered in the reader when the
//!   handler is ready at once, else in a task of their own), replies to
//!   the [call table](calls). Once a read's frames are handled it writes a
//!   lone reply itself. It also runs the heartbeat;
//! * the **event task**, started by the first event the reader cannot
//!   finish, runs event handlers one at a time, in arrival order;
//! * the [**writer**](writer) takes every frame queued in the bounded
//!   [outbox](outbox) and writes them with one call.
//!
//! [`hello`] is how a connection starts (the `Hello`/`Welcome` exchange);
//! [`handler_table`] holds the handlers a socket registered.
//!
//! Incoming events and requests wait until the socket is *started* (see
//! [`Socket`](crate::Socket)), so handlers registered right after connecting
//! miss nothing: a server's socket starts when its connection handler
//! returns; a client's starts at once but *settles* for a moment (see
//! [`Settle`]).
//!
//! Nothing here knows about servers, rooms or reconnecting: those live
//! above, and see a connection only through [`Shared`].

pub(crate) mod calls;
mod dispatch;
pub(crate) mod event_stream;
pub(crate) mod handler_table;
pub(crate) mod hello;
pub(crate) mod outbox;
mod reader;
pub(crate) mod serve;
pub(crate) mod session;
pub(crate) mod streams;
#[cfg(test)]
mod testing;
mod writer;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures_util::future::AbortHandle;
use tokio::sync::{watch, Notify};
use tokio_util::codec::FramedRead;
use tracing::Instrument;

use self::calls::{Calls, Reply};
use self::dispatch::EventTask;
use self::handler_table::{call_caught, AnyFn, Handlers, Settle};
use self::outbox::Outbox;
use self::reader::read_loop;
use self::session::Session;
use self::writer::write_loop;
use crate::config::Config;
use crate::error::{DisconnectReason, MissReason, SocketError};
use crate::events::Events;
use crate::metrics::{Meter, SocketMetrics};
use crate::sync::{lock, read, write};
use crate::throttle::warn_throttled;
use crate::transport::{PeerAddr, PeerCert, PeerCred, ReadHalf, WriteHalf};
use crate::wire::frame::{self, CloseReason, FrameCodec, Header, EVENT_TAG, VOLATILE_TAG};

/// A connection's id, the same on both ends (the server assigns it).
///
/// Ids are unique across the nodes of a cluster (see
/// [`netsock::adapter`](crate::adapter)): the top 24 bits are the number of
/// the node that accepted the socket ([`SocketId::node`]), 0 on a server
/// without an adapter, and the low 40 bits count that node's connections.
///
/// ```
/// use netsock::{NodeId, SocketId};
/// let id = SocketId(7);
/// assert_eq!(id.to_string(), "7");
/// assert!(SocketId(1) < id); // ids are handed out in increasing order
/// assert_eq!(id.node(), NodeId(0)); // a server without an adapter
/// assert_eq!(SocketId((3 << 40) + 1).node(), NodeId(3));
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SocketId(pub u64);

impl SocketId {
    /// How many low bits of an id count a node's connections.
    pub(crate) const NODE_SHIFT: u32 = 40;

    /// The node that accepted this socket (0: a server without an adapter).
    ///
    /// ```
    /// use netsock::{NodeId, SocketId};
    /// assert_eq!(SocketId(42).node(), NodeId(0));
    /// ```
    pub fn node(self) -> NodeId {
        NodeId((self.0 >> Self::NODE_SHIFT) as u32)
    }
}

/// A server process in a cluster: a number no other live node of the
/// cluster has, given by its [`Driver`](crate::adapter::Driver) when the
/// server binds (1 to 2²⁴ − 1; 0 is a server without an adapter).
///
/// ```
/// use netsock::NodeId;
/// assert_eq!(NodeId(5).to_string(), "node 5");
/// ```
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct NodeId(pub u32);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {}", self.0)
    }
}

impl std::fmt::Display for SocketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

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
    /// The server's or the client's settings, shared, not copied per
    /// connection.
    pub(crate) config: Arc<Config>,
    /// Largest frame the peer accepts.
    pub(crate) max_out: usize,
    pub(crate) outbox: Outbox,
    /// Calls waiting for their reply.
    pub(crate) calls: Calls,
    /// Streams open both ways.
    pub(crate) streams: streams::Streams,
    pub(crate) running: Mutex<HashMap<u64, AbortHandle>>,
    /// Requests being handled, inline or in a task (see
    /// [`Handling`](serve::Handling)).
    handling: AtomicUsize,
    /// Events handed to the event task and not yet handled.
    events_queued: AtomicUsize,
    /// Signalled when the last running request handler finishes.
    idle: Notify,
    pub(crate) handlers: Arc<RwLock<Handlers<In>>>,
    /// Opened once, never closed: read on every event and emit.
    started: Arc<Started>,
    /// A client socket's first moments, when what has no handler yet waits;
    /// `None` on a server's socket, which never settles.
    pub(crate) settle: Option<Arc<Settle>>,
    pub(crate) state: watch::Sender<Option<DisconnectReason>>,
    stop: Notify,
    stop_reason: Mutex<Option<DisconnectReason>>,
    pub(crate) cred: Option<PeerCred>,
    /// The certificate a TLS peer presented.
    pub(crate) cert: Option<Arc<PeerCert>>,
    pub(crate) data: Arc<Mutex<Data>>,
    pub(crate) meter: Meter,
    /// A recoverable session, when the client asked and the server granted.
    pub(crate) session: Option<Arc<Session>>,
    /// What only a session's connection needs to outlive its transport;
    /// `None` without a session. Made only then: the watch alone is a few
    /// hundred bytes, which every idle connection would otherwise pay.
    relink: Option<Box<Relink>>,
    /// The `on_disconnect` hooks ran when the transport broke (a client's
    /// session): not again when the session then ends.
    told: AtomicBool,
}

/// A session's connection, between one transport and the next.
struct Relink {
    /// `None` while a transport is attached, else why it broke.
    transport: watch::Sender<Option<DisconnectReason>>,
    /// What a detached session's next transport takes over.
    parked: Mutex<Option<Parked>>,
}

/// A detached session's event task and end hook, kept for its next
/// transport (or for its end).
struct Parked {
    events: Option<EventTask>,
    on_end: Option<OnEnd>,
}

/// Whether a socket has started: a flag and the tasks waiting for it. A
/// `watch` channel would do, at several times the size, which every
/// connection pays.
#[derive(Default)]
struct Started {
    open: AtomicBool,
    opened: Notify,
}

/// Per-socket typed data, keyed by type.
pub(crate) type Data = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

/// What a socket keeps from one connection to the next when a client
/// reconnects: its handlers, its data, whether it has started, and its
/// counters.
pub(crate) struct Carry<In> {
    handlers: Arc<RwLock<Handlers<In>>>,
    data: Arc<Mutex<Data>>,
    started: Arc<Started>,
    settle: Option<Arc<Settle>>,
    meter: Meter,
}

impl<In: Events> Carry<In> {
    /// A new socket's: no handlers yet, not started. A client's socket
    /// can settle (see [`Settle`]); a server's never does, and has no
    /// `Settle` to pay for.
    pub(crate) fn new(data: Data, meter: Meter, client: bool) -> Self {
        Carry {
            handlers: Arc::new(RwLock::new(Handlers::new(In::VARIANTS.len()))),
            data: Arc::new(Mutex::new(data)),
            started: Arc::default(),
            settle: client.then(Arc::default),
            meter,
        }
    }
}

/// What a finished handshake hands over to the connection.
pub(crate) struct Handshaken {
    pub(crate) id: SocketId,
    pub(crate) peer: PeerAddr,
    pub(crate) cred: Option<PeerCred>,
    pub(crate) cert: Option<Arc<PeerCert>>,
    pub(crate) data: Data,
    pub(crate) peer_max_frame: usize,
    pub(crate) reader: FramedRead<ReadHalf, FrameCodec>,
    pub(crate) writer: WriteHalf,
    /// The session the handshake opened, if any.
    pub(crate) session: Option<Arc<Session>>,
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

impl<In: Events> Shared<In> {
    /// Spawns the connection's tasks and returns its shared state.
    pub(crate) fn spawn(
        conn: Handshaken,
        config: Arc<Config>,
        carry: Carry<In>,
        on_end: Option<OnEnd>,
    ) -> Arc<Self> {
        let io = Arc::new(conn.writer);
        let relink = conn.session.as_ref().map(|_| {
            Box::new(Relink {
                transport: watch::Sender::new(None),
                parked: Mutex::new(None),
            })
        });
        let shared = Arc::new(Shared {
            id: conn.id,
            peer: conn.peer,
            max_out: conn.peer_max_frame.min(config.max_frame_size),
            outbox: Outbox::new(
                config.queue_capacity,
                config.queue_bytes,
                Some(io.clone()),
                conn.session.clone(),
            ),
            config,
            calls: Calls::default(),
            streams: streams::Streams::default(),
            running: Mutex::new(HashMap::new()),
            handling: AtomicUsize::new(0),
            events_queued: AtomicUsize::new(0),
            idle: Notify::new(),
            handlers: carry.handlers,
            started: carry.started,
            settle: carry.settle,
            state: watch::Sender::new(None),
            stop: Notify::new(),
            stop_reason: Mutex::new(None),
            cred: conn.cred,
            cert: conn.cert,
            data: carry.data,
            meter: carry.meter,
            session: conn.session,
            relink,
            told: AtomicBool::new(false),
        });
        shared.run(conn.reader, io, 0, None, on_end);
        shared
    }

    /// Starts the tasks of one transport: the writer (serving the outbox's
    /// `generation`) and the reader, which at the end of the transport
    /// detaches a session that can be resumed, and ends the socket
    /// otherwise.
    fn run(
        self: &Arc<Self>,
        mut reader: FramedRead<ReadHalf, FrameCodec>,
        io: Arc<WriteHalf>,
        generation: u64,
        mut events: Option<EventTask>,
        on_end: Option<OnEnd>,
    ) {
        // Every task of the connection runs in the caller's connection span.
        let span = tracing::Span::current();
        let writer =
            tokio::spawn(write_loop(io, self.clone(), generation).instrument(span.clone()));
        let shared = self.clone();
        tokio::spawn(
            async move {
                let reason = read_loop(&shared, &mut reader, &mut events).await;
                // The read half goes as soon as the reader is done, as
                // it would if `read_loop` owned it.
                drop(reader);
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
                if shared.resumable(&reason) {
                    shared.detach(reason, events, on_end);
                } else {
                    // Dropping the sender lets the event task finish the queue.
                    let events = events.map(|task: EventTask| task.handle);
                    shared.finish(reason, events, on_end).await;
                }
            }
            .instrument(span),
        );
    }

    /// Whether a transport that ended with `reason` leaves a session to
    /// resume: there is one, the cut may be temporary, and this side did
    /// not close.
    pub(crate) fn resumable(&self, reason: &DisconnectReason) -> bool {
        self.session.is_some() && reason.is_cut() && !self.outbox.is_closing()
    }

    /// The session's transport broke: keep everything for the next one.
    /// A server's socket waits for its client for the session's window,
    /// then ends; a client's supervisor dials again (see `client/`).
    fn detach(
        self: &Arc<Self>,
        reason: DisconnectReason,
        events: Option<EventTask>,
        on_end: Option<OnEnd>,
    ) {
        // `resumable` saw a session, and a session has its relink.
        let (Some(session), Some(relink)) = (&self.session, &self.relink) else {
            return;
        };
        tracing::info!(%reason, "transport lost; the session waits to be resumed");
        self.outbox.detach();
        let server_side = on_end.is_some();
        *lock(&relink.parked) = Some(Parked { events, on_end });
        relink.transport.send_replace(Some(reason.clone()));
        if server_side {
            let window = session.limits.window();
            let mut transport = relink.transport.subscribe();
            let shared = self.clone();
            tokio::spawn(
                async move {
                    let back = transport.wait_for(Option::is_none);
                    if tokio::time::timeout(window, back).await.is_err() {
                        tracing::info!(?window, "the session was not resumed in time");
                        shared.expire(reason).await;
                    }
                }
                .instrument(tracing::Span::current()),
            );
        }
    }

    /// Ends a detached session for good, with the reason its transport
    /// broke.
    pub(crate) async fn expire(&self, reason: DisconnectReason) {
        let parked = self.relink.as_ref().and_then(|r| lock(&r.parked).take());
        if let Some(Parked { events, on_end }) = parked {
            self.outbox.finish(None);
            let events = events.map(|task| task.handle);
            self.finish(reason, events, on_end).await;
        }
    }

    /// Gives a detached session a new transport: `replay` (the frames the
    /// peer did not receive, from [`Session::replay_after`]) goes first,
    /// then everything queued meanwhile; calls, running handlers and queued
    /// events carry on. False when the session ended meanwhile.
    pub(crate) fn attach(
        self: &Arc<Self>,
        reader: FramedRead<ReadHalf, FrameCodec>,
        writer: WriteHalf,
        replay: bytes::BytesMut,
    ) -> bool {
        let Some(relink) = &self.relink else {
            return false;
        };
        let Some(Parked { events, on_end }) = lock(&relink.parked).take() else {
            return false;
        };
        // A stop meant for the old transport (its writer's error, a
        // takeover) must not end the new one.
        lock(&self.stop_reason).take();
        let _ = futures_util::FutureExt::now_or_never(self.stop.notified());
        let io = Arc::new(writer);
        let generation = self.outbox.attach(io.clone(), replay);
        self.told.store(false, Ordering::SeqCst);
        relink.transport.send_replace(None);
        self.run(reader, io, generation, events, on_end);
        true
    }

    /// Runs the `on_disconnect` hooks for a transport that broke under a
    /// client's session (a server's socket carries on unseen).
    pub(crate) async fn tell_disconnect(&self, reason: &DisconnectReason) {
        self.told.store(true, Ordering::SeqCst);
        self.run_disconnect_hooks(reason).await;
    }

    async fn run_disconnect_hooks(&self, reason: &DisconnectReason) {
        let hooks = read(&self.handlers).disconnect.clone();
        for hook in hooks {
            if let Err(message) = call_caught(|r| hook(r), reason.clone()).await {
                tracing::warn!(socket = %self.id, %message, "on_disconnect handler panicked");
            }
        }
    }

    /// Why the session's transport broke, while it waits for the next.
    pub(crate) fn detached(&self) -> Option<DisconnectReason> {
        self.relink.as_ref()?.transport.borrow().clone()
    }

    /// Waits until the session's transport breaks, or the socket ends
    /// (without a session, only the latter can happen).
    pub(crate) async fn transport_lost(&self) -> Option<DisconnectReason> {
        let mut state = self.state.subscribe();
        let Some(relink) = &self.relink else {
            let _ = state.wait_for(Option::is_some).await;
            return None;
        };
        let mut transport = relink.transport.subscribe();
        tokio::select! {
            lost = transport.wait_for(Option::is_some) => lost.ok().and_then(|r| r.clone()),
            _ = state.wait_for(Option::is_some) => None,
        }
    }

    /// Waits (up to `within`) until a live transport of this session has
    /// been told to stop and has detached: a server taking a resume over
    /// from a connection it still thinks alive.
    pub(crate) async fn detach_now(&self, within: std::time::Duration) -> bool {
        if self.detached().is_some() {
            return true;
        }
        let Some(relink) = &self.relink else {
            return false;
        };
        self.stop(Some(DisconnectReason::PeerHungUp));
        let mut transport = relink.transport.subscribe();
        tokio::time::timeout(within, transport.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Queues a volatile event frame if there is room now: on a session,
    /// as a `Volatile` frame (never sent again), and only while a transport
    /// is attached.
    pub(crate) fn try_queue_volatile(&self, frame: &[u8]) -> Result<(), QueueError> {
        if self.session.is_none() {
            return self.try_queue(frame);
        }
        if self.detached().is_some() {
            return Err(QueueError::Full);
        }
        let mut volatile = bytes::BytesMut::from(frame);
        if volatile.get(frame::PREFIX_LEN) == Some(&EVENT_TAG) {
            volatile[frame::PREFIX_LEN] = VOLATILE_TAG;
        }
        self.try_queue(&volatile)
    }

    /// What the next connection of this socket takes over.
    pub(crate) fn carry(&self) -> Carry<In> {
        Carry {
            handlers: self.handlers.clone(),
            data: self.data.clone(),
            started: self.started.clone(),
            settle: self.settle.clone(),
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
        // Emits call this every time, and the socket is nearly always
        // started already.
        if self.has_started() {
            return;
        }
        if !self.started.open.swap(true, Ordering::AcqRel) {
            self.started.opened.notify_waiters();
        }
    }

    /// Whether the socket has started (incoming events and requests go
    /// through to the handlers).
    pub(crate) fn has_started(&self) -> bool {
        self.started.open.load(Ordering::Acquire)
    }

    async fn wait_started(&self) {
        loop {
            // Registered before the flag is read, so a `start` in between
            // is not missed.
            let opened = self.started.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if self.has_started() {
                return;
            }
            opened.await;
        }
    }

    /// Why the connection ended, if it has.
    pub(crate) fn disconnect_reason(&self) -> Option<DisconnectReason> {
        self.state.borrow().clone()
    }

    /// Why the connection ended, once it has, or is ending: the reason to
    /// report when the outgoing queue refuses a frame (it is known a little
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
        self.observe_with(any, value);
    }

    /// Shows an incoming value to `any`, the `on_any` observer read from
    /// the handler table.
    fn observe_with(&self, any: Option<AnyFn<In>>, value: &In) {
        if let Some(any) = any {
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| any(value))) {
                let message = crate::handler::panic_message(&*p);
                tracing::warn!(socket = %self.id, %message, "on_any observer panicked");
            }
        }
    }

    /// Tells the error hook, or else logs (rate-limited per kind).
    pub(crate) fn report(&self, err: SocketError) {
        let hook = read(&self.handlers).error.clone();
        match hook {
            Some(hook) => hook(err),
            None => {
                let (kind, about) = match &err {
                    SocketError::DecodeEvent { .. } => ("undecodable event", ""),
                    // The first of each variant, as each is a different omission.
                    SocketError::NoHandler { event } => ("event without a handler", *event),
                    SocketError::RequestAsEvent { .. } => ("request sent as an event", ""),
                    SocketError::HandlerPanicked { .. } => ("event handler panicked", ""),
                    SocketError::HandlerFailed { .. } => ("event handler failed", ""),
                    SocketError::Missed {
                        why: MissReason::QueueFull,
                        ..
                    } => ("event dropped: queue full", ""),
                    SocketError::Missed {
                        why: MissReason::FrameTooLarge { .. },
                        ..
                    } => ("event dropped: over the peer's limit", ""),
                    SocketError::Unsent { .. } => ("socket error", ""),
                };
                warn_throttled!((kind, about), socket = %self.id, error = %err, "netsock socket error");
            }
        }
    }

    fn complete_call(&self, id: u64, reply: Reply) {
        if !self.calls.complete(id, reply) {
            // The caller may have given up in the meantime; that is fine.
            tracing::trace!(socket = %self.id, id, "reply to a call that is no longer waiting");
        }
    }

    /// Sends a close frame with `reason` and waits for the end; a peer that
    /// stopped reading cannot hold it up for more than twice the grace.
    pub(crate) async fn close(&self, reason: CloseReason) {
        // A session waiting for its client: no transport to say it on.
        if self.detached().is_some() {
            self.expire(DisconnectReason::ClosedLocally).await;
            return;
        }
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

    /// Stops the connection from this side: at once with `Some(reason)`;
    /// with `None` (our Close is sent), after the peer hangs up or
    /// [`CLOSE_GRACE`] passes, delivering what it still sends.
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
        // A session's end, whatever its transport's state.
        if let Some(relink) = &self.relink {
            relink.transport.send_if_modified(|t| t.take().is_some());
        }
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
        self.streams.close(&reason);
        for (_, handle) in lock(&self.running).drain() {
            handle.abort();
        }
        // Events received before the end are delivered: a client socket that
        // was never started starts now; a server socket starts when its
        // connection handler completes.
        if !server_side {
            self.start();
        }
        // A handler that never finishes must not keep the connection (and
        // the socket's place in its server) for ever: the events behind it
        // get the close grace, then the task is aborted.
        if let Some(mut events) = events {
            match tokio::time::timeout(CLOSE_GRACE, &mut events).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(socket = %self.id, %err, "event task failed"),
                Err(_) => {
                    events.abort();
                    warn_throttled!("event handler outlived its connection", socket = %self.id, "an event handler was still running when its connection ended; it was dropped after the close grace");
                }
            }
        }
        if let Some(on_end) = on_end {
            on_end(self.id);
        }
        self.state.send_replace(Some(reason.clone()));
        if !self.told.load(Ordering::SeqCst) {
            self.run_disconnect_hooks(&reason).await;
        }
        // A server's socket is done for good: drop the handlers, and with them
        // the socket handles they hold. A client's may reconnect; its
        // supervisor clears them at the very end.
        if server_side {
            write(&self.handlers).clear();
        }
    }
}

/// How long a closing side keeps reading while the peer finishes, and how
/// long `close()` waits for the outgoing queue before dropping the connection.
pub(crate) const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use super::testing::{config, connect, event, on_event, within, Api, EV};
    use super::CLOSE_GRACE;
    use crate::error::DisconnectReason;
    use crate::wire::frame::{CloseReason, Header};

    /// `close` sends `Close` after the frames already queued, then keeps
    /// delivering what the peer sent before it saw the `Close`, until the
    /// peer hangs up: the connection ends `ClosedLocally`.
    #[tokio::test(start_paused = true)]
    async fn close_goes_after_queued_frames_and_delivers_until_the_peer_hangs_up() {
        let mut conn = connect(config(), 4096);
        let (tx, mut got) = mpsc::unbounded_channel();
        on_event(&conn.shared, EV, move |value| {
            let _ = tx.send(value);
            async {}
        });
        conn.shared.try_queue(&event(Api::Ev(1))).unwrap();
        let closing = tokio::spawn({
            let shared = conn.shared.clone();
            async move { shared.close(CloseReason::Normal).await }
        });
        assert_eq!(conn.peer.recv().await.0, Header::Event);
        assert_eq!(conn.peer.recv().await.0, Header::Close(CloseReason::Normal));
        conn.peer.write(&event(Api::Ev(2))).await;
        assert_eq!(within(got.recv()).await, Some(Api::Ev(2)));
        assert!(!closing.is_finished());
        drop(conn.peer);
        within(closing).await.unwrap();
        assert_eq!(
            conn.shared.disconnect_reason(),
            Some(DisconnectReason::ClosedLocally)
        );
    }

    /// A peer that never hangs up after our `Close` is cut off
    /// `CLOSE_GRACE` later.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stays_after_our_close_is_cut_after_the_grace() {
        let mut conn = connect(config(), 4096);
        let closing = tokio::spawn({
            let shared = conn.shared.clone();
            async move { shared.close(CloseReason::Normal).await }
        });
        assert_eq!(conn.peer.recv().await.0, Header::Close(CloseReason::Normal));
        let sent = Instant::now();
        within(closing).await.unwrap();
        assert_eq!(sent.elapsed(), CLOSE_GRACE);
        assert_eq!(
            within(conn.shared.ended()).await,
            DisconnectReason::ClosedLocally
        );
        assert!(conn.peer.until_eof().await.is_empty());
    }
}
