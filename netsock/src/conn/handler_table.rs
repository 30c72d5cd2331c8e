//! The per-socket handler table and the calls into user code (with panics
//! caught, so a faulty handler fails alone).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::streams::{ItemFrames, Upload};
use crate::error::{DisconnectReason, SocketError};
use crate::handler::panic_message;
use crate::sync::lock;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// What an event handler's future gives: `Err(message)` when it returned an
/// error (reported to the error hook).
pub(crate) type Outcome = Result<(), String>;
/// An event handler: called with the event and the calling task's context,
/// it runs the handler's future as far as it goes at once (see
/// [`event_fn`]).
pub(crate) type EventFn<In> = Arc<dyn Fn(In, &mut Context<'_>) -> Called + Send + Sync>;

/// What calling an [`EventFn`] gave.
pub(crate) enum Called {
    /// The handler finished at once, with this outcome.
    Done(Outcome),
    /// The handler is still running: its future, polled once.
    Running(BoxFuture<Outcome>),
}

/// Makes an [`EventFn`] of a handler giving futures. Each future is polled
/// once where it is made; one that finishes at once (the common case)
/// leaves its allocation for the next one, so that handling an event
/// allocates nothing. One that waits is handed out whole.
pub(crate) fn event_fn<In, F, Fut>(handler: F) -> EventFn<In>
where
    F: Fn(In) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let spare: Mutex<Option<Pin<Box<Fut>>>> = Mutex::new(None);
    Arc::new(move |value, cx| {
        let future = handler(value);
        // Never contended: one connection's events are handled one at a
        // time. A panic while it was held left it empty, which is fine.
        let mut slot = match spare.try_lock() {
            Ok(slot) => Some(slot),
            Err(TryLockError::Poisoned(slot)) => Some(slot.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let mut boxed = match slot.as_mut().and_then(|slot| slot.take()) {
            Some(mut boxed) => {
                boxed.set(future);
                boxed
            }
            None => Box::pin(future),
        };
        match boxed.as_mut().poll(cx) {
            Poll::Ready(outcome) => {
                if let Some(slot) = slot.as_mut() {
                    **slot = Some(boxed);
                }
                Called::Done(outcome)
            }
            Poll::Pending => Called::Running(boxed),
        }
    })
}
/// Takes the request, its id, the largest frame the peer accepts and the
/// upload the request carries, if it does; returns the complete reply
/// frame.
pub(crate) type RequestFn<In> =
    Arc<dyn Fn(In, u64, usize, Option<Upload>) -> BoxFuture<Option<Bytes>> + Send + Sync>;
/// Takes what a [`RequestFn`] takes; gives the handler's stream as frames.
pub(crate) type StreamFn<In> =
    Arc<dyn Fn(In, u64, usize, Option<Upload>) -> BoxFuture<ItemFrames> + Send + Sync>;
pub(crate) type DisconnectFn = Arc<dyn Fn(DisconnectReason) -> BoxFuture<()> + Send + Sync>;
pub(crate) type ErrorFn = Arc<dyn Fn(SocketError) + Send + Sync>;
pub(crate) type AnyFn<In> = Arc<dyn Fn(&In) + Send + Sync>;

pub(crate) enum Slot<In> {
    Empty,
    Event(EventFn<In>),
    Request(RequestFn<In>),
    Stream(StreamFn<In>),
}

impl<In> Clone for Slot<In> {
    fn clone(&self) -> Self {
        match self {
            Slot::Empty => Slot::Empty,
            Slot::Event(f) => Slot::Event(f.clone()),
            Slot::Request(f) => Slot::Request(f.clone()),
            Slot::Stream(f) => Slot::Stream(f.clone()),
        }
    }
}

pub(crate) struct Handlers<In> {
    pub(crate) slots: Vec<Slot<In>>,
    /// Per event variant, the `once_*` calls waiting for the next one,
    /// oldest first. Empty until the first `once_*` call: most sockets
    /// never make one, and a queue per variant costs every connection.
    pub(crate) once: Vec<VecDeque<oneshot::Sender<In>>>,
    /// The [`EventStream`](crate::EventStream) taking the events that have
    /// no handler of their own, and its ticket.
    pub(crate) stream: Option<(u64, EventFn<In>)>,
    pub(crate) disconnect: Vec<DisconnectFn>,
    pub(crate) error: Option<ErrorFn>,
    pub(crate) any: Option<AnyFn<In>>,
}

/// Where an incoming event goes.
pub(crate) enum Route<In> {
    /// To this handler (or the event stream), with the value.
    Handler(EventFn<In>, In),
    /// It was handed to a `once_*` call.
    Taken,
    /// Nowhere: nothing takes it. The value, back.
    Nowhere(In),
}

impl<In> Handlers<In> {
    pub(crate) fn new(variants: usize) -> Self {
        Handlers {
            slots: (0..variants).map(|_| Slot::Empty).collect(),
            once: Vec::new(),
            stream: None,
            disconnect: Vec::new(),
            error: None,
            any: None,
        }
    }

    pub(crate) fn slot(&self, index: u32) -> Slot<In> {
        self.slots
            .get(index as usize)
            .cloned()
            .unwrap_or(Slot::Empty)
    }

    /// Whether an event of this variant has somewhere to go.
    pub(crate) fn takes_event(&self, index: u32) -> bool {
        let i = index as usize;
        self.once
            .get(i)
            .is_some_and(|q| q.iter().any(|tx| !tx.is_closed()))
            || matches!(self.slots.get(i), Some(Slot::Event(_)))
            || self.stream.is_some()
    }

    /// Whether a request of this variant has a handler.
    pub(crate) fn takes_request(&self, index: u32) -> bool {
        matches!(
            self.slots.get(index as usize),
            Some(Slot::Request(_) | Slot::Stream(_))
        )
    }

    /// Where an event of variant `index` goes when no `once_*` call takes
    /// it: its handler, else the event stream.
    fn handler_for(&self, index: u32, value: In) -> Route<In> {
        match self.takes(index) {
            Some(handler) => Route::Handler(handler, value),
            None => Route::Nowhere(value),
        }
    }

    /// The event handler of variant `index`, else the event stream's.
    fn takes(&self, index: u32) -> Option<EventFn<In>> {
        match self.slots.get(index as usize) {
            Some(Slot::Event(handler)) => Some(handler.clone()),
            _ => self.stream.as_ref().map(|(_, stream)| stream.clone()),
        }
    }

    /// The handler (or event stream) an event of variant `index` goes to,
    /// when no `once_*` call waits for it; `None` when one may, or when
    /// nothing takes it: [`route`] decides.
    pub(crate) fn event_handler(&self, index: u32) -> Option<EventFn<In>> {
        if !self.once.get(index as usize).is_none_or(VecDeque::is_empty) {
            return None;
        }
        self.takes(index)
    }

    /// Adds a `once_*` call waiting for the next event of this variant,
    /// forgetting those given up on. Out of range: nothing waits, and the
    /// receiver ends at once.
    pub(crate) fn add_once(&mut self, index: u32, tx: oneshot::Sender<In>) {
        if self.once.is_empty() {
            self.once = (0..self.slots.len()).map(|_| VecDeque::new()).collect();
        }
        if let Some(queue) = self.once.get_mut(index as usize) {
            queue.retain(|tx| !tx.is_closed());
            queue.push_back(tx);
        }
    }

    /// Drops every handler, breaking the cycles made by handlers that hold
    /// their own socket; `once_*` calls and event streams end.
    pub(crate) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = Slot::Empty);
        self.once.iter_mut().for_each(VecDeque::clear);
        self.stream = None;
        self.disconnect.clear();
        self.any = None;
    }
}

/// Finds where an event of variant `index` goes: the oldest waiting
/// `once_*` call, else the variant's handler, else the event stream.
pub(crate) fn route<In>(
    handlers: &std::sync::RwLock<Handlers<In>>,
    index: u32,
    value: In,
) -> Route<In> {
    let mut value = value;
    {
        // The common case, no `once_*` call waiting: one read of the table.
        let table = crate::sync::read(handlers);
        if table
            .once
            .get(index as usize)
            .is_none_or(VecDeque::is_empty)
        {
            return table.handler_for(index, value);
        }
    }
    {
        let mut table = crate::sync::write(handlers);
        if let Some(queue) = table.once.get_mut(index as usize) {
            while let Some(tx) = queue.pop_front() {
                match tx.send(value) {
                    Ok(()) => return Route::Taken,
                    // That call was given up on: the next one, or the handler.
                    Err(back) => value = back,
                }
            }
        }
    }
    crate::sync::read(handlers).handler_for(index, value)
}

/// The first moments of a client socket: until the deadline (or until
/// [`Socket::start`](crate::Socket::start)), an incoming event or request
/// whose handler is not registered yet waits for it, with everything that
/// arrived after it, instead of being reported as unhandled. So handlers
/// registered one after another right after `connect` miss nothing, in any
/// order and on any runtime.
#[derive(Default)]
pub(crate) struct Settle {
    /// Whether `until` may be set: read on every event, so that a socket
    /// done settling takes no lock for it.
    settling: AtomicBool,
    until: Mutex<Option<Instant>>,
    /// Woken when a handler is registered or settling ends.
    changed: Notify,
}

impl Settle {
    /// Starts settling, for `grace` from now.
    pub(crate) fn begin(&self, grace: Duration) {
        *lock(&self.until) = Some(Instant::now() + grace);
        self.settling.store(true, Ordering::Release);
    }

    /// Stops settling: from now on, what has no handler is reported at once.
    pub(crate) fn end(&self) {
        self.settling.store(false, Ordering::Release);
        if lock(&self.until).take().is_some() {
            self.changed.notify_waiters();
        }
    }

    /// Whether what has no handler yet should wait for it.
    pub(crate) fn active(&self) -> bool {
        if !self.settling.load(Ordering::Acquire) {
            return false;
        }
        let mut until = lock(&self.until);
        match *until {
            Some(t) if Instant::now() < t => true,
            _ => {
                *until = None;
                self.settling.store(false, Ordering::Release);
                false
            }
        }
    }

    /// A handler was registered: wakes whatever waits for one.
    pub(crate) fn registered(&self) {
        if self.settling.load(Ordering::Acquire) && lock(&self.until).is_some() {
            self.changed.notify_waiters();
        }
    }

    /// Waits until `ready()` holds or settling ends.
    pub(crate) async fn wait(&self, ready: impl Fn() -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let Some(until) = *lock(&self.until) else {
                return;
            };
            if ready() || Instant::now() >= until {
                return;
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }
}

/// Calls a handler and awaits its future, turning a panic in either into
/// `Err(message)`.
pub(crate) async fn call_caught<A, T>(
    f: impl FnOnce(A) -> BoxFuture<T>,
    arg: A,
) -> Result<T, String> {
    let fut =
        std::panic::catch_unwind(AssertUnwindSafe(|| f(arg))).map_err(|p| panic_message(&*p))?;
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| panic_message(&*p))
}
