//! Serving: the answering half of a request. Runs the handler for an
//! incoming request (in the reader when it is ready at once, otherwise in a
//! task of its own, cancellable by the caller) and queues its `Response`
//! or `Failure`.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use futures_util::future::{AbortHandle, Abortable};
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::handler_table::{call_caught, Slot};
use super::{QueueError, Shared};
use crate::events::{variant_name, Events};
use crate::sync::{lock, read};
use crate::throttle::warn_throttled;
use crate::wire::frame::{self, FrameError, Header, RemoteError};

/// A request being answered: resolves to the reply frame, if any.
pub(super) type Work = std::pin::Pin<Box<dyn Future<Output = Option<Bytes>> + Send>>;

/// Answers a request at once when its handler is ready at once (no task
/// spawned: the common case of a handler that does not wait); otherwise
/// hands back the started work for [`spawn_request`].
pub(super) async fn serve_now<In: Events>(
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
pub(super) struct Handling<In: Events>(Arc<Shared<In>>);

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
pub(super) fn spawn_request<In: Events>(
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
pub(super) async fn answer<In: Events>(
    shared: &Shared<In>,
    id: u64,
    payload: Bytes,
) -> Option<Bytes> {
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
        Err(FrameError::TooLarge { size, max }) => failure(
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
