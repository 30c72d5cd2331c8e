//! Graceful shutdown: stop accepting, let requests in flight finish within
//! a grace period, tell every client why, remove the socket file.

use std::time::Duration;

use netsock::{CallError, CloseReason, DisconnectReason, Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tests::{on_both_transports, within, TempDir, Transport};
use tokio::sync::{mpsc, oneshot};

#[derive(Events, Serialize, Deserialize, Debug)]
enum Job {
    /// Finishes when the test says so.
    #[request(response = u32)]
    Work(u32),
}

/// A server whose `Work` handlers wait for the test to open their gate; it
/// reports each started job.
async fn server(
    t: Transport,
    dir: &TempDir,
) -> (Server<Job>, mpsc::UnboundedReceiver<oneshot::Sender<()>>) {
    let io = Server::<Job>::bind(t.addr(dir)).await.unwrap();
    let (started_tx, started) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Job>| {
        let started_tx = started_tx.clone();
        async move {
            socket.on_work(move |n| {
                let (gate_tx, gate) = oneshot::channel();
                let _ = started_tx.send(gate_tx);
                async move {
                    let _ = gate.await;
                    n * 2
                }
            });
            Ok(())
        }
    });
    tokio::spawn({
        let io = io.clone();
        async move { io.run().await }
    });
    (io, started)
}

on_both_transports!(
    in_flight_requests_finish_within_the_grace,
    requests_past_the_grace_are_cut_off
);

async fn in_flight_requests_finish_within_the_grace(t: Transport) {
    let dir = TempDir::new();
    let (io, mut started) = server(t, &dir).await;
    let addr = io.local_addr().clone();
    let socket = within(Socket::<Job>::builder().no_reconnect().connect(&addr))
        .await
        .unwrap();
    let call = tokio::spawn({
        let socket = socket.clone();
        async move { socket.work(21).await }
    });
    let gate = within(started.recv()).await.unwrap();
    let shutdown = tokio::spawn({
        let io = io.clone();
        async move { io.shutdown(Duration::from_secs(30)).await }
    });
    // No longer accepting, and the socket file is gone, while the job runs.
    within(async {
        while Socket::<Job>::connect(&addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    if let Some(path) = addr.as_path() {
        assert!(!path.exists());
    }
    assert!(!call.is_finished() && !shutdown.is_finished());
    let _ = gate.send(());
    assert_eq!(within(call).await.unwrap(), Ok(42));
    within(shutdown).await.unwrap();
    let reason = within(socket.closed()).await;
    assert!(
        matches!(
            reason,
            DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_))
        ),
        "{reason:?}"
    );
}

async fn requests_past_the_grace_are_cut_off(t: Transport) {
    let dir = TempDir::new();
    let (io, mut started) = server(t, &dir).await;
    let socket = within(Socket::<Job>::connect(io.local_addr()))
        .await
        .unwrap();
    let call = tokio::spawn({
        let socket = socket.clone();
        async move { socket.work(1).await }
    });
    let _gate = within(started.recv()).await.unwrap(); // never opened
    within(io.shutdown(Duration::from_millis(200))).await;
    let err = within(call).await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Disconnected(DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_)))
        ),
        "{err:?}"
    );
}
