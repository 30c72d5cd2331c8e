//! The in-memory transport (`memory://name`): the same `Server` and `Socket`
//! without sockets — requests, events both ways, rooms, reconnect to a server
//! bound again on the same name, names in use and unbound, a peer that stops
//! reading, hang-ups — and, since it needs no OS, deterministic under paused
//! time, where heartbeats, write timeouts and reconnect backoff take no real
//! time at all.
//!
//! Its own file rather than a third transport in `on_both_transports!`: the
//! cases there use OS listeners for their hand-written peers, file
//! descriptors, socket files and ports, which a memory connection has none
//! of; here the cases are the ones that matter for memory, several of them on
//! paused time, which needs a current-thread runtime.

use std::time::Duration;

use netsock::frame::Header;
use netsock::memory::{MemoryListener, MemoryStream};
use netsock::{
    Addr, CloseReason, DisconnectReason, Error, Events, Heartbeat, PeerAddr, Reconnect,
    Reconnected, Server, Socket,
};
use serde::{Deserialize, Serialize};
use tests::api::{Api, ApiEmit, ApiHandle};
use tests::{within, Raw};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// A running server of [`Api`] on `addr`: sums, and forwards `Message`s and
/// its sockets.
struct Served {
    io: Server<Api>,
    messages: mpsc::UnboundedReceiver<(String, u32)>,
    connected: mpsc::UnboundedReceiver<Socket<Api>>,
}

async fn serve_with(addr: &str, builder: netsock::ServerBuilder<Api>) -> Served {
    let io = builder.bind(addr).await.expect("bind");
    let (messages_tx, messages) = mpsc::unbounded_channel();
    let (connected_tx, connected) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Api>| {
        let messages_tx = messages_tx.clone();
        let connected_tx = connected_tx.clone();
        async move {
            socket.on_message(move |text, n| {
                let _ = messages_tx.send((text, n));
                async {}
            });
            socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
            let _ = connected_tx.send(socket);
            Ok(())
        }
    });
    tokio::spawn({
        let io = io.clone();
        async move { io.run().await }
    });
    Served {
        io,
        messages,
        connected,
    }
}

async fn serve(addr: &str) -> Served {
    serve_with(addr, Server::<Api>::builder()).await
}

#[tokio::test]
async fn request_and_reply() {
    let served = serve("memory://").await;
    let addr = served.io.local_addr().clone();
    assert!(matches!(&addr, Addr::Memory(name) if !name.is_empty()));
    let socket = within(Socket::<Api>::connect(&addr)).await.unwrap();
    assert_eq!(within(socket.sum(vec![1, 2, 3])).await.unwrap(), 6);
    assert_eq!(socket.peer_addr().to_string(), addr.to_string());
    served.io.close().await;
}

#[tokio::test]
async fn events_both_ways() {
    let mut served = serve("memory://").await;
    let socket = within(Socket::<Api>::connect(served.io.local_addr()))
        .await
        .unwrap();
    let (tx, mut received) = mpsc::unbounded_channel();
    socket.on_message(move |text, n| {
        let _ = tx.send((text, n));
        async {}
    });
    socket.start();
    within(socket.emit_message("up".into(), 1)).await.unwrap();
    assert_eq!(within(served.messages.recv()).await, Some(("up".into(), 1)));
    let server_side = within(served.connected.recv()).await.unwrap();
    let Addr::Memory(name) = served.io.local_addr() else {
        unreachable!()
    };
    assert_eq!(server_side.peer_addr(), PeerAddr::Memory(name.clone()));
    assert_eq!(server_side.peer_cred(), None);
    within(server_side.emit_message("down".into(), 2))
        .await
        .unwrap();
    assert_eq!(within(received.recv()).await, Some(("down".into(), 2)));
    served.io.close().await;
}

#[tokio::test]
async fn rooms_and_broadcast() {
    let mut served = serve("memory://").await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let socket = within(Socket::<Api>::connect(served.io.local_addr()))
            .await
            .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        socket.on_message(move |text, n| {
            let _ = tx.send((text, n));
            async {}
        });
        socket.start();
        let server_side = within(served.connected.recv()).await.unwrap();
        clients.push((socket, rx, server_side));
    }
    clients[0].2.join("lobby");
    clients[1].2.join("lobby");
    within(served.io.to("lobby").emit_message("members".into(), 1))
        .await
        .unwrap();
    within(served.io.emit_message("everyone".into(), 2))
        .await
        .unwrap();
    for (i, (_, rx, _)) in clients.iter_mut().enumerate() {
        let first = within(rx.recv()).await.unwrap();
        if i < 2 {
            assert_eq!(first, ("members".into(), 1), "client {i}");
            assert_eq!(within(rx.recv()).await.unwrap(), ("everyone".into(), 2));
        } else {
            assert_eq!(first, ("everyone".into(), 2), "client {i}");
        }
    }
    served.io.close().await;
}

#[tokio::test]
async fn a_name_is_taken_until_the_server_closes() {
    let served = serve("memory://tests-memory-taken").await;
    let again = Server::<Api>::bind("memory://tests-memory-taken").await;
    match again {
        Err(Error::AddrInUse { addr }) => assert_eq!(addr, Addr::memory("tests-memory-taken")),
        other => panic!("{other:?}"),
    }
    served.io.close().await;
    let rebound = Server::<Api>::bind("memory://tests-memory-taken")
        .await
        .unwrap();
    rebound.close().await;
}

#[tokio::test]
async fn a_name_is_freed_when_the_server_is_dropped() {
    let io = Server::<Api>::bind("memory://tests-memory-dropped")
        .await
        .unwrap();
    drop(io);
    Server::<Api>::bind("memory://tests-memory-dropped")
        .await
        .unwrap();
}

#[tokio::test]
async fn connecting_to_an_unbound_name_is_refused() {
    let err = Socket::<Api>::builder()
        .no_reconnect()
        .connect("memory://tests-memory-nobody")
        .await
        .unwrap_err();
    match err {
        Error::Connect { addr, source } => {
            assert_eq!(addr, Addr::memory("tests-memory-nobody"));
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("{other:?}"),
    }
}

/// Paused time: the client's reconnect backoff elapses without waiting.
#[tokio::test(start_paused = true)]
async fn reconnects_to_a_server_bound_again_on_the_same_name() {
    const NAME: &str = "memory://tests-memory-reconnect";
    let first = serve(NAME).await;
    let socket = Socket::<Api>::builder()
        .reconnect(Reconnect::new().initial_delay(Duration::from_secs(1)))
        .connect(NAME)
        .await
        .unwrap();
    let (tx, mut reconnected) = mpsc::unbounded_channel();
    socket.on_reconnect(move |r: Reconnected| {
        let _ = tx.send(r);
        async {}
    });
    assert_eq!(socket.sum(vec![1]).await.unwrap(), 1);
    first.io.close().await;
    // Offline: attempts are refused (nothing is bound) and retried with
    // backoff; an hour goes by in no time.
    while socket.is_connected() {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!socket.is_connected());
    let mut second = serve(NAME).await;
    let r = reconnected.recv().await.unwrap();
    // Refused attempts, backing off, all the hour long. (`offline` is
    // measured in real time, not tokio's.)
    assert!(r.attempts > 100, "{r:?}");
    assert!(
        matches!(
            r.reason,
            DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_))
        ),
        "{r:?}"
    );
    assert_eq!(socket.sum(vec![2, 3]).await.unwrap(), 5);
    socket.emit_message("back".into(), 1).await.unwrap();
    assert_eq!(second.messages.recv().await, Some(("back".into(), 1)));
    assert!(second.connected.recv().await.is_some());
    second.io.close().await;
}

#[derive(Events, Serialize, Deserialize, Debug)]
enum Feed {
    Data(Vec<u8>),
}

/// A hand-written peer with a 1 KiB buffer that never reads: the buffer
/// fills, then the connection's queue (`try_emit` refuses, `emit` waits),
/// and on paused time the write timeout drops it at once, while another
/// client is served throughout.
#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_fills_the_queue_then_times_out() {
    let io = Server::<Feed>::builder()
        .queue_capacity(8)
        .write_timeout(Duration::from_secs(30))
        .no_heartbeat()
        .bind("memory://")
        .await
        .unwrap();
    let (tx, mut connected) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Feed>| {
        let _ = tx.send(socket);
        async { Ok(()) }
    });
    tokio::spawn({
        let io = io.clone();
        async move { io.run().await }
    });
    let stream = MemoryStream::connect_with_buffer(io.local_addr(), 1024).unwrap();
    let mut raw = Raw::from_stream(Box::new(stream));
    raw.handshake::<Feed>().await;
    let stuck = connected.recv().await.unwrap();

    let mut sent = 0;
    loop {
        match stuck.try_emit(Feed::Data(vec![1; 256])) {
            Ok(()) => sent += 1,
            Err(Error::QueueFull { event: "Data" }) => break,
            Err(e) => panic!("{e}"),
        }
        // Let the writer move what it can into the peer's buffer.
        tokio::task::yield_now().await;
        assert!(sent < 100, "the queue never filled");
    }
    // The buffer (1 KiB) holds a few 256-byte events, the queue 8 more.
    assert!((8..=16).contains(&sent), "{sent}");
    let waiting = stuck.emit_data(vec![2; 256]);
    tokio::pin!(waiting);
    assert!(futures_util::FutureExt::now_or_never(waiting.as_mut()).is_none());

    // Others are unaffected.
    let other = Socket::<Feed>::connect(io.local_addr()).await.unwrap();
    let (tx, mut got) = mpsc::unbounded_channel();
    other.on_data(move |data| {
        let _ = tx.send(data.len());
        async {}
    });
    other.start();
    let other_side = connected.recv().await.unwrap();
    other_side.emit_data(vec![3; 10]).await.unwrap();
    assert_eq!(got.recv().await, Some(10));

    // 30 s of paused time later, the stuck peer is dropped.
    let started = tokio::time::Instant::now();
    let reason = stuck.closed().await;
    assert_eq!(
        reason,
        DisconnectReason::WriteTimeout {
            after: Duration::from_secs(30)
        }
    );
    assert!(
        started.elapsed() >= Duration::from_secs(29),
        "{:?}",
        started.elapsed()
    );
    assert!(waiting.await.is_err(), "the waiting emit fails");
    // The raw peer reads what was buffered, then the end of the stream.
    let mut frames = 0;
    while raw.recv().await.is_some() {
        frames += 1;
    }
    assert!(frames >= 2, "{frames}");
    assert!(other.is_connected());
    io.close().await;
}

/// Paused time: a peer that completes the handshake and goes silent is
/// dropped after the heartbeat's interval and timeout, taking no real time.
#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_dropped_by_the_heartbeat() {
    let beat = Duration::from_secs(25);
    let mut served = serve_with(
        "memory://",
        Server::<Api>::builder().heartbeat(Heartbeat::every(beat).timeout(beat)),
    )
    .await;
    let mut raw = Raw::connect(served.io.local_addr()).await;
    raw.handshake::<Api>().await;
    let silent = served.connected.recv().await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        silent.closed().await,
        DisconnectReason::HeartbeatTimeout { after: beat * 2 }
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "real time passed"
    );
    assert!(matches!(raw.recv().await, Some((Header::Ping, _))));
    served.io.close().await;
}

#[tokio::test]
async fn a_peer_that_hangs_up_or_half_closes_is_seen_as_hung_up() {
    let mut served = serve("memory://").await;
    let mut raw = Raw::connect(served.io.local_addr()).await;
    within(raw.handshake::<Api>()).await;
    let first = within(served.connected.recv()).await.unwrap();
    drop(raw);
    assert_eq!(within(first.closed()).await, DisconnectReason::PeerHungUp);

    let mut raw = Raw::connect(served.io.local_addr()).await;
    within(raw.handshake::<Api>()).await;
    let second = within(served.connected.recv()).await.unwrap();
    let mut stream = raw.into_stream();
    stream.shutdown().await.unwrap();
    assert_eq!(within(second.closed()).await, DisconnectReason::PeerHungUp);
    served.io.close().await;
}

/// A hand-written server on a [`MemoryListener`], for testing a client.
#[tokio::test]
async fn a_client_against_a_hand_written_server() {
    let listener = MemoryListener::bind("memory://").unwrap();
    let connecting = tokio::spawn(
        Socket::<Api>::builder()
            .no_reconnect()
            .connect(listener.local_addr()),
    );
    let mut server = Raw::from_stream(Box::new(within(listener.accept()).await));
    let Some((Header::Hello(hello), _)) = within(server.recv()).await else {
        panic!("no hello")
    };
    assert_eq!(hello.sends, Api::SCHEMA_ID);
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
    assert_eq!(
        socket.peer_addr(),
        PeerAddr::Memory(match listener.local_addr() {
            Addr::Memory(name) => name,
            _ => unreachable!(),
        })
    );
    drop(server);
    assert_eq!(within(socket.closed()).await, DisconnectReason::PeerHungUp);
}
