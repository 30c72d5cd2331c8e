//! Hostile and broken peers, spoken to with raw sockets: after each, the
//! server still serves a well-behaved client.

use std::time::Duration;

use netsock::frame::{Header, RejectReason, RemoteError, PROTOCOL_VERSION};
use netsock::{
    CloseReason, DisconnectReason, Error, Events, MissReason, Server, Socket, SocketError,
};
use tests::api::{client, serve, serve_with, Api, ApiEmit, ApiHandle};
use tests::{eventually, hello, on_both_transports, within, Raw, Transport};

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
    a_large_first_frame_is_refused_before_the_handshake,
    handshakes_in_progress_are_bounded,
    a_frame_limit_below_the_minimum_is_refused,
    error_replies_fit_the_limit_the_peer_announced,
    misdirected_and_unhandled_events_are_reported_and_counted,
    a_broadcast_over_one_recipients_limit_is_an_error_and_counted,
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

/// A peer that vanishes mid-frame: before the handshake it is just gone;
/// after it, its socket ends with a reason that says so (not a bare I/O
/// error), both when the cut falls in the body and in the length prefix.
async fn truncated_frame_then_close(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    raw.write(&[0, 0, 0, 100, 0, 1, 2]).await;
    drop(raw);
    for (bytes, received, expected) in [(&[0, 0, 0, 50, 3][..], 5, 54), (&[0, 0][..], 2, 4)] {
        let mut raw = Raw::connect(io.local_addr()).await;
        assert!(matches!(
            within(raw.handshake::<Api>()).await,
            Header::Welcome { .. }
        ));
        let socket = within(seen.connected.recv()).await.unwrap();
        raw.write(bytes).await;
        drop(raw);
        assert_eq!(
            within(socket.closed()).await,
            DisconnectReason::CutMidFrame { received, expected }
        );
    }
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
    // It is told why before the server hangs up.
    assert_eq!(
        within(silent.recv()).await.map(|f| f.0),
        Some(Header::Reject(RejectReason::HandshakeTimeout {
            after_ms: 1000
        }))
    );
    assert!(within(silent.recv()).await.is_none());
    assert_eq!(io.metrics().rejects.timed_out, 1);
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

/// Before its handshake, a stranger may send a frame of a few KiB, not of
/// the full frame limit: announcing 64 KiB is refused at once.
async fn a_large_first_frame_is_refused_before_the_handshake(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    raw.write(&(64u32 * 1024).to_be_bytes()).await;
    assert_eq!(
        within(raw.recv()).await.map(|f| f.0),
        Some(Header::Reject(RejectReason::BadMagic))
    );
    assert!(within(raw.recv()).await.is_none());
    assert_eq!(io.metrics().rejects.bad_handshake, 1);
    // A token over the default 4 KiB is refused; the knob lets it in.
    let token = vec![7u8; 5 * 1024];
    let refused = Socket::<Api>::builder()
        .no_reconnect()
        .auth(token.clone())
        .connect(io.local_addr())
        .await;
    assert!(
        matches!(refused, Err(Error::Rejected(RejectReason::BadMagic))),
        "{refused:?}"
    );
    io.close().await;
    let roomy = Server::<Api>::builder().max_handshake_size(16 * 1024);
    let (io, _seen, _dir) = serve_with(t, roomy).await;
    let socket = within(
        Socket::<Api>::builder()
            .auth(token)
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    assert_eq!(within(socket.sum(vec![1, 2])).await.unwrap(), 3);
    still_serves(&io).await;
    io.close().await;
}

/// Strangers in their handshake are bounded: past `max_handshakes`, new
/// connections wait in the backlog until one of them is done.
async fn handshakes_in_progress_are_bounded(t: Transport) {
    let builder = Server::<Api>::builder()
        .max_handshakes(2)
        .handshake_timeout(Duration::from_secs(60));
    let (io, _seen, _dir) = serve_with(t, builder).await;
    let silent_a = Raw::connect(io.local_addr()).await;
    let _silent_b = Raw::connect(io.local_addr()).await;
    eventually(|| io.metrics().handshakes_in_progress == 2).await;
    let addr = io.local_addr().clone();
    let mut waiting = tokio::spawn(async move { client_for(&addr).await });
    // Not served while both places are taken...
    let early = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await;
    assert!(early.is_err(), "a third handshake ran beside two others");
    assert_eq!(io.metrics().handshakes_in_progress, 2);
    // ...and served as soon as one is given back.
    drop(silent_a);
    let socket = within(waiting).await.unwrap();
    assert_eq!(within(socket.sum(vec![4, 5])).await.unwrap(), 9);
    assert_eq!(io.metrics().rejects.bad_handshake, 1);
    io.close().await;
}

async fn client_for(addr: &netsock::Addr) -> Socket<Api> {
    Socket::<Api>::connect(addr).await.expect("connect")
}

async fn a_frame_limit_below_the_minimum_is_refused(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    for max_frame in [0, 1023] {
        let mut raw = Raw::connect(io.local_addr()).await;
        let mut tiny = hello::<Api>();
        tiny.max_frame = max_frame;
        raw.send(&Header::Hello(tiny), None).await;
        assert_eq!(
            within(raw.recv()).await.map(|f| f.0),
            Some(Header::Reject(RejectReason::FrameLimitTooSmall {
                max_frame,
                min: 1024
            }))
        );
        assert!(within(raw.recv()).await.is_none());
    }
    assert_eq!(io.metrics().rejects.bad_handshake, 2);
    still_serves(&io).await;
    io.close().await;
}

/// A peer that announced the smallest limit gets no frame over it, error
/// replies included.
async fn error_replies_fit_the_limit_the_peer_announced(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    let mut small = hello::<Api>();
    small.max_frame = 1024;
    raw.send(&Header::Hello(small), None).await;
    assert!(matches!(
        within(raw.recv()).await,
        Some((Header::Welcome { .. }, _))
    ));
    let zeros = postcard::to_stdvec(&Api::Zeros(5000)).unwrap();
    let header = Header::Request {
        id: 1,
        timeout_ms: 0,
    };
    raw.send(&header, Some(&zeros)).await;
    let (header, _) = within(raw.recv_sized(1024)).await.unwrap();
    assert!(
        matches!(
            header,
            Header::Failure {
                id: 1,
                error: RemoteError::ResponseTooLarge { max: 1024, .. }
            }
        ),
        "{header:?}"
    );
    io.close().await;
}

/// An event that cannot be handled is never dropped without a word: the
/// error hook hears it and the metrics count it, on the socket and the
/// server.
async fn misdirected_and_unhandled_events_are_reported_and_counted(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Api>()).await;
    let server_side = within(seen.connected.recv()).await.unwrap();
    let (tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
    server_side.on_error(move |err| {
        let _ = tx.send(err.to_string());
    });
    // A request variant sent as a one-way event: the mirror of NotARequest.
    let sum = postcard::to_stdvec(&Api::Sum(vec![1])).unwrap();
    raw.send(&Header::Event, Some(&sum)).await;
    let said = within(errors.recv()).await.unwrap();
    assert!(said.contains("Sum is a request"), "{said}");
    // Undecodable, then a variant nobody handles (the server has no
    // handler for Blob).
    raw.send(&Header::Event, Some(&[200])).await;
    let blob = postcard::to_stdvec(&Api::Blob(vec![1, 2])).unwrap();
    raw.send(&Header::Event, Some(&blob)).await;
    assert!(within(errors.recv()).await.unwrap().contains("decode"));
    assert!(within(errors.recv())
        .await
        .unwrap()
        .contains("no handler for incoming event Blob"));
    let traffic = server_side.metrics().traffic;
    assert_eq!((traffic.events_invalid, traffic.events_unhandled), (2, 1));
    let traffic = io.metrics().traffic;
    assert_eq!((traffic.events_invalid, traffic.events_unhandled), (2, 1));
    still_serves(&io).await;
    io.close().await;
}

/// A broadcast over one recipient's frame limit reaches the others, and the
/// emitter hears how many it missed; the miss is counted, and reported to
/// the error hook of the socket that missed it.
async fn a_broadcast_over_one_recipients_limit_is_an_error_and_counted(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let roomy = within(client(&io)).await;
    let roomy_side = within(seen.connected.recv()).await.unwrap();
    let small = within(
        Socket::<Api>::builder()
            .max_frame_size(1024)
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    let small_side = within(seen.connected.recv()).await.unwrap();
    let (missed_tx, mut missed) = tokio::sync::mpsc::unbounded_channel();
    small_side.on_error(move |err| {
        let _ = missed_tx.send(err);
    });
    let (tx, mut blobs) = tokio::sync::mpsc::unbounded_channel();
    roomy.on_blob(move |bytes| {
        let _ = tx.send(bytes.len());
        async {}
    });
    roomy.start();
    small.start();
    let sent = io.emit_blob(vec![1; 2000]).await;
    assert!(
        matches!(
            sent,
            Err(Error::BroadcastTooLarge {
                max: 1024,
                skipped: 1,
                ..
            })
        ),
        "{sent:?}"
    );
    assert_eq!(within(blobs.recv()).await, Some(2000));
    let err = within(missed.recv()).await.unwrap();
    assert!(
        matches!(
            err,
            SocketError::Missed {
                event: "Blob",
                why: MissReason::FrameTooLarge { max: 1024, .. }
            }
        ),
        "{err:?}"
    );
    assert_eq!(small_side.metrics().traffic.events_dropped, 1);
    assert_eq!(roomy_side.metrics().traffic.events_dropped, 0);
    assert_eq!(io.metrics().traffic.events_dropped, 1);
    io.close().await;
}
