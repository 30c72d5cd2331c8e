//! Events in both directions, in order, including one emitted to every client.

use netsock::Error;
use tests::api::{client, serve, Api, ApiExt};
use tests::{on_both_transports, within, Transport};
use tokio::sync::mpsc;

on_both_transports!(
    events_flow_both_ways_in_order,
    server_emit_reaches_every_client,
    oversized_emit_fails_alone
);

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
