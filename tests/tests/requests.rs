//! Requests in both directions: multiplexing, timeouts and cancellation,
//! missing handlers, panicking handlers, disconnects, oversized frames.

use std::time::Duration;

use netsock::{CallError, DisconnectReason};
use tests::api::{client, serve, serve_with, Api, ApiEmit, SHORT};
use tests::{on_both_transports, within, Transport};

on_both_transports!(
    requests_flow_both_ways,
    a_thousand_concurrent_requests_on_one_connection,
    timeout_cancels_the_handler,
    dropping_the_call_cancels_the_handler,
    missing_handler_is_an_error_reply,
    panicking_handler_is_an_error_reply_and_the_connection_lives,
    pending_calls_fail_when_the_connection_dies,
    oversized_request_and_reply_fail_alone,
    a_server_can_await_a_call_inside_on_connection,
);

async fn requests_flow_both_ways(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    assert_eq!(
        within(socket.sum(vec![1, 2, 3, 4, 5, 6])).await.unwrap(),
        21
    );
    let server_side = within(seen.connected.recv()).await.unwrap();
    // The client's handler multiplies by ten.
    assert_eq!(within(server_side.sum(vec![1, 2, 3])).await.unwrap(), 60);
    io.close().await;
}

async fn a_thousand_concurrent_requests_on_one_connection(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let calls = (0..1000i64).map(|i| {
        let socket = socket.clone();
        async move { (i, socket.sum(vec![i, i, 1]).await) }
    });
    let results = within(futures_util::future::join_all(calls)).await;
    for (i, result) in results {
        assert_eq!(result.unwrap(), 2 * i + 1);
    }
    io.close().await;
}

async fn timeout_cancels_the_handler(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let err = within(socket.timeout(SHORT).hang()).await.unwrap_err();
    assert_eq!(err, CallError::Timeout { after: SHORT });
    within(seen.hang_started.recv()).await.unwrap();
    within(seen.hang_dropped.recv()).await.unwrap();
    // The connection is unaffected.
    assert_eq!(within(socket.sum(vec![1])).await.unwrap(), 1);
    io.close().await;
}

async fn dropping_the_call_cancels_the_handler(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let call = tokio::spawn({
        let socket = socket.clone();
        async move { socket.hang().await }
    });
    within(seen.hang_started.recv()).await.unwrap();
    call.abort();
    within(seen.hang_dropped.recv()).await.unwrap();
    io.close().await;
}

async fn missing_handler_is_an_error_reply(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let err = within(socket.unhandled()).await.unwrap_err();
    assert_eq!(
        err,
        CallError::NoHandler {
            event: "Unhandled".into()
        }
    );
    // A one-way variant cannot be sent as a request.
    let err = within(socket.request::<()>(Api::Blob(vec![])))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CallError::NotARequest {
            event: "Blob".into()
        }
    );
    io.close().await;
}

async fn panicking_handler_is_an_error_reply_and_the_connection_lives(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let err = within(socket.panic()).await.unwrap_err();
    assert_eq!(
        err,
        CallError::HandlerPanicked {
            message: "the handler blew up".into()
        }
    );
    assert_eq!(within(socket.sum(vec![4, 5])).await.unwrap(), 9);
    io.close().await;
}

async fn pending_calls_fail_when_the_connection_dies(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let socket = socket.clone();
            tokio::spawn(async move { socket.timeout(Duration::from_secs(3600)).hang().await })
        })
        .collect();
    let server_side = within(seen.hang_started.recv()).await.unwrap();
    for _ in 1..10 {
        within(seen.hang_started.recv()).await.unwrap();
    }
    within(server_side.close()).await;
    for call in calls {
        let err = within(call).await.unwrap().unwrap_err();
        assert_eq!(
            err,
            CallError::Disconnected(DisconnectReason::ClosedByPeer(netsock::CloseReason::Normal))
        );
    }
    // New calls fail at once, too.
    let err = within(socket.sum(vec![1])).await.unwrap_err();
    assert!(matches!(err, CallError::Disconnected(_)), "{err:?}");
    io.close().await;
}

async fn oversized_request_and_reply_fail_alone(t: Transport) {
    let builder = netsock::Server::<Api>::builder().max_frame_size(64 * 1024);
    let (io, _seen, _dir) = serve_with(t, builder).await;
    let socket = within(client(&io)).await;
    // Request over the server's limit: refused here, before sending.
    let err = within(socket.sum(vec![i64::MAX; 20_000]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::FrameTooLarge { max: 65536, .. }),
        "{err:?}"
    );
    // Reply over the client's limit (its default is 8 MiB; ask for 9 MiB):
    // the server says so instead of sending it.
    let err = within(socket.zeros(9 * 1024 * 1024)).await.unwrap_err();
    assert!(
        matches!(err, CallError::FrameTooLarge { max: 65536, .. }),
        "{err:?}"
    );
    // A small client limit is what the server honours.
    let small = within(
        netsock::Socket::<Api>::builder()
            .max_frame_size(4096)
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    let err = within(small.zeros(5000)).await.unwrap_err();
    assert!(
        matches!(err, CallError::FrameTooLarge { size, max: 4096 } if size > 5000),
        "{err:?}"
    );
    assert_eq!(within(small.zeros(100)).await.unwrap().len(), 100);
    assert_eq!(within(socket.sum(vec![1, 1])).await.unwrap(), 2);
    io.close().await;
}

/// Inside `on_connection` the client's events and requests are held, but
/// not the replies to the server's own calls: awaiting one there works.
async fn a_server_can_await_a_call_inside_on_connection(t: Transport) {
    let dir = tests::TempDir::new();
    let io = netsock::Server::<Api>::bind(t.addr(&dir)).await.unwrap();
    let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    io.on_connection(move |socket: netsock::Socket<Api>| {
        let tx = tx.clone();
        async move {
            let answer = socket.sum(vec![1, 2, 3]).await;
            let _ = tx.send(answer);
            Ok(())
        }
    });
    io.spawn();
    // `client` answers Sum with ten times the sum.
    let socket = within(client(&io)).await;
    socket.start();
    assert_eq!(within(answers.recv()).await.unwrap(), Ok(60));
    socket.close().await;
    io.close().await;
}
