//! A client socket's link to its server: the current connection, the
//! offline buffer, and the supervisor task that reconnects (see
//! [`Reconnect`]).
//!
//! The link is either *online* (emits go to the connection's queue) or
//! *offline* (emits go to a bounded buffer). The supervisor watches the
//! current connection; when it ends for a temporary reason it dials again
//! with backoff, replays the buffer on the new connection in order, and only
//! then makes it current, so that nothing emitted later overtakes the
//! buffered events.

pub mod reconnect;
mod resume;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use tracing::Instrument;

use crate::addr::Addr;
use crate::client::reconnect::{is_retryable, is_temporary};
use crate::client::reconnect::{Reconnect, Reconnected, SessionLoss};
use crate::config::Config;
use crate::conn::handler_table::{call_caught, BoxFuture};
use crate::conn::hello;
use crate::conn::session::Session;
use crate::conn::{wait_for_reason, Carry, QueueError, Shared};
use crate::error::{CallError, DisconnectReason, Error, Result, SocketError};
use crate::events::Events;
use crate::metrics::Meter;
use crate::sync::{lock, read, write};
use crate::transport;
use crate::wire::frame::{
    self, CloseReason, Header, LostReason, Resumption, SessionAsk, SessionGrant,
};
use tokio::io::AsyncWriteExt;

/// How long a new client socket settles: for this long after `connect`
/// returns, an incoming event or request whose handler is not registered
/// yet waits for it (see [`Socket`](crate::Socket#when-handlers-run)).
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

/// How an event is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Wait for room in the queue (`emit`).
    Wait,
    /// Fail when the queue is full (`try_emit`).
    Try,
    /// Drop, and count, when the queue is full or the socket is offline.
    Volatile,
}

/// A client socket's link to its server, which dials again when the
/// connection drops (named apart from the `{Trait}Client` types that
/// `#[netsock::service]` generates).
pub(crate) struct Redialer<In: Events, Out: Events> {
    addr: Addr,
    config: Config,
    auth: Option<Vec<u8>>,
    policy: Option<Reconnect>,
    state: Mutex<State<In>>,
    /// Set once, when the socket is closed for good.
    ended: watch::Sender<Option<DisconnectReason>>,
    /// Wakes the supervisor out of a backoff when `close()` is called.
    wake: Notify,
    /// `on_reconnect` hooks, run after each reconnect.
    on_reconnect: RwLock<Vec<ReconnectFn>>,
    /// Told when the link is back online, or ended: what calls made while
    /// offline wait for.
    back: Notify,
    /// Calls waiting for the link to come back.
    waiting_calls: AtomicUsize,
    _out: std::marker::PhantomData<fn(Out)>,
}

/// An `on_reconnect` hook.
pub(crate) type ReconnectFn = Arc<dyn Fn(Reconnected) -> BoxFuture<()> + Send + Sync>;

struct State<In> {
    /// The newest connection (dead while offline).
    conn: Arc<Shared<In>>,
    offline: Option<Offline>,
    /// `close()` was called: no more reconnects.
    closing: bool,
    /// The socket is closed for good (`ended` has the reason): read with
    /// the state, so that a send looks at one lock.
    ended: bool,
}

struct Offline {
    reason: DisconnectReason,
    since: Instant,
    frames: VecDeque<Bytes>,
    bytes: usize,
    /// The session the connection had, ended with it (the server closed
    /// it, or it was not resumable).
    session_loss: Option<SessionLoss>,
}

/// What a dial gave.
enum Dialed<In> {
    /// A new connection, with a new session when asked for and granted;
    /// and, when it was asked to resume one, why it did not.
    New(Arc<Shared<In>>, Option<LostReason>),
    /// The session it was asked to resume has its new transport.
    Resumed,
}

/// Connects and completes the handshake: one connection of a client
/// socket, which asks for a session when `config` says so, and to resume
/// `resume`'s session when given one that can be.
async fn dial<In: Events, Out: Events>(
    addr: &Addr,
    config: &Config,
    auth: Option<Vec<u8>>,
    carry: Carry<In>,
    resume: Option<&Arc<Shared<In>>>,
) -> Result<Dialed<In>> {
    let resuming = resume.and_then(|old| old.session.as_ref());
    let session = resuming.filter(|s| !s.overflowed());
    let ask = match (session, config.recovery) {
        (Some(s), _) => Some(SessionAsk::Resume {
            token: s.token(),
            received: s.received(),
        }),
        (None, Some(_)) => Some(SessionAsk::New),
        (None, None) => None,
    };
    let after = config.handshake_timeout;
    let handshake = async {
        let (read, writer, peer) = transport::connect(addr, config).await?;
        hello::connect::<In, Out>(read, writer, peer, config, auth, ask).await
    };
    let (mut conn, grant) =
        tokio::time::timeout(after, handshake)
            .await
            .map_err(|_| Error::HandshakeTimeout {
                addr: addr.to_string(),
                after,
            })??;
    let lost = match (resume, session, &grant) {
        (
            Some(old),
            Some(session),
            Some(SessionGrant {
                token,
                resumption: Resumption::Resumed { received },
                ..
            }),
        ) => {
            return match session.replay_after(*received) {
                Ok(replay) => {
                    session.set_token(*token);
                    old.attach(conn.reader, conn.writer, replay);
                    tracing::info!(socket = %old.id, "session resumed");
                    Ok(Dialed::Resumed)
                }
                Err(err) => {
                    // The server resumed a session this side cannot: end it
                    // there too, and start anew at the next attempt.
                    let why = format!("cannot resume the session: {err:?}");
                    let close = Header::Close(CloseReason::Protocol(why.clone()));
                    if let Ok(frame) = frame::encode_control(close, conn.peer_max_frame) {
                        let _ = conn.writer.write_all(&frame).await;
                    }
                    Err(Error::Protocol(why))
                }
            };
        }
        (
            Some(_),
            _,
            Some(SessionGrant {
                resumption: Resumption::Lost(why),
                ..
            }),
        ) => Some(why.clone()),
        // This side no longer had what the server did not receive.
        (Some(_), None, _) if resuming.is_some() => Some(LostReason::Overflowed),
        (Some(_), _, _) if resuming.is_some() => Some(LostReason::Unknown),
        _ => None,
    };
    if let (Some(grant), Some(recovery)) = (&grant, config.recovery) {
        let window = Duration::from_millis(grant.window_ms);
        let session = Session::new(grant.token, None, recovery.with_window(window));
        conn.session = Some(Arc::new(session));
    }
    let span = tracing::info_span!(
        "connection",
        id = conn.id.0,
        peer = %conn.peer,
        transport = conn.peer.transport(),
        side = "client",
    );
    let conn = span.in_scope(|| {
        tracing::info!(session = conn.session.is_some(), "connected");
        Shared::spawn(conn, Arc::new(config.clone()), carry, None)
    });
    Ok(Dialed::New(conn, lost))
}

/// A dial that does not resume gives a new connection.
fn fresh<In>(dialed: Dialed<In>) -> Result<Arc<Shared<In>>> {
    match dialed {
        Dialed::New(conn, _) => Ok(conn),
        Dialed::Resumed => Err(Error::Protocol("resumed a session not asked for".into())),
    }
}

impl<In: Events, Out: Events> Redialer<In, Out> {
    pub(crate) async fn connect(
        addr: Addr,
        config: Config,
        auth: Option<Vec<u8>>,
        policy: Option<Reconnect>,
        wait_for_server: Option<Duration>,
    ) -> Result<Arc<Self>> {
        let conn = match wait_for_server {
            None => {
                let carry = Carry::new(Default::default(), Meter::default(), true);
                fresh(dial::<In, Out>(&addr, &config, auth.clone(), carry, None).await?)?
            }
            Some(deadline) => {
                let backoff = policy.clone().unwrap_or_default();
                first_dial::<In, Out>(&addr, &config, &auth, &backoff, deadline).await?
            }
        };
        // Handlers are registered after `connect` returns: the socket starts
        // now, and settles for a moment (see `Settle`).
        if let Some(settle) = &conn.settle {
            settle.begin(SETTLE);
        }
        conn.start();
        let span = tracing::info_span!("client", server = %addr);
        let client = Arc::new(Redialer {
            addr,
            config,
            auth,
            policy,
            state: Mutex::new(State {
                conn: conn.clone(),
                offline: None,
                closing: false,
                ended: false,
            }),
            ended: watch::Sender::new(None),
            wake: Notify::new(),
            on_reconnect: RwLock::new(Vec::new()),
            back: Notify::new(),
            waiting_calls: AtomicUsize::new(0),
            _out: std::marker::PhantomData,
        });
        tokio::spawn(supervise(Arc::downgrade(&client), conn).instrument(span));
        Ok(client)
    }

    /// The newest connection, live or not.
    pub(crate) fn current(&self) -> Arc<Shared<In>> {
        lock(&self.state).conn.clone()
    }

    /// The connection to make a request on, or why there is none.
    pub(crate) fn online(&self) -> std::result::Result<Arc<Shared<In>>, DisconnectReason> {
        let state = lock(&self.state);
        if state.ended {
            drop(state);
            return Err(self.end_reason().unwrap_or(DisconnectReason::ClosedLocally));
        }
        match &state.offline {
            Some(offline) => Err(offline.reason.clone()),
            None => Ok(state.conn.clone()),
        }
    }

    /// The connection to make a call on, waiting up to `within` while the
    /// link is offline and reconnecting (the call's frame has not left, so
    /// sending it on the next connection is safe). As many calls wait as
    /// the offline buffer holds events; past that, or with
    /// [`fail_offline`](Reconnect::fail_offline), or once the socket is
    /// closed for good, the call fails at once with `Disconnected`.
    pub(crate) async fn online_within(
        &self,
        within: Duration,
    ) -> std::result::Result<Arc<Shared<In>>, CallError> {
        let reason = match self.online() {
            Ok(conn) => return Ok(conn),
            Err(reason) => reason,
        };
        let capacity = self.policy.as_ref().and_then(|p| p.offline).unwrap_or(0);
        let waiting = WaitingCall::enter(&self.waiting_calls);
        if waiting.before >= capacity || self.end_reason().is_some() {
            return Err(CallError::Disconnected(reason));
        }
        let back = async {
            loop {
                let notified = self.back.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                match self.online() {
                    Ok(conn) => return Ok(conn),
                    Err(reason) if self.end_reason().is_some() => {
                        return Err(CallError::Disconnected(reason))
                    }
                    Err(_) => notified.await,
                }
            }
        };
        tokio::time::timeout(within, back)
            .await
            .unwrap_or(Err(CallError::Timeout { after: within }))
    }

    /// Whether a call whose frame could not be queued on `conn` (it had
    /// just broken) may wait for the next connection.
    pub(crate) fn will_reconnect(&self, conn: &Arc<Shared<In>>) -> bool {
        self.went_offline(conn, &conn.gone())
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.online()
            .is_ok_and(|conn| conn.disconnect_reason().is_none() && conn.detached().is_none())
    }

    /// Why the socket closed for good, if it has.
    pub(crate) fn end_reason(&self) -> Option<DisconnectReason> {
        self.ended.borrow().clone()
    }

    /// Where an event goes: the live connection, or (then it is done) the
    /// offline buffer.
    fn route(
        &self,
        frame: &[u8],
        event: &'static str,
        mode: Mode,
    ) -> Result<Option<Arc<Shared<In>>>> {
        let mut state = lock(&self.state);
        if state.ended {
            drop(state);
            let reason = self.end_reason().unwrap_or(DisconnectReason::ClosedLocally);
            return Err(Error::Disconnected(reason));
        }
        let State { conn, offline, .. } = &mut *state;
        match offline {
            Some(offline) => self
                .buffer(offline, conn, Bytes::copy_from_slice(frame), event, mode)
                .map(|()| None),
            None => Ok(Some(conn.clone())),
        }
    }

    /// Sends an event frame, waiting for room in the queue; buffers it while
    /// offline.
    pub(crate) async fn send(&self, frame: Bytes, event: &'static str) -> Result<()> {
        loop {
            let Some(conn) = self.route(&frame, event, Mode::Wait)? else {
                return Ok(());
            };
            if conn.queue(&frame).await.is_ok() {
                return Ok(());
            }
            self.broke(&conn)?;
        }
    }

    /// Queues an event frame if the queue has room now; buffers it while
    /// offline (or drops it, if volatile). `Full` when the queue has no
    /// room; never `Closed`.
    pub(crate) fn offer(
        &self,
        frame: &[u8],
        event: &'static str,
        mode: Mode,
    ) -> Result<std::result::Result<(), QueueError>> {
        loop {
            let Some(conn) = self.route(frame, event, mode)? else {
                return Ok(Ok(()));
            };
            let queued = match mode {
                Mode::Volatile => conn.try_queue_volatile(frame),
                _ => conn.try_queue(frame),
            };
            match queued {
                Err(QueueError::Closed) => self.broke(&conn)?,
                done => return Ok(done),
            }
        }
    }

    /// The connection broke under a sender: fine (the link is offline, the
    /// sender buffers) if the supervisor is going to reconnect.
    fn broke(&self, conn: &Arc<Shared<In>>) -> Result<()> {
        let reason = conn.gone();
        match self.went_offline(conn, &reason) {
            true => Ok(()),
            false => Err(Error::Disconnected(reason)),
        }
    }

    /// Keeps an event emitted while offline, as the policy says.
    fn buffer(
        &self,
        offline: &mut Offline,
        conn: &Shared<In>,
        frame: Bytes,
        event: &'static str,
        mode: Mode,
    ) -> Result<()> {
        if mode == Mode::Volatile {
            conn.meter.add(|c| &c.events_dropped, 1);
            return Ok(());
        }
        let Some(capacity) = self.policy.as_ref().and_then(|p| p.offline) else {
            return Err(Error::Disconnected(offline.reason.clone()));
        };
        let bytes = offline.bytes + frame.len();
        if offline.frames.len() >= capacity || bytes > self.config.queue_bytes {
            return Err(Error::OfflineBufferFull { event, capacity });
        }
        offline.bytes = bytes;
        offline.frames.push_back(frame);
        Ok(())
    }

    /// Marks the link offline after `conn` ended, if a reconnect will follow.
    fn went_offline(&self, conn: &Arc<Shared<In>>, reason: &DisconnectReason) -> bool {
        let mut state = lock(&self.state);
        if state.closing || self.policy.is_none() || !is_temporary(reason) {
            return false;
        }
        if Arc::ptr_eq(&state.conn, conn) && state.offline.is_none() {
            state.offline = Some(Offline {
                reason: reason.clone(),
                since: Instant::now(),
                frames: VecDeque::new(),
                bytes: 0,
                session_loss: conn.session.as_ref().map(|session| SessionLoss {
                    why: LostReason::Unknown,
                    sent: session.unconfirmed(),
                    received: None,
                    calls_failed: 0,
                }),
            });
        }
        true
    }

    /// Closes the socket for good: no more reconnects.
    pub(crate) async fn close(&self, reason: CloseReason) {
        let live = {
            let mut state = lock(&self.state);
            state.closing = true;
            // A detached session is ended by the supervisor, once woken.
            (state.offline.is_none() && state.conn.detached().is_none()).then(|| state.conn.clone())
        };
        self.wake.notify_one();
        if let Some(conn) = live {
            conn.close(reason).await;
        }
        self.closed().await;
    }

    /// Waits until the socket is closed for good.
    pub(crate) async fn closed(&self) -> DisconnectReason {
        wait_for_reason(&self.ended).await
    }

    /// Ends the socket: reports what the offline buffer still held, and drops
    /// the handlers (and the socket handles they hold).
    fn end(&self, conn: &Shared<In>, reason: DisconnectReason) {
        let unsent = {
            let mut state = lock(&self.state);
            let unsent = state.offline.take().map_or(0, |o| o.frames.len());
            self.ended.send_replace(Some(reason.clone()));
            state.ended = true;
            unsent
        };
        self.back.notify_waiters();
        tracing::info!(%reason, "closed for good");
        if unsent > 0 {
            conn.meter.add(|c| &c.events_dropped, unsent as u64);
            conn.report(SocketError::Unsent {
                events: unsent,
                reason,
            });
        }
        write(&conn.handlers).clear();
        // Hooks may hold the socket, and so this link: break the cycle.
        write(&self.on_reconnect).clear();
    }

    /// Waits `delay`, then dials, resuming `old`'s session if `resume`;
    /// `None` when `close()` woke it first.
    async fn dial_after(
        &self,
        delay: Duration,
        old: &Arc<Shared<In>>,
        resume: bool,
    ) -> Option<Result<Dialed<In>>> {
        let carry = old.carry();
        tokio::select! {
            () = self.wake.notified() => None,
            dialed = async {
                tokio::time::sleep(delay).await;
                let resume = resume.then_some(old);
                dial::<In, Out>(&self.addr, &self.config, self.auth.clone(), carry, resume).await
            } => Some(dialed),
        }
    }

    /// Adds a hook run after each reconnect.
    pub(crate) fn on_reconnect(&self, hook: ReconnectFn) {
        write(&self.on_reconnect).push(hook);
    }
}

/// Dials until the server answers, with `backoff`'s delays, for up to
/// `deadline`: for a client that may start before its server.
async fn first_dial<In: Events, Out: Events>(
    addr: &Addr,
    config: &Config,
    auth: &Option<Vec<u8>>,
    backoff: &Reconnect,
    deadline: Duration,
) -> Result<Arc<Shared<In>>> {
    let started = tokio::time::Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let carry = Carry::new(Default::default(), Meter::default(), true);
        let err = match dial::<In, Out>(addr, config, auth.clone(), carry, None)
            .await
            .and_then(fresh)
        {
            Ok(conn) => return Ok(conn),
            Err(err) if is_retryable(&err) => err,
            Err(err) => return Err(err),
        };
        let delay = backoff.delay(attempts);
        let waited = started.elapsed();
        if waited + delay >= deadline {
            return Err(Error::ServerUnreachable {
                addr: addr.clone(),
                attempts,
                waited,
                last: err.to_string(),
            });
        }
        tracing::debug!(attempts, ?delay, error = %err, "the server is not up yet");
        tokio::time::sleep(delay).await;
    }
}

/// Watches a client's connection and reconnects when it ends for a
/// temporary reason; ends the socket otherwise. Holds the client weakly:
/// once every handle is dropped there is nobody to reconnect for.
async fn supervise<In: Events, Out: Events>(
    client: Weak<Redialer<In, Out>>,
    mut conn: Arc<Shared<In>>,
) {
    loop {
        // A session's transport that breaks is resumed, or replaced.
        if conn.session.is_some() {
            if let Some(reason) = conn.transport_lost().await {
                match resume::resume(&client, &conn, reason).await {
                    Some(next) => conn = next,
                    None => return,
                }
                continue;
            }
        }
        let reason = conn.ended().await;
        let Some(link) = client.upgrade() else { return };
        if !link.went_offline(&conn, &reason) {
            // After `close()` the socket ends because of it, whatever ended
            // the last connection first.
            let closing = lock(&link.state).closing;
            link.end(
                &conn,
                if closing {
                    DisconnectReason::ClosedLocally
                } else {
                    reason
                },
            );
            return;
        }
        drop(link);
        match reconnect(&client, &conn).await {
            Some(next) => conn = next,
            None => return,
        }
    }
}

/// Dials until a connection is back and the offline buffer is replayed on
/// it, or the attempts run out, or the socket is closed.
async fn reconnect<In: Events, Out: Events>(
    client: &Weak<Redialer<In, Out>>,
    old: &Arc<Shared<In>>,
) -> Option<Arc<Shared<In>>> {
    let mut attempt = 0;
    let mut last_error = String::new();
    loop {
        attempt += 1;
        let link = client.upgrade()?;
        let policy = link.policy.clone()?;
        if !policy.may_try(attempt) {
            let attempts = attempt - 1;
            link.end(
                old,
                DisconnectReason::ReconnectFailed {
                    attempts,
                    error: last_error,
                },
            );
            return None;
        }
        let delay = policy.delay(attempt);
        tracing::info!(attempt, ?delay, "reconnecting");
        let dialed = link
            .dial_after(delay, old, false)
            .await
            .map(|dialed| dialed.and_then(fresh));
        let new = match dialed {
            // Woken by `close()`.
            None if lock(&link.state).closing => {
                link.end(old, DisconnectReason::ClosedLocally);
                return None;
            }
            None => continue,
            Some(Err(err)) => {
                tracing::info!(attempt, error = %err, "reconnect attempt failed");
                last_error = err.to_string();
                if !is_retryable(&err) {
                    link.end(
                        old,
                        DisconnectReason::ReconnectFailed {
                            attempts: attempt,
                            error: last_error,
                        },
                    );
                    return None;
                }
                continue;
            }
            Some(Ok(new)) => new,
        };
        match link.replay(&new).await {
            Replay::Online(done) => {
                tracing::info!(attempt, replayed = done.replayed, "reconnected");
                let event = Reconnected {
                    attempts: attempt,
                    ..done
                };
                let hooks = match client.upgrade() {
                    Some(client) => read(&client.on_reconnect).clone(),
                    None => Vec::new(),
                };
                for hook in hooks {
                    if let Err(message) = call_caught(|r| hook(r), event.clone()).await {
                        tracing::warn!(socket = %new.id, %message, "on_reconnect handler panicked");
                    }
                }
                return Some(new);
            }
            Replay::Closing => {
                new.close(CloseReason::Normal).await;
                link.end(&new, DisconnectReason::ClosedLocally);
                return None;
            }
            // The new connection broke during the replay: what it did not
            // take is back in the buffer; try again.
            Replay::Broken => continue,
        }
    }
}

/// One call waiting for the link to come back, counted while it waits.
struct WaitingCall<'a> {
    count: &'a AtomicUsize,
    /// How many were waiting before this one.
    before: usize,
}

impl<'a> WaitingCall<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        let before = count.fetch_add(1, Ordering::SeqCst);
        WaitingCall { count, before }
    }
}

impl Drop for WaitingCall<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Replay {
    Online(Reconnected),
    Closing,
    Broken,
}

impl<In: Events, Out: Events> Redialer<In, Out> {
    /// Sends the offline buffer on `new`, in order, then makes it current:
    /// emits made meanwhile join the buffer's end, so none overtakes.
    async fn replay(&self, new: &Arc<Shared<In>>) -> Replay {
        let mut replayed = 0;
        loop {
            let frame = {
                let mut state = lock(&self.state);
                if state.closing {
                    return Replay::Closing;
                }
                let Some(offline) = state.offline.as_mut() else {
                    return Replay::Closing;
                };
                match offline.frames.pop_front() {
                    Some(frame) => {
                        offline.bytes -= frame.len();
                        frame
                    }
                    None => {
                        let Some(offline) = state.offline.take() else {
                            return Replay::Closing;
                        };
                        state.conn = new.clone();
                        self.back.notify_waiters();
                        return Replay::Online(Reconnected {
                            attempts: 0,
                            offline: offline.since.elapsed(),
                            replayed,
                            reason: offline.reason,
                            recovered: false,
                            lost: offline.session_loss,
                        });
                    }
                }
            };
            if new.queue(&frame).await.is_err() {
                if let Some(offline) = lock(&self.state).offline.as_mut() {
                    offline.bytes += frame.len();
                    offline.frames.push_front(frame);
                }
                return Replay::Broken;
            }
            replayed += 1;
        }
    }
}
