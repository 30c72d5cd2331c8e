//! Heartbeats: a peer that completes the handshake and then goes silent is
//! dropped as a heartbeat timeout, on the server and on the client; a quiet
//! but healthy connection stays up.

use std::time::Duration;

use netsock::frame::Header;
use netsock::{DisconnectReason, Events, Heartbeat, Server, Socket};
use tests::api::{client, serve_with, Api, ApiEmit};
use tests::{on_both_transports, within, Raw, TempDir, Transport};

// Long enough that a loaded CI machine does not starve a healthy peer.
const BEAT: Duration = Duration::from_millis(300);
/// A ping after `BEAT` of silence, and `BEAT` to answer it.
const HEARTBEAT: Heartbeat = Heartbeat::every(BEAT).timeout(BEAT);

on_both_transports!(
    server_drops_a_silent_client,
    client_drops_a_silent_server,
    quiet_healthy_connection_stays_up
);

async fn server_drops_a_silent_client(t: Transport) {
    let (io, mut seen, _dir) = serve_with(t, Server::<Api>::builder().heartbeat(HEARTBEAT)).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Api>()).await;
    let silent = within(seen.connected.recv()).await.unwrap();
    // The raw client receives pings and never answers.
    let reason = within(silent.closed()).await;
    assert_eq!(
        reason,
        DisconnectReason::HeartbeatTimeout { after: BEAT * 2 }
    );
    assert!(matches!(within(raw.recv()).await, Some((Header::Ping, _))));
    let other = within(client(&io)).await;
    assert_eq!(within(other.sum(vec![1])).await.unwrap(), 1);
    io.close().await;
}

async fn client_drops_a_silent_server(t: Transport) {
    let dir = TempDir::new();
    let (addr, accept) = tests::raw_server(t, &dir).await;
    let connecting = tokio::spawn(
        Socket::<Api>::builder()
            .heartbeat(HEARTBEAT)
            .no_reconnect()
            .connect(addr),
    );
    let mut server = within(accept).await.unwrap();
    let Some((Header::Hello(_), _)) = within(server.recv()).await else {
        panic!("no hello")
    };
    server
        .send(
            &Header::Welcome {
                id: 7,
                max_frame: 1 << 20,
            },
            None,
        )
        .await;
    let socket = within(connecting).await.unwrap().unwrap();
    let reason = within(socket.closed()).await;
    assert_eq!(
        reason,
        DisconnectReason::HeartbeatTimeout { after: BEAT * 2 }
    );
    let _ = Api::SCHEMA_ID;
}

async fn quiet_healthy_connection_stays_up(t: Transport) {
    // Generous against a loaded machine: a late pong must not look dead.
    let beat = Duration::from_secs(1);
    let beat = Heartbeat::every(beat).timeout(beat);
    let (io, mut seen, _dir) = serve_with(t, Server::<Api>::builder().heartbeat(beat)).await;
    let socket = within(
        Socket::<Api>::builder()
            .heartbeat(beat)
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    socket.start();
    let server_side = within(seen.connected.recv()).await.unwrap();
    // Only heartbeats flow; wait until several have gone each way.
    within(async {
        while server_side.metrics().traffic.frames_in < 4 || socket.metrics().traffic.frames_in < 4
        {
            assert!(socket.is_connected() && server_side.is_connected());
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(socket.is_connected() && server_side.is_connected());
    within(socket.emit_message("still here".into(), 1))
        .await
        .unwrap();
    assert_eq!(within(seen.messages.recv()).await.unwrap().1, "still here");
    io.close().await;
}
