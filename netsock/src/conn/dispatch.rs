//! Event dispatch: decodes an incoming event and runs its handler, in the
//! reader when the handler finishes at once, otherwise in the connection's
//! event task, one at a time and in arrival order.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::handler_table::{BoxFuture, Slot};
use super::Shared;
use crate::error::{CodecError, SocketError};
use crate::events::{variant_name, Events};
use crate::sync::read;

/// A connection's event task and the queue feeding it, started by the first
/// event that cannot be handled in the reader: an idle connection has
/// neither.
pub(super) struct EventTask {
    pub(super) tx: mpsc::Sender<Inbound>,
    pub(super) handle: tokio::task::JoinHandle<()>,
}

/// What the reader hands the event task.
pub(super) enum Inbound {
    /// An event to decode and handle.
    Payload(Bytes),
    /// An event whose handler the reader started and which is still waiting.
    Running(Running),
}

/// A started event handler and the event's name.
pub(super) type Running = (BoxFuture<()>, &'static str);

impl EventTask {
    pub(super) fn start<In: Events>(shared: &Arc<Shared<In>>) -> Self {
        let (tx, rx) = mpsc::channel(shared.config.queue_capacity);
        // The reader runs in the connection's span; so does its event task.
        let span = tracing::Span::current();
        let handle = tokio::spawn(event_loop(shared.clone(), rx).instrument(span));
        EventTask { tx, handle }
    }
}

/// Runs event handlers one at a time, in the order the events arrived.
pub(super) async fn event_loop<In: Events>(
    shared: Arc<Shared<In>>,
    mut events: mpsc::Receiver<Inbound>,
) {
    shared.wait_started().await;
    while let Some(inbound) = events.recv().await {
        let running = match inbound {
            Inbound::Running(running) => Some(running),
            Inbound::Payload(payload) => start_handler(&shared, payload),
        };
        if let Some((handler, event)) = running {
            if let Err(p) = AssertUnwindSafe(handler).catch_unwind().await {
                let message = super::handler_table::panic_message(&*p);
                shared.report(SocketError::HandlerPanicked { event, message });
            }
        }
        // Handled: once nothing is queued, the reader handles events itself.
        shared.events_queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Handles an event in the reader when its handler finishes at once (the
/// common case: no task wake-up); otherwise gives back the started handler
/// for the event task.
pub(super) async fn handle_now<In: Events>(
    shared: &Arc<Shared<In>>,
    payload: Bytes,
) -> Option<Inbound> {
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
            let message = super::handler_table::panic_message(&*p);
            shared.report(SocketError::HandlerPanicked { event, message });
            None
        }
    }
}

/// Decodes an event and calls its handler, giving the handler's future;
/// reports an event that cannot be decoded or has no handler.
pub(super) fn start_handler<In: Events>(shared: &Shared<In>, payload: Bytes) -> Option<Running> {
    let value = match postcard::from_bytes::<In>(&payload) {
        Ok(value) => value,
        Err(source) => {
            shared.meter.add(|c| &c.events_invalid, 1);
            shared.report(SocketError::DecodeEvent {
                source: CodecError::new(source),
            });
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
        shared.report(SocketError::RequestAsEvent { event });
        return None;
    }
    let slot = read(&shared.handlers).slot(index);
    let Slot::Event(handler) = slot else {
        shared.meter.add(|c| &c.events_unhandled, 1);
        shared.report(SocketError::NoHandler { event });
        return None;
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler(value))) {
        Ok(future) => Some((future, event)),
        Err(p) => {
            let message = super::handler_table::panic_message(&*p);
            shared.report(SocketError::HandlerPanicked { event, message });
            None
        }
    }
}
