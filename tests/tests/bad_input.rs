//! Hostile and broken peers, spoken to with raw sockets: after each, the
//! server still serves a well-behaved client.

use std::time::Duration;

use netsock::frame::{Header, RejectReason, PROTOCOL_VERSION};
use netsock::{CloseReason, DisconnectReason, Events, Socket};
use tests::api::{client, serve, serve_with, Api, ApiEmit};
use tests::{hello, on_both_transports, within, Raw, Transport};

on_both_transports!(
    garbage_bytes,
    truncated_frame_then_close,
    wrong_magic,
    wrong_version,
    oversized_incoming_frame_is_refused_with_a_reason,
    garbage_after_the_handshake,
    undecodable_request_gets_an_error_reply,
    silent_client_is_dropped_after_the_handshake_timeout,
    client_refuses_an_oversized_frame_from_the_server,
);

/// The server still answers a normal client.
async fn still_serves(io: &netsock::Server<Api>) {
    let socket = within(client(io)).await;
    assert_eq!(within(socket.sum(vec![20, 1])).await.unwrap(), 21);
    socket.close().await;
}

async fn garbage_bytes(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    raw.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(
        within(raw.recv()).await.map(|f| f.0),
        Some(Header::Reject(RejectReason::BadMagic))
    );
    assert!(within(raw.recv()).await.is_none());
    let mut raw = Raw::connect(io.local_addr()).await;
    raw.write(&[0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb]).await;
    assert_eq!(
        within(raw.recv()).await.map(|f| f.0),
        Some(Header::Reject(RejectReason::BadMagic))
    );
    still_serves(&io).await;
    io.close().await;
}

async fn truncated_frame_then_close(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    raw.write(&[0, 0, 0, 100, 0, 1, 2]).await;
    drop(raw);
    // Also after a valid handshake.
    let mut raw = Raw::connect(io.local_addr()).await;
    assert!(matches!(
        within(raw.handshake::<Api>()).await,
        Header::Welcome { .. }
    ));
    raw.write(&[0, 0, 0, 50, 3]).await;
    drop(raw);
    still_serves(&io).await;
    io.close().await;
}

async fn wrong_magic(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    let mut bad = hello::<Api>();
    bad.magic = *b"HTTP";
    raw.send(&Header::Hello(bad), None).await;
    assert_eq!(
        within(raw.recv()).await.map(|f| f.0),
        Some(Header::Reject(RejectReason::BadMagic))
    );
    assert!(within(raw.recv()).await.is_none());
    still_serves(&io).await;
    io.close().await;
}

async fn wrong_version(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    let mut future = hello::<Api>();
    future.version = 99;
    raw.send(&Header::Hello(future), None).await;
    let reply = within(raw.recv()).await.map(|f| f.0);
    assert_eq!(
        reply,
        Some(Header::Reject(RejectReason::VersionMismatch {
            server: PROTOCOL_VERSION,
            client: 99
        }))
    );
    still_serves(&io).await;
    io.close().await;
}

async fn oversized_incoming_frame_is_refused_with_a_reason(t: Transport) {
    let builder = netsock::Server::<Api>::builder().max_frame_size(64 * 1024);
    let (io, mut seen, _dir) = serve_with(t, builder).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    assert!(matches!(
        within(raw.handshake::<Api>()).await,
        Header::Welcome {
            max_frame: 65536,
            ..
        }
    ));
    let server_side = within(seen.connected.recv()).await.unwrap();
    raw.write(&(16u32 * 1024 * 1024).to_be_bytes()).await;
    let reason = within(raw.until_closed()).await;
    assert_eq!(
        reason,
        Some(CloseReason::FrameTooLarge {
            size: 16 * 1024 * 1024,
            max: 65536
        })
    );
    assert_eq!(
        within(server_side.closed()).await,
        DisconnectReason::FrameTooLarge {
            size: 16 * 1024 * 1024,
            max: 65536
        }
    );
    still_serves(&io).await;
    io.close().await;
}

async fn garbage_after_the_handshake(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Api>()).await;
    let server_side = within(seen.connected.recv()).await.unwrap();
    raw.write(&[0, 0, 0, 3, 0xee, 0xee, 0xee]).await;
    let reason = within(raw.until_closed()).await;
    assert!(
        matches!(reason, Some(CloseReason::Protocol(_))),
        "{reason:?}"
    );
    assert!(matches!(
        within(server_side.closed()).await,
        DisconnectReason::Protocol(_)
    ));
    // A handshake frame where none belongs is a protocol error too.
    let mut raw = Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Api>()).await;
    raw.send(&Header::Hello(hello::<Api>()), None).await;
    assert!(matches!(
        within(raw.until_closed()).await,
        Some(CloseReason::Protocol(_))
    ));
    still_serves(&io).await;
    io.close().await;
}

async fn undecodable_request_gets_an_error_reply(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Api>()).await;
    // Variant index 200 does not exist; the connection survives it.
    raw.send(
        &Header::Request {
            id: 9,
            timeout_ms: 0,
        },
        Some(&[200, 1]),
    )
    .await;
    let (header, _) = within(raw.recv()).await.unwrap();
    assert!(
        matches!(
            header,
            Header::Failure {
                id: 9,
                error: netsock::frame::RemoteError::BadRequest { .. }
            }
        ),
        "{header:?}"
    );
    // An undecodable event goes to the error hook and the connection lives.
    raw.send(&Header::Event, Some(&[200])).await;
    let sum = postcard::to_stdvec(&Api::Sum(vec![2, 3])).unwrap();
    raw.send(
        &Header::Request {
            id: 10,
            timeout_ms: 0,
        },
        Some(&sum),
    )
    .await;
    let (header, payload) = within(raw.recv()).await.unwrap();
    assert_eq!(header, Header::Response { id: 10 });
    assert_eq!(postcard::from_bytes::<i64>(&payload).unwrap(), 5);
    io.close().await;
}

async fn silent_client_is_dropped_after_the_handshake_timeout(t: Transport) {
    let builder = netsock::Server::<Api>::builder().handshake_timeout(Duration::from_secs(1));
    let (io, _seen, _dir) = serve_with(t, builder).await;
    let mut silent = Raw::connect(io.local_addr()).await;
    // Meanwhile others are served: handshakes do not queue behind it.
    still_serves(&io).await;
    assert!(within(silent.recv()).await.is_none());
    io.close().await;
}

async fn client_refuses_an_oversized_frame_from_the_server(t: Transport) {
    // A hand-written "server" that welcomes the client, then sends too much.
    let dir = tests::TempDir::new();
    let (addr, accept) = tests::raw_server(t, &dir).await;
    let connecting = tokio::spawn(Socket::<Api>::builder().max_frame_size(4096).connect(addr));
    let mut server = within(accept).await.unwrap();
    let Some((Header::Hello(h), _)) = within(server.recv()).await else {
        panic!("no hello")
    };
    assert_eq!((h.sends, h.max_frame), (Api::SCHEMA_ID, 4096));
    server
        .send(
            &Header::Welcome {
                id: 1,
                max_frame: 1 << 20,
            },
            None,
        )
        .await;
    let socket = within(connecting).await.unwrap().unwrap();
    server.write(&5000u32.to_be_bytes()).await;
    assert_eq!(
        within(socket.closed()).await,
        DisconnectReason::FrameTooLarge {
            size: 5000,
            max: 4096
        }
    );
    assert_eq!(
        within(server.until_closed()).await,
        Some(CloseReason::FrameTooLarge {
            size: 5000,
            max: 4096
        })
    );
}
