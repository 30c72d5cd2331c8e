//! Graceful shutdown: stop accepting, let requests in flight finish within
//! a grace period, tell every client why, remove the socket file.

use std::time::Duration;

use netsock::{CallError, CloseReason, DisconnectReason, Error, Events, Server, Socket};
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
    io.spawn();
    (io, started)
}

on_both_transports!(
    in_flight_requests_finish_within_the_grace,
    requests_past_the_grace_are_cut_off,
    a_spawned_server_shuts_down_through_its_handle,
    closing_right_after_spawn_is_clean,
    a_cancelled_server_task_is_an_error,
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

async fn a_spawned_server_shuts_down_through_its_handle(t: Transport) {
    let dir = TempDir::new();
    let io = Server::<Job>::bind(t.addr(&dir)).await.unwrap();
    io.on_connection(|socket: Socket<Job>| async move {
        socket.on_work(|n| async move { n * 2 });
        Ok(())
    });
    let running = io.spawn();
    assert!(!running.is_finished());
    let addr = io.local_addr().clone();
    let socket = within(Socket::<Job>::builder().no_reconnect().connect(&addr))
        .await
        .unwrap();
    assert_eq!(within(socket.work(21)).await, Ok(42));
    // A second run of a running server fails, and leaves the first alone.
    assert!(matches!(
        within(io.spawn()).await,
        Err(Error::AlreadyRunning)
    ));
    assert!(!running.is_finished());

    within(running.shutdown(Duration::from_secs(5)))
        .await
        .unwrap();
    let reason = within(socket.closed()).await;
    assert!(
        matches!(
            reason,
            DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_))
        ),
        "{reason:?}"
    );
    assert!(io.sockets().is_empty());
    if let Some(path) = addr.as_path() {
        assert!(!path.exists());
    }
}

/// `spawn` takes the listener over at once: a close before its task has
/// started stops it cleanly instead of leaving it nothing to run on.
async fn closing_right_after_spawn_is_clean(t: Transport) {
    let dir = TempDir::new();
    let io = Server::<Job>::bind(t.addr(&dir)).await.unwrap();
    let running = io.spawn();
    within(running.close()).await.unwrap();
}

/// A server task that ends without `run` returning (here: its runtime
/// shut down) is an error for whoever awaits it, not a panic.
async fn a_cancelled_server_task_is_an_error(t: Transport) {
    let dir = TempDir::new();
    let addr = t.addr(&dir);
    // A runtime of its own, shut down from a thread of its own (a runtime
    // cannot be dropped from async code).
    let running = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let io = rt.block_on(Server::<Job>::bind(addr)).unwrap();
        let running = {
            let _in_rt = rt.enter();
            io.spawn()
        };
        drop(rt); // cancels the server's task
        running
    })
    .join()
    .unwrap();
    assert!(running.is_finished());
    let err = within(running).await.unwrap_err();
    assert!(
        matches!(&err, Error::ServerTask { reason } if reason.contains("cancelled")),
        "{err:?}"
    );
}
