//! What a new user writes first, as socket.io taught them: a client that
//! only listens, events as values (`events()`, `once_*`), and a handler that
//! replies to its sender in one line (`on_x_with`).

use std::time::Duration;

use netsock::{Error, Events, Server, Socket, SocketError};
use serde::{Deserialize, Serialize};
use tests::{on_both_transports, within, TempDir, Transport};
use tokio::sync::mpsc;

#[derive(Events, Serialize, Deserialize, Debug, PartialEq)]
enum Feed {
    Tick(u32),
    Note(String),
    Total(i64),
    Numbers(Vec<i64>),
    #[request(response = i64)]
    Sum(Vec<i64>),
    Bye,
}

on_both_transports!(
    a_client_that_only_listens_misses_nothing,
    requests_wait_for_a_handler_registered_late,
    after_start_an_unhandled_event_is_reported_at_once,
    the_event_stream_yields_every_event_in_order,
    an_unread_event_stream_holds_the_sender_back,
    once_takes_the_next_event,
    a_handler_with_the_socket_replies_in_one_line,
    a_failing_event_handler_reaches_the_error_hook
);

/// A server whose every connection runs `setup`.
async fn serve<F, Fut>(t: Transport, setup: F) -> (Server<Feed>, TempDir)
where
    F: Fn(Socket<Feed>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = netsock::Result<()>> + Send + 'static,
{
    let dir = TempDir::new();
    let io = Server::<Feed>::bind(t.addr(&dir)).await.expect("bind");
    io.on_connection(setup);
    io.spawn();
    (io, dir)
}

/// A server that only hands out each server-side socket.
async fn serve_handing_out(
    t: Transport,
) -> (Server<Feed>, TempDir, mpsc::UnboundedReceiver<Socket<Feed>>) {
    let (server_side, connected) = mpsc::unbounded_channel();
    let (io, dir) = serve(t, move |socket| {
        let _ = server_side.send(socket);
        async { Ok(()) }
    })
    .await;
    (io, dir, connected)
}

async fn connect(io: &Server<Feed>) -> Socket<Feed> {
    within(Socket::<Feed>::connect(io.local_addr()))
        .await
        .expect("connect")
}

/// The seed's client: connect, register handlers, wait. The server emits
/// as soon as the client is connected, before the handlers exist, with
/// the two kinds interleaved; the handlers are registered in the other
/// order, with a pause between them. Nothing else is called on the socket.
async fn a_client_that_only_listens_misses_nothing(t: Transport) {
    let (io, _dir) = serve(t, |socket| async move {
        for n in 0..50 {
            socket.emit_note(format!("note {n}")).await?;
            socket.emit_tick(n).await?;
        }
        Ok(())
    })
    .await;
    let socket = connect(&io).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ticks = tx.clone();
    socket.on_tick(move |n| {
        let _ = ticks.send(format!("tick {n}"));
        async {}
    });
    tokio::task::yield_now().await;
    socket.on_note(move |text| {
        let _ = tx.send(text);
        async {}
    });
    for n in 0..50 {
        assert_eq!(within(rx.recv()).await, Some(format!("note {n}")));
        assert_eq!(within(rx.recv()).await, Some(format!("tick {n}")));
    }
    assert_eq!(socket.metrics().traffic.events_unhandled, 0);
    socket.close().await;
    io.close().await;
}

/// A request the server makes at once waits for the client's handler.
async fn requests_wait_for_a_handler_registered_late(t: Transport) {
    let (answers, mut answered) = mpsc::unbounded_channel();
    let (io, _dir) = serve(t, move |socket| {
        let answers = answers.clone();
        async move {
            tokio::spawn(async move {
                let _ = answers.send(socket.sum(vec![1, 2, 3]).await);
            });
            Ok(())
        }
    })
    .await;
    let socket = connect(&io).await;
    socket.on_note(|_| async {});
    tokio::task::yield_now().await;
    socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
    assert_eq!(within(answered.recv()).await.map(Result::ok), Some(Some(6)));
    socket.close().await;
    io.close().await;
}

/// `start()` ends the settling moment: an event nobody handles is reported
/// at once, and the events behind it are not held up.
async fn after_start_an_unhandled_event_is_reported_at_once(t: Transport) {
    let (go, go_rx) = tokio::sync::watch::channel(false);
    let (io, _dir) = serve(t, move |socket| {
        let mut go = go_rx.clone();
        async move {
            tokio::spawn(async move {
                let _ = go.wait_for(|go| *go).await;
                let _ = socket.emit_bye().await;
                let _ = socket.emit_tick(1).await;
            });
            Ok(())
        }
    })
    .await;
    let socket = connect(&io).await;
    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    socket.on_error(move |err| {
        let _ = errors_tx.send(err);
    });
    let (tx, mut ticks) = mpsc::unbounded_channel();
    socket.on_tick(move |n| {
        let _ = tx.send(n);
        async {}
    });
    socket.start();
    let _ = go.send(true);
    // Well within the one-second settling moment, had it not ended.
    let quick = Duration::from_millis(900);
    let err = tokio::time::timeout(quick, errors.recv()).await;
    assert!(
        matches!(err, Ok(Some(SocketError::NoHandler { event: "Bye" }))),
        "{err:?}"
    );
    assert_eq!(tokio::time::timeout(quick, ticks.recv()).await, Ok(Some(1)));
    socket.close().await;
    io.close().await;
}

/// `events()` yields the events that have no handler of their own, in
/// arrival order; a handler keeps its variant.
async fn the_event_stream_yields_every_event_in_order(t: Transport) {
    let (io, _dir) = serve(t, |socket| async move {
        for n in 0..200 {
            socket.emit_tick(n).await?;
            if n % 10 == 0 {
                socket.emit_note(format!("note {n}")).await?;
            }
        }
        socket.emit_bye().await?;
        Ok(())
    })
    .await;
    let socket = connect(&io).await;
    let (tx, mut notes) = mpsc::unbounded_channel();
    socket.on_note(move |text| {
        let _ = tx.send(text);
        async {}
    });
    let mut events = socket.events();
    let mut ticks = Vec::new();
    while let Some(event) = within(events.next()).await {
        match event {
            Feed::Tick(n) => ticks.push(n),
            Feed::Bye => break,
            other => panic!("the handler takes notes, not the stream: {other:?}"),
        }
    }
    assert_eq!(ticks, (0..200).collect::<Vec<_>>());
    for n in (0..200).step_by(10) {
        assert_eq!(within(notes.recv()).await, Some(format!("note {n}")));
    }
    // Closed for good: the stream ends.
    socket.close().await;
    assert!(within(events.next()).await.is_none());
    io.close().await;
}

/// A stream nobody reads holds its events as a handler that never finishes
/// would: the sender's queue fills and `try_emit` says so; nothing accepted
/// is lost, and reading lets everything through, in order.
async fn an_unread_event_stream_holds_the_sender_back(t: Transport) {
    let (io, _dir, mut connected) = serve_handing_out(t).await;
    let socket = connect(&io).await;
    let mut events = socket.events();
    let peer = within(connected.recv()).await.expect("server side");
    let blob = vec![7i64; 1024];
    let mut sent = 0usize;
    within(async {
        loop {
            match peer.try_emit(Feed::Numbers(blob.clone())) {
                Ok(()) => sent += 1,
                Err(Error::QueueFull { .. }) => break,
                Err(err) => panic!("{err}"),
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(sent > 0);
    for _ in 0..sent {
        assert_eq!(
            within(events.next()).await,
            Some(Feed::Numbers(blob.clone()))
        );
    }
    socket.close().await;
    io.close().await;
}

/// `once_tick()` gives the next tick's field instead of the handler; two
/// waiting get one each, oldest first; one given up on leaves its event to
/// the handler; one on a closed socket fails.
async fn once_takes_the_next_event(t: Transport) {
    let (io, _dir, mut connected) = serve_handing_out(t).await;
    let socket = connect(&io).await;
    let (tx, mut handled) = mpsc::unbounded_channel();
    socket.on_tick(move |n| {
        let _ = tx.send(n);
        async {}
    });
    let peer = within(connected.recv()).await.expect("server side");
    let first = socket.once_tick();
    let second = socket.once_tick();
    let given_up = socket.once_tick();
    drop(given_up);
    for n in 1..=3 {
        within(peer.emit_tick(n)).await.unwrap();
    }
    assert_eq!(within(first).await.unwrap(), 1);
    assert_eq!(within(second).await.unwrap(), 2);
    assert_eq!(within(handled.recv()).await, Some(3));
    let unit = socket.once_bye();
    within(peer.emit_bye()).await.unwrap();
    within(unit).await.unwrap();
    let never = socket.once_note();
    socket.close().await;
    assert!(matches!(within(never).await, Err(Error::Disconnected(_))));
    io.close().await;
}

/// socket.io's `socket.on('sum', n => socket.emit('total', sum(n)))`.
async fn a_handler_with_the_socket_replies_in_one_line(t: Transport) {
    let (io, _dir) = serve(t, |socket| async move {
        socket.on_numbers_with(|socket, n| async move { socket.emit_total(n.iter().sum()).await });
        socket.set_data(100i64);
        socket.on_sum_with(|socket, n| async move {
            let base = socket.data::<i64>().map_or(0, |base| *base);
            base + n.iter().sum::<i64>()
        });
        Ok(())
    })
    .await;
    let socket = connect(&io).await;
    within(socket.emit_numbers(vec![1, 2, 3, 4])).await.unwrap();
    assert_eq!(within(socket.once_total()).await.unwrap(), 10);
    assert_eq!(within(socket.sum(vec![5, 6])).await.unwrap(), 111);
    socket.close().await;
    io.close().await;
}

/// An event handler may return `Result<(), E>`: an error goes to the
/// error hook, named, and the next event is handled as usual.
async fn a_failing_event_handler_reaches_the_error_hook(t: Transport) {
    let (failures, mut failed) = mpsc::unbounded_channel();
    let (io, _dir) = serve(t, move |socket| {
        let failures = failures.clone();
        async move {
            socket.on_error(move |err| {
                let _ = failures.send(err.to_string());
            });
            socket.on_tick_with(|socket, n| async move {
                if n == 0 {
                    return Err(format!("tick {n} is not allowed"));
                }
                socket.emit_tick(n).await.map_err(|e| e.to_string())
            });
            Ok(())
        }
    })
    .await;
    let socket = connect(&io).await;
    within(socket.emit_tick(0)).await.unwrap();
    within(socket.emit_tick(7)).await.unwrap();
    assert_eq!(within(socket.once_tick()).await.unwrap(), 7);
    assert_eq!(
        within(failed.recv()).await.as_deref(),
        Some("the handler for event Tick failed: tick 0 is not allowed")
    );
    socket.close().await;
    io.close().await;
}
