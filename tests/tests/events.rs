//! Events in both directions, in order, including one emitted to every client.

use netsock::{Error, SocketError};
use tests::api::{client, serve, Api, ApiEmit, ApiHandle};
use tests::{on_both_transports, within, Transport};
use tokio::sync::mpsc;

on_both_transports!(
    events_flow_both_ways_in_order,
    handlers_that_wait_keep_arrival_order,
    server_emit_reaches_every_client,
    oversized_emit_fails_alone,
    a_stuck_event_handler_does_not_keep_its_socket
);

#[derive(netsock::Events, serde::Serialize, serde::Deserialize, Debug)]
enum Stuck {
    /// Its handler never finishes.
    Wait,
}

/// An event handler that never finishes does not keep its connection:
/// once the peer hangs up, the events behind it get the close grace, then
/// the socket ends and leaves its server.
async fn a_stuck_event_handler_does_not_keep_its_socket(t: Transport) {
    use netsock::{Server, Socket};
    let dir = tests::TempDir::new();
    let io = Server::<Stuck>::bind(t.addr(&dir)).await.unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Stuck>| {
        let started_tx = started_tx.clone();
        let ended_tx = ended_tx.clone();
        socket.on_wait(move || {
            let _ = started_tx.send(());
            std::future::pending::<()>()
        });
        socket.on_disconnect(move |reason| {
            let _ = ended_tx.send(reason);
            async {}
        });
        async { Ok(()) }
    });
    io.spawn();
    let client = within(
        Socket::<Stuck>::builder()
            .no_reconnect()
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    within(client.emit_wait()).await.unwrap();
    within(client.emit_wait()).await.unwrap();
    within(started.recv()).await.unwrap();
    client.close().await;
    assert!(within(ended.recv()).await.is_some());
    tests::eventually(|| io.sockets().is_empty()).await;
    io.close().await;
}

async fn events_flow_both_ways_in_order(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    socket.on_message(move |text, n| {
        let _ = tx.send((text, n));
        async {}
    });
    for n in 0..100 {
        within(socket.emit_message(format!("up {n}"), n))
            .await
            .unwrap();
    }
    for n in 0..100 {
        let (from, text, got) = within(seen.messages.recv()).await.unwrap();
        assert_eq!((from, text, got), (socket.id().0, format!("up {n}"), n));
    }
    let server_side = within(seen.connected.recv()).await.unwrap();
    for n in 0..100 {
        within(server_side.emit_message(format!("down {n}"), n))
            .await
            .unwrap();
    }
    for n in 0..100 {
        assert_eq!(within(rx.recv()).await.unwrap(), (format!("down {n}"), n));
    }
    io.close().await;
}

/// Handlers that finish at once run in the reader, the others in the event
/// task: whichever runs them, events are handled one at a time, in order.
async fn handlers_that_wait_keep_arrival_order(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    socket.on_message(move |_, n| {
        let (tx, running) = (tx.clone(), running.clone());
        async move {
            assert!(!running.swap(true, std::sync::atomic::Ordering::SeqCst));
            // Every third handler waits; some runs of them stay pending.
            for _ in 0..(n % 3) * 2 {
                tokio::task::yield_now().await;
            }
            running.store(false, std::sync::atomic::Ordering::SeqCst);
            let _ = tx.send(n);
        }
    });
    within(socket.emit_message("hello".into(), 0))
        .await
        .unwrap();
    let server_side = within(seen.connected.recv()).await.unwrap();
    for n in 0..300 {
        within(server_side.emit_message(String::new(), n))
            .await
            .unwrap();
    }
    for n in 0..300 {
        assert_eq!(within(rx.recv()).await, Some(n));
    }
    io.close().await;
}

async fn server_emit_reaches_every_client(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let mut inboxes = Vec::new();
    for _ in 0..5 {
        let socket = within(client(&io)).await;
        within(seen.connected.recv()).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        socket.on_message(move |text, n| {
            let _ = tx.send((text, n));
            async {}
        });
        socket.start();
        inboxes.push((socket, rx));
    }
    within(io.emit_message("to all".into(), 5)).await.unwrap();
    for (_, rx) in &mut inboxes {
        assert_eq!(within(rx.recv()).await.unwrap(), ("to all".to_string(), 5));
    }
    io.close().await;
}

async fn oversized_emit_fails_alone(t: Transport) {
    let builder = netsock::Server::<Api>::builder().max_frame_size(64 * 1024);
    let (io, mut seen, _dir) = tests::api::serve_with(t, builder).await;
    let socket = within(client(&io)).await;
    let err = within(socket.emit_blob(vec![7; 100 * 1024]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::FrameTooLarge { max: 65536, .. }),
        "{err:?}"
    );
    // The connection is fine.
    within(socket.emit_message("still here".into(), 1))
        .await
        .unwrap();
    assert_eq!(within(seen.messages.recv()).await.unwrap().1, "still here");
    assert_eq!(within(socket.sum(vec![2, 2])).await.unwrap(), 4);
    let _ = Api::Blob(vec![]);
    io.close().await;
}

on_both_transports!(
    non_fatal_errors_reach_the_error_hook,
    lenient_peer_with_a_newer_enum,
    on_disconnect_says_why
);

/// Unhandled and undecodable events, and panicking event handlers, go to the
/// error hook; the connection carries on.
async fn non_fatal_errors_reach_the_error_hook(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    socket.on_error(move |err| {
        let _ = errors_tx.send(err.to_string());
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    socket.on_message(move |text, _| {
        if text == "boom" {
            panic!("handler exploded");
        }
        let _ = tx.send(text);
        async {}
    });
    socket.start();
    // The server lists a socket once its handshake is answered, which can be
    // after the client's connect returns: wait for on_connection instead.
    let server_side = within(seen.connected.recv()).await.unwrap();
    within(server_side.emit_blob(vec![1])).await.unwrap();
    within(server_side.emit_message("boom".into(), 0))
        .await
        .unwrap();
    within(server_side.emit_message("after".into(), 0))
        .await
        .unwrap();
    assert_eq!(
        within(errors.recv()).await.unwrap(),
        "no handler for incoming event Blob"
    );
    let panicked = within(errors.recv()).await.unwrap();
    assert!(
        panicked.contains("Message") && panicked.contains("handler exploded"),
        "{panicked}"
    );
    assert_eq!(within(rx.recv()).await.unwrap(), "after");
    io.close().await;
}

/// A newer client: the same enum with a variant appended.
#[derive(netsock::Events, serde::Serialize, serde::Deserialize, Debug)]
enum ApiV2 {
    Message {
        text: String,
        n: u32,
    },
    Blob(Vec<u8>),
    #[request(response = i64)]
    Sum(Vec<i64>),
    #[request(response = ())]
    Hang,
    #[request(response = ())]
    Panic,
    #[request(response = Vec<u8>)]
    Zeros(u32),
    #[request(response = String)]
    Unhandled,
    Extra(u8),
}

async fn lenient_peer_with_a_newer_enum(t: Transport) {
    let dir = tests::TempDir::new();
    let io = netsock::Server::<Api>::builder()
        .schema_check(netsock::SchemaCheck::Lenient)
        .bind(t.addr(&dir))
        .await
        .unwrap();
    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    let (messages_tx, mut messages) = mpsc::unbounded_channel();
    io.on_connection(move |socket: netsock::Socket<Api>| {
        let (errors_tx, messages_tx) = (errors_tx.clone(), messages_tx.clone());
        async move {
            socket.on_error(move |err| {
                let _ = errors_tx.send(matches!(err, SocketError::DecodeEvent { .. }));
            });
            socket.on_message(move |text, _| {
                let _ = messages_tx.send(text);
                async {}
            });
            Ok(())
        }
    });
    io.spawn();
    let newer = within(netsock::Socket::<ApiV2>::connect(io.local_addr()))
        .await
        .unwrap();
    within(newer.emit_extra(1)).await.unwrap();
    within(newer.emit_message("known".into(), 1)).await.unwrap();
    assert!(
        within(errors.recv()).await.unwrap(),
        "an unknown variant is a decode error for the hook"
    );
    assert_eq!(within(messages.recv()).await.unwrap(), "known");
    assert!(newer.is_connected());
    io.close().await;
}

async fn on_disconnect_says_why(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    socket.on_disconnect(move |reason| {
        let _ = tx.send(reason);
        async {}
    });
    io.close().await;
    let reason = within(rx.recv()).await.unwrap();
    assert!(
        matches!(
            reason,
            netsock::DisconnectReason::ClosedByPeer(netsock::CloseReason::Shutdown(_))
        ),
        "{reason:?}"
    );
}
