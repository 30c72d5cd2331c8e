//! Event dispatch: decodes an incoming event and runs its handler, in the
//! reader when the handler finishes at once, otherwise in the connection's
//! event task, one at a time and in arrival order.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::handler_table::{route, BoxFuture, Called, Outcome, Route};
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
pub(super) type Running = (BoxFuture<Outcome>, &'static str);

/// What became of an event handed to [`start_handler`] or [`handle_now`].
pub(super) enum Started {
    /// Its handler is running.
    Running(Running),
    /// Handled (or reported) already.
    Done,
    /// No handler yet, and the socket is settling: the event waits for one.
    Waits,
}

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
            Inbound::Payload(payload) => match handle_now(&shared, &payload).await {
                Started::Running(running) => Some(running),
                Started::Done => None,
                Started::Waits => {
                    // Everything behind it waits too, so order holds.
                    settle(&shared, &payload).await;
                    match handle_now(&shared, &payload).await {
                        Started::Running(running) => Some(running),
                        Started::Done | Started::Waits => None,
                    }
                }
            },
        };
        if let Some((handler, event)) = running {
            match AssertUnwindSafe(handler).catch_unwind().await {
                Ok(Ok(())) => {}
                Ok(Err(message)) => shared.report(SocketError::HandlerFailed { event, message }),
                Err(p) => {
                    let message = crate::handler::panic_message(&*p);
                    shared.report(SocketError::HandlerPanicked { event, message });
                }
            }
        }
        // Handled: once nothing is queued, the reader handles events itself.
        shared.events_queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits, while the socket settles, until the event in `payload` has
/// somewhere to go.
async fn settle<In: Events>(shared: &Shared<In>, payload: &[u8]) {
    let Ok(value) = postcard::from_bytes::<In>(payload) else {
        return;
    };
    let index = value.variant_index();
    if let Some(settle) = &shared.settle {
        settle
            .wait(|| read(&shared.handlers).takes_event(index))
            .await;
    }
}

/// Handles an event in the calling task (the reader, when nothing is
/// queued before it: no task wake-up) as far as its handler goes at once;
/// gives back what the event task must finish: the started handler
/// (`Running`), or the event, when it waits for its handler (`Waits`: the
/// caller keeps the payload).
pub(super) async fn handle_now<In: Events>(shared: &Shared<In>, payload: &[u8]) -> Started {
    std::future::poll_fn(|cx| Poll::Ready(start_handler(shared, payload, cx))).await
}

/// Decodes an event and calls its handler (or hands it to a `once_*` call
/// or the event stream), which runs as far as it goes at once in `cx`'s
/// task; gives the handler's future if it waits; reports an event that
/// cannot be decoded or has nowhere to go, except while the socket settles,
/// and a handler that failed or panicked. The handler table is read once
/// (with the `on_any` observer), unless a `once_*` call waits for this
/// variant.
fn start_handler<In: Events>(shared: &Shared<In>, payload: &[u8], cx: &mut Context<'_>) -> Started {
    let value = match postcard::from_bytes::<In>(payload) {
        Ok(value) => value,
        Err(source) => {
            shared.meter.add(|c| &c.events_invalid, 1);
            shared.report(SocketError::DecodeEvent {
                source: CodecError::new(source),
            });
            return Started::Done;
        }
    };
    let index = value.variant_index();
    let event = variant_name::<In>(index);
    if In::VARIANTS
        .get(index as usize)
        .is_some_and(|v| v.is_request())
    {
        shared.observe(&value);
        shared.meter.add(|c| &c.events_invalid, 1);
        shared.report(SocketError::RequestAsEvent { event });
        return Started::Done;
    }
    let settling = shared.settle.as_ref().is_some_and(|s| s.active());
    let (found, any) = {
        let table = read(&shared.handlers);
        if settling && !table.takes_event(index) {
            return Started::Waits;
        }
        (table.event_handler(index), table.any.clone())
    };
    shared.observe_with(any, &value);
    let routed = match found {
        Some(handler) => Route::Handler(handler, value),
        None => route(&shared.handlers, index, value),
    };
    let (handler, value) = match routed {
        Route::Handler(handler, value) => (handler, value),
        Route::Taken => return Started::Done,
        Route::Nowhere(_) => {
            shared.meter.add(|c| &c.events_unhandled, 1);
            shared.report(SocketError::NoHandler { event });
            return Started::Done;
        }
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler(value, cx))) {
        Ok(Called::Done(Ok(()))) => Started::Done,
        Ok(Called::Done(Err(message))) => {
            shared.report(SocketError::HandlerFailed { event, message });
            Started::Done
        }
        Ok(Called::Running(future)) => Started::Running((future, event)),
        Err(p) => {
            let message = crate::handler::panic_message(&*p);
            shared.report(SocketError::HandlerPanicked { event, message });
            Started::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{mpsc, Notify};

    use super::super::testing::{
        config, connect, errors, event, on_event, still_waiting, within, Api, Conn, EV,
    };
    use crate::error::SocketError;
    use crate::wire::frame::{self, Header};

    /// Writes `Ev(n)` for each of `events`, all in one write.
    async fn send_events(conn: &mut Conn, events: impl IntoIterator<Item = u32>) {
        let mut bytes = Vec::new();
        for n in events {
            bytes.extend_from_slice(&event(Api::Ev(n)));
        }
        conn.peer.write(&bytes).await;
    }

    async fn expect(got: &mut mpsc::UnboundedReceiver<u32>, events: &[u32]) {
        for &n in events {
            assert_eq!(within(got.recv()).await, Some(n));
        }
    }

    /// Handlers see events one at a time and in arrival order, whether they
    /// finish at once (in the reader), wait a little (`yield`: the event
    /// task takes over, and the ones behind it queue), or wait for the test
    /// (`gate`): nothing behind a waiting handler runs before it is done.
    #[tokio::test(start_paused = true)]
    async fn events_are_handled_one_at_a_time_in_arrival_order() {
        let mut conn = connect(config(), 4096);
        let (tx, mut got) = mpsc::unbounded_channel();
        let gate = Arc::new(Notify::new());
        on_event(&conn.shared, EV, {
            let gate = gate.clone();
            move |value| {
                let Api::Ev(n) = value else {
                    unreachable!("registered for Ev")
                };
                let (tx, gate) = (tx.clone(), gate.clone());
                async move {
                    match n {
                        1 | 6 => gate.notified().await,
                        2 | 5 | 8 => tokio::task::yield_now().await,
                        _ => {}
                    }
                    let _ = tx.send(n);
                }
            }
        });
        conn.shared.start();
        send_events(&mut conn, 0..5).await;
        expect(&mut got, &[0]).await;
        assert!(still_waiting(Duration::from_secs(1), got.recv()).await);
        gate.notify_one();
        expect(&mut got, &[1, 2, 3, 4]).await;
        // Back to an idle connection; now one event per read.
        for n in 5..10 {
            send_events(&mut conn, [n]).await;
        }
        expect(&mut got, &[5]).await;
        assert!(still_waiting(Duration::from_secs(1), got.recv()).await);
        gate.notify_one();
        expect(&mut got, &[6, 7, 8, 9]).await;
        assert!(got.try_recv().is_err());
    }

    /// Events that arrive before the socket starts wait for it (its
    /// handlers may not be registered yet), then are handled in order.
    #[tokio::test(start_paused = true)]
    async fn events_before_the_start_wait_for_it() {
        let mut conn = connect(config(), 4096);
        let (tx, mut got) = mpsc::unbounded_channel();
        on_event(&conn.shared, EV, move |value| {
            let _ = tx.send(value);
            async {}
        });
        send_events(&mut conn, [1]).await;
        send_events(&mut conn, [2, 3]).await;
        assert!(still_waiting(Duration::from_secs(1), got.recv()).await);
        conn.shared.start();
        for n in 1..4 {
            assert_eq!(within(got.recv()).await, Some(Api::Ev(n)));
        }
    }

    /// A handler that panics, when called, on its first poll (in the
    /// reader) or later (in the event task), is reported to the error hook
    /// and the events after it are still handled.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_event_handler_is_reported_and_the_next_event_handled() {
        let mut conn = connect(config(), 4096);
        let mut errors = errors(&conn.shared);
        let (tx, mut got) = mpsc::unbounded_channel();
        on_event(&conn.shared, EV, move |value| {
            let Api::Ev(n) = value else {
                unreachable!("registered for Ev")
            };
            if n == 1 {
                panic!("boom 1");
            }
            let tx = tx.clone();
            async move {
                match n {
                    2 => panic!("boom 2"),
                    3 => {
                        tokio::task::yield_now().await;
                        panic!("boom 3");
                    }
                    _ => {
                        let _ = tx.send(n);
                    }
                }
            }
        });
        conn.shared.start();
        send_events(&mut conn, 0..5).await;
        send_events(&mut conn, [5]).await;
        expect(&mut got, &[0, 4, 5]).await;
        for n in 1..4 {
            let err = within(errors.recv()).await.unwrap();
            assert!(
                matches!(&err, SocketError::HandlerPanicked { event: "Ev", message } if *message == format!("boom {n}")),
                "{err:?}"
            );
        }
        assert!(errors.try_recv().is_err());
        assert_eq!(conn.shared.disconnect_reason(), None);
    }

    /// An event that does not decode, a request variant sent as an event,
    /// and an event without a handler are each reported to the error hook
    /// and counted (`events_invalid`, `events_unhandled`), in the reader
    /// and in the event task alike; the connection goes on.
    #[tokio::test(start_paused = true)]
    async fn bad_events_are_reported_and_counted() {
        let mut conn = connect(config(), 4096);
        let mut errors = errors(&conn.shared);
        let (tx, mut got) = mpsc::unbounded_channel();
        on_event(&conn.shared, EV, move |value| {
            let Api::Ev(n) = value else {
                unreachable!("registered for Ev")
            };
            let tx = tx.clone();
            async move {
                if n >= 100 {
                    tokio::task::yield_now().await;
                }
                let _ = tx.send(n);
            }
        });
        conn.shared.start();
        let mut bad = Vec::new();
        // Variant 9: Api has 3.
        bad.extend_from_slice(&frame::encode_with_payload(&Header::Event, &[9], 1024).unwrap());
        bad.extend_from_slice(&event(Api::Req(1)));
        bad.extend_from_slice(&event(Api::Other(1)));
        // Handled in the reader...
        conn.peer.write(&bad).await;
        conn.peer.write(&event(Api::Ev(0))).await;
        // ...then queued behind a handler that waits.
        let mut bytes = event(Api::Ev(100)).to_vec();
        bytes.extend_from_slice(&bad);
        bytes.extend_from_slice(&event(Api::Ev(1)));
        conn.peer.write(&bytes).await;
        expect(&mut got, &[0, 100, 1]).await;
        for _ in 0..2 {
            let err = within(errors.recv()).await.unwrap();
            assert!(matches!(err, SocketError::DecodeEvent { .. }), "{err:?}");
            let err = within(errors.recv()).await.unwrap();
            assert!(
                matches!(err, SocketError::RequestAsEvent { event: "Req" }),
                "{err:?}"
            );
            let err = within(errors.recv()).await.unwrap();
            assert!(
                matches!(err, SocketError::NoHandler { event: "Other" }),
                "{err:?}"
            );
        }
        assert!(errors.try_recv().is_err());
        let traffic = conn.shared.metrics().traffic;
        assert_eq!((traffic.events_invalid, traffic.events_unhandled), (4, 2));
        assert_eq!(conn.shared.disconnect_reason(), None);
    }
}
