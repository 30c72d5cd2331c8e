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
use super::streams::{Dir, Upload};
use super::{QueueError, Shared};
use crate::events::{variant_name, Events, Variant};
use crate::sync::{lock, read};
use crate::throttle::warn_throttled;
use crate::wire::frame::{self, FrameError, Header, RemoteError};

/// A request being answered: resolves to the reply frame, if any.
pub(super) type Work = std::pin::Pin<Box<dyn Future<Output = Option<Bytes>> + Send>>;

/// Answers a request at once when its handler is ready at once (no task
/// spawned: the common case of a handler that does not wait); otherwise
/// hands back the started work for [`spawn_request`].
/// `event` is the name of the variant requested, for the request's span.
pub(super) async fn serve_now<In: Events>(
    shared: &Arc<Shared<In>>,
    (id, arrived, timeout_ms): (u64, std::time::Instant, u32),
    payload: Bytes,
    upload: Option<Upload>,
    event: &'static str,
) -> Option<(Work, tracing::Span, Handling<In>)> {
    let span = tracing::debug_span!("request", id, event);
    let handling = Handling::new(shared);
    let task_shared = shared.clone();
    let mut work: Work = Box::pin(crate::deadline::with_deadline(
        arrived,
        timeout_ms,
        async move { answer(&task_shared, id, payload, upload).await },
    ));
    // Not started: the handlers may not be registered yet; wait in a task.
    if !shared.has_started() {
        return Some((work, span, handling));
    }
    // Entered only when someone listens: with `tracing`'s `log` feature on,
    // even a disabled span costs something at each entry.
    let polled = std::future::poll_fn(|cx| {
        Poll::Ready(if span.is_disabled() {
            work.as_mut().poll(cx)
        } else {
            span.in_scope(|| work.as_mut().poll(cx))
        })
    });
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

/// The variant a request's payload names (its first varint is the variant
/// index), if it names one.
pub(super) fn requested<In: Events>(payload: &[u8]) -> Option<&'static Variant> {
    let (index, _) = postcard::take_from_bytes::<u32>(payload).ok()?;
    In::VARIANTS.get(index as usize)
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
    let mine = handle.clone();
    if let Some(earlier) = lock(&shared.running).insert(id, handle) {
        // The peer reused the id of a request still running, which the
        // protocol forbids: the earlier one is cancelled, so that every
        // running handler stays cancellable, and is aborted when the
        // connection ends.
        earlier.abort();
    }
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
            // Aborted: a Cancel, a reused id or the end took the entry
            // already, or it is another request's now.
            if !mine.is_aborted() {
                lock(&shared.running).remove(&id);
            }
        }
        .instrument(span),
    );
}

/// Runs the handler for one request (giving it the upload the request
/// carries, if any) and returns the reply frame.
pub(super) async fn answer<In: Events>(
    shared: &Arc<Shared<In>>,
    id: u64,
    payload: Bytes,
    upload: Option<Upload>,
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
    if !In::VARIANTS
        .get(index as usize)
        .is_some_and(|v| v.is_request())
    {
        let event = event.to_owned();
        return failure(id, RemoteError::NotARequest { event }, shared.max_out);
    }
    if let Some(settle) = shared.settle.as_ref().filter(|s| s.active()) {
        if !read(&shared.handlers).takes_request(index) {
            // A client socket's first moments: its handler may be on the way.
            let registered = || read(&shared.handlers).takes_request(index);
            settle.wait(registered).await;
        }
    }
    let slot = read(&shared.handlers).slot(index);
    let outcome = match slot {
        Slot::Request(handler) => {
            call_caught(|v| handler(v, id, shared.max_out, upload), value).await
        }
        Slot::Stream(handler) => {
            match call_caught(|v| handler(v, id, shared.max_out, upload), value).await {
                // The stream's pump sends the `Response` that accepts it.
                Ok(items) => Ok(super::streams::start(shared, Dir::Answer, id, items)),
                Err(message) => Err(message),
            }
        }
        _ => {
            let event = event.to_owned();
            return failure(id, RemoteError::NoHandler { event }, shared.max_out);
        }
    };
    match outcome {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot, Notify};

    use super::super::testing::{
        config, connect, on_request, reply, request, still_waiting, within, Api, Conn, DropGuard,
        REQ,
    };
    use crate::sync::lock;
    use crate::wire::frame::{self, Header, RemoteError};

    /// Registers a `Req(n)` handler answering `10 * n`, after waiting as
    /// `wait(n)` says (for `Gate`: until `gates[n]` is notified), and
    /// starts the connection; the handler reports each `n` it is called
    /// with.
    fn answer_tenfold(
        conn: &Conn,
        wait: impl Fn(u32) -> Wait + Send + Sync + 'static,
    ) -> (Arc<Vec<Notify>>, mpsc::UnboundedReceiver<u32>) {
        let gates: Arc<Vec<Notify>> = Arc::new((0..16).map(|_| Notify::new()).collect());
        let (started, rx) = mpsc::unbounded_channel();
        on_request(&conn.shared, REQ, {
            let gates = gates.clone();
            move |value| {
                let Api::Req(n) = value else {
                    unreachable!("registered for Req")
                };
                let _ = started.send(n);
                let (gates, wait) = (gates.clone(), wait(n));
                async move {
                    match wait {
                        Wait::No => {}
                        Wait::Yield => tokio::task::yield_now().await,
                        Wait::Gate => gates[n as usize].notified().await,
                    }
                    10 * n
                }
            }
        });
        conn.shared.start();
        (gates, rx)
    }

    enum Wait {
        /// Ready at once: answered in the reader.
        No,
        /// Waits a little: answered from a task.
        Yield,
        /// Waits until the test opens its gate.
        Gate,
    }

    /// The next frame must be the `Response` to `id`, carrying `value`.
    async fn expect_response(conn: &mut Conn, id: u64, value: u32) {
        let (header, payload) = conn.peer.recv().await;
        assert_eq!(header, Header::Response { id });
        assert_eq!(reply::<u32>(&payload), value);
    }

    async fn send_requests(conn: &mut Conn, requests: &[(u64, u32)]) {
        let mut bytes = Vec::new();
        for &(id, n) in requests {
            bytes.extend_from_slice(&request(id, Api::Req(n)));
        }
        conn.peer.write(&bytes).await;
    }

    /// A request whose handler is ready at once is answered in the reader,
    /// one that waits from a task of its own: both get their `Response`,
    /// and both count as served.
    #[tokio::test(start_paused = true)]
    async fn ready_and_waiting_handlers_both_answer() {
        let mut conn = connect(config(), 4096);
        let _ = answer_tenfold(&conn, |n| if n % 2 == 0 { Wait::No } else { Wait::Yield });
        send_requests(&mut conn, &[(1, 2), (2, 3)]).await;
        expect_response(&mut conn, 1, 20).await;
        expect_response(&mut conn, 2, 30).await;
        assert_eq!(conn.shared.metrics().traffic.requests_served, 2);
    }

    /// Replies go out as handlers finish, not in request order: a request
    /// that waits does not hold up the ones after it.
    #[tokio::test(start_paused = true)]
    async fn replies_may_come_out_of_order() {
        let mut conn = connect(config(), 4096);
        let (gates, _) = answer_tenfold(&conn, |n| if n == 1 { Wait::Gate } else { Wait::No });
        send_requests(&mut conn, &[(1, 1), (2, 2), (3, 3)]).await;
        expect_response(&mut conn, 2, 20).await;
        expect_response(&mut conn, 3, 30).await;
        assert!(still_waiting(Duration::from_secs(1), conn.peer.next()).await);
        gates[1].notify_one();
        expect_response(&mut conn, 1, 10).await;
    }

    /// A `Cancel` aborts the handler of that request (its future is
    /// dropped), nothing is sent for it, and its request permit is free
    /// again.
    #[tokio::test(start_paused = true)]
    async fn a_cancel_aborts_a_waiting_handler_and_nothing_is_sent() {
        let mut cfg = config();
        cfg.max_concurrent_requests = 1;
        let mut conn = connect(cfg, 4096);
        let (started, mut handlers) = mpsc::unbounded_channel();
        on_request(&conn.shared, REQ, move |value| {
            let Api::Req(n) = value else {
                unreachable!("registered for Req")
            };
            let (dropped, on_drop) = oneshot::channel();
            let _ = started.send(on_drop);
            let guard = DropGuard(Some(dropped));
            async move {
                let _guard = guard;
                if n == 1 {
                    std::future::pending::<()>().await;
                }
                tokio::task::yield_now().await;
                n
            }
        });
        conn.shared.start();
        send_requests(&mut conn, &[(7, 1)]).await;
        let dropped = within(handlers.recv()).await.unwrap();
        assert!(lock(&conn.shared.running).contains_key(&7));
        conn.peer.send(Header::Cancel { id: 7 }, None).await;
        within(dropped).await.unwrap();
        // The permit is back: a request that waits is served, and nothing
        // came for the cancelled one before its reply or our pong.
        send_requests(&mut conn, &[(8, 2)]).await;
        conn.peer.send(Header::Ping, None).await;
        let mut headers = vec![conn.peer.recv().await.0, conn.peer.recv().await.0];
        headers.sort_by_key(|h| format!("{h:?}"));
        assert_eq!(headers, [Header::Pong, Header::Response { id: 8 }]);
        assert!(still_waiting(Duration::from_secs(1), conn.peer.next()).await);
        assert!(lock(&conn.shared.running).is_empty());
    }

    /// A peer that reuses the id of a request still running cancels the
    /// earlier one; a `Cancel` then reaches the later one, and nothing is
    /// left running.
    #[tokio::test(start_paused = true)]
    async fn a_reused_id_cancels_the_earlier_request() {
        let mut conn = connect(config(), 4096);
        let (started, mut handlers) = mpsc::unbounded_channel();
        on_request(&conn.shared, REQ, move |_value| {
            let (dropped, on_drop) = oneshot::channel();
            let _ = started.send(on_drop);
            let guard = DropGuard(Some(dropped));
            async move {
                let _guard = guard;
                std::future::pending::<u32>().await
            }
        });
        conn.shared.start();
        send_requests(&mut conn, &[(7, 1)]).await;
        let first = within(handlers.recv()).await.unwrap();
        send_requests(&mut conn, &[(7, 2)]).await;
        let second = within(handlers.recv()).await.unwrap();
        within(first).await.unwrap();
        assert!(lock(&conn.shared.running).contains_key(&7));
        conn.peer.send(Header::Cancel { id: 7 }, None).await;
        within(second).await.unwrap();
        assert!(lock(&conn.shared.running).is_empty());
    }

    /// With `max_concurrent_requests` handlers waiting, the reader holds
    /// the next request that waits (and reads nothing after it) until one
    /// of them finishes.
    #[tokio::test(start_paused = true)]
    async fn the_request_limit_holds_further_requests_until_one_finishes() {
        let mut cfg = config();
        cfg.max_concurrent_requests = 2;
        let mut conn = connect(cfg, 4096);
        let (gates, mut started) = answer_tenfold(&conn, |_| Wait::Gate);
        send_requests(&mut conn, &[(1, 1), (2, 2), (3, 3)]).await;
        conn.peer.send(Header::Ping, None).await;
        for n in 1..4 {
            assert_eq!(within(started.recv()).await, Some(n));
        }
        // The third handler started, in the reader, but waits for a
        // permit: even with its gate open it does not finish, and the
        // ping behind it is not read.
        gates[3].notify_one();
        assert!(still_waiting(Duration::from_secs(1), conn.peer.next()).await);
        gates[1].notify_one();
        expect_response(&mut conn, 1, 10).await;
        let (first, _) = conn.peer.recv().await;
        let (second, _) = conn.peer.recv().await;
        let mut headers = vec![first, second];
        headers.sort_by_key(|h| format!("{h:?}"));
        assert_eq!(headers, [Header::Pong, Header::Response { id: 3 }]);
        gates[2].notify_one();
        expect_response(&mut conn, 2, 20).await;
    }

    /// A request handler that panics, when called, on its first poll or
    /// later in its task, is answered `Failure(HandlerPanicked)` with the
    /// panic's message; the connection goes on.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_request_handler_fails_with_handler_panicked() {
        let mut conn = connect(config(), 4096);
        on_request(&conn.shared, REQ, move |value| {
            let Api::Req(n) = value else {
                unreachable!("registered for Req")
            };
            if n == 1 {
                panic!("boom 1");
            }
            async move {
                if n == 3 {
                    tokio::task::yield_now().await;
                }
                if n != 4 {
                    panic!("boom {n}");
                }
                n
            }
        });
        conn.shared.start();
        for n in 1..4 {
            send_requests(&mut conn, &[(n.into(), n)]).await;
            let (header, _) = conn.peer.recv().await;
            let message = format!("boom {n}");
            let error = RemoteError::HandlerPanicked { message };
            assert_eq!(
                header,
                Header::Failure {
                    id: n.into(),
                    error
                }
            );
        }
        send_requests(&mut conn, &[(4, 4)]).await;
        let (header, payload) = conn.peer.recv().await;
        assert_eq!(
            (header, reply::<u32>(&payload)),
            (Header::Response { id: 4 }, 4)
        );
    }

    /// A reply over the caller's frame limit is not sent: the caller gets
    /// `Failure(ResponseTooLarge)` with the reply's size and its limit.
    #[tokio::test(start_paused = true)]
    async fn a_reply_over_the_limit_fails_with_response_too_large() {
        let mut cfg = config();
        cfg.max_frame_size = 1024;
        let mut conn = connect(cfg, 4096);
        on_request(&conn.shared, REQ, |_| async { vec![7u8; 2000] });
        conn.shared.start();
        send_requests(&mut conn, &[(1, 1)]).await;
        let (header, _) = conn.peer.recv().await;
        // Tag, id, the vector's length in two bytes, its 2000 bytes.
        let error = RemoteError::ResponseTooLarge {
            size: 2004,
            max: 1024,
        };
        assert_eq!(header, Header::Failure { id: 1, error });
    }

    /// Requests that cannot reach a handler are answered with a `Failure`
    /// saying why: an undecodable payload, an event variant, a request
    /// variant without a handler.
    #[tokio::test(start_paused = true)]
    async fn requests_without_a_handler_get_a_failure() {
        let mut conn = connect(config(), 4096);
        conn.shared.start();
        let undecodable = frame::encode_with_payload(
            &Header::Request {
                id: 1,
                timeout_ms: 0,
            },
            &[9],
            1024,
        )
        .unwrap();
        conn.peer.write(&undecodable).await;
        conn.peer.write(&request(2, Api::Ev(1))).await;
        conn.peer.write(&request(3, Api::Req(1))).await;
        let (header, _) = conn.peer.recv().await;
        assert!(
            matches!(
                header,
                Header::Failure {
                    id: 1,
                    error: RemoteError::BadRequest { .. }
                }
            ),
            "{header:?}"
        );
        let (header, _) = conn.peer.recv().await;
        let event = "Ev".to_owned();
        let error = RemoteError::NotARequest { event };
        assert_eq!(header, Header::Failure { id: 2, error });
        let (header, _) = conn.peer.recv().await;
        let event = "Req".to_owned();
        let error = RemoteError::NoHandler { event };
        assert_eq!(header, Header::Failure { id: 3, error });
    }
}
