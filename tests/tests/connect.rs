//! Connecting: the handshake, ids, addresses, schema checks, and the server's
//! list of sockets going up and down.

use netsock::{DisconnectReason, Error, Events, Socket};
use serde::{Deserialize, Serialize};
use tests::api::{client, serve, Api, ApiEmit, ApiHandle};
use tests::{on_both_transports, within, Transport};

on_both_transports!(
    handshake_gives_both_ends_one_id,
    sockets_go_up_and_down,
    schema_mismatch_is_refused_naming_both,
    schema_mismatch_names_the_variant_that_differs
);

async fn handshake_gives_both_ends_one_id(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    // Listed as soon as connect returns, before on_connection has run.
    assert_eq!(io.sockets().len(), 1);
    let server_side = within(seen.connected.recv()).await.unwrap();
    assert_eq!(socket.id(), server_side.id());
    assert!(socket.is_connected());
    match (t, socket.peer_addr()) {
        (Transport::Tcp, netsock::PeerAddr::Tcp(sa)) => {
            assert_eq!(Some(sa.port()), io.local_addr().port())
        }
        (Transport::Unix, netsock::PeerAddr::Unix(Some(p))) => {
            assert_eq!(Some(p.as_path()), io.local_addr().as_path())
        }
        other => panic!("unexpected peer address {other:?}"),
    }
    io.close().await;
}

async fn sockets_go_up_and_down(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let mut clients = Vec::new();
    let mut server_sides = Vec::new();
    for n in 1..=3 {
        clients.push(within(client(&io)).await);
        server_sides.push(within(seen.connected.recv()).await.unwrap());
        assert_eq!(io.sockets().len(), n);
    }
    let ids: Vec<_> = io.sockets().iter().map(|s| s.id()).collect();
    assert_eq!(ids, clients.iter().map(|c| c.id()).collect::<Vec<_>>());

    within(clients[1].close()).await;
    assert_eq!(
        within(server_sides[1].closed()).await,
        DisconnectReason::ClosedByPeer(netsock::CloseReason::Normal)
    );
    assert_eq!(io.sockets().len(), 2);
    assert!(io.socket(clients[1].id()).is_none());

    within(clients[0].close()).await;
    within(server_sides[0].closed()).await;
    assert_eq!(io.sockets().len(), 1);
    assert_eq!(io.sockets()[0].id(), clients[2].id());

    let (tx, mut disconnects) = tokio::sync::mpsc::unbounded_channel();
    clients[2].on_disconnect(move |reason| {
        let _ = tx.send(reason);
        async {}
    });
    io.close().await;
    let reason = within(disconnects.recv()).await.unwrap();
    assert!(
        matches!(
            reason,
            DisconnectReason::ClosedByPeer(netsock::CloseReason::Shutdown(_))
        ),
        "{reason:?}"
    );
    assert_eq!(io.sockets().len(), 0);
    // The client is trying to reconnect to the closed server until closed.
    assert!(!clients[2].is_connected());
    within(clients[2].close()).await;
    assert_eq!(
        within(clients[2].closed()).await,
        DisconnectReason::ClosedLocally
    );
}

/// The same enum, built twice with one field type changed: the error names
/// the enum and the variant, with both definitions.
mod server_side {
    #[derive(netsock::Events, serde::Serialize, serde::Deserialize, Debug)]
    pub enum SumApi {
        #[request(response = i64)]
        Sum(Vec<i64>),
        Log {
            line: String,
        },
    }
}

mod client_side {
    #[derive(netsock::Events, serde::Serialize, serde::Deserialize, Debug)]
    pub enum SumApi {
        #[request(response = i64)]
        Sum(Vec<i32>),
        Log {
            line: String,
        },
    }
}

async fn schema_mismatch_names_the_variant_that_differs(t: Transport) {
    let dir = tests::TempDir::new();
    let io = netsock::Server::<server_side::SumApi>::bind(t.addr(&dir))
        .await
        .unwrap();
    io.spawn();
    let err = within(Socket::<client_side::SumApi>::connect(io.local_addr()))
        .await
        .unwrap_err();
    let Error::SchemaMismatch { differences, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        differences,
        &["the server's SumApi has Sum(Vec<i64>)->i64, this client's has Sum(Vec<i32>)->i64"]
    );
    assert!(err.to_string().starts_with(
        "schema mismatch: the server's SumApi has Sum(Vec<i64>)->i64, this client's has \
         Sum(Vec<i32>)->i64; this side sends"
    ));
    assert_eq!(io.metrics().rejects.schema, 1);
    io.close().await;
}

/// Same variant names, different field type: a different schema.
#[derive(Events, Serialize, Deserialize, Debug)]
enum OtherApi {
    Message { text: String, n: u64 },
}

async fn schema_mismatch_is_refused_naming_both(t: Transport) {
    let (io, _seen, _dir) = serve(t).await;
    let err = within(Socket::<OtherApi>::connect(io.local_addr()))
        .await
        .unwrap_err();
    let Error::SchemaMismatch {
        local_sends,
        remote_sends,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*local_sends, OtherApi::SCHEMA_ID);
    assert_eq!(*remote_sends, Api::SCHEMA_ID);
    let text = err.to_string();
    assert!(
        text.contains(&OtherApi::SCHEMA_ID.to_string())
            && text.contains(&Api::SCHEMA_ID.to_string()),
        "{text}"
    );
    // The server sent its schema: the client says what differs.
    assert!(
        text.contains("the server's enum is Api, this client's is OtherApi"),
        "{text}"
    );

    // A lenient client may connect for a rolling upgrade, and the server still
    // serves everyone else.
    let lenient = within(
        Socket::<OtherApi>::builder()
            .schema_check(netsock::SchemaCheck::Lenient)
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    assert!(lenient.is_connected());
    let good = within(client(&io)).await;
    assert_eq!(within(good.sum(vec![1, 2])).await.unwrap(), 3);
    io.close().await;
}

#[tokio::test]
async fn bad_addresses_are_typed_errors_naming_the_input() {
    let err = Socket::<Api>::connect("localhost").await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidAddr { input, .. } if input == "localhost"),
        "{err:?}"
    );
    let err = netsock::Server::<Api>::bind("tcp://nowhere")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tcp://nowhere"), "{err}");
}

#[tokio::test]
async fn connect_to_nothing_is_a_connect_error() {
    let dir = tests::TempDir::new();
    let path = dir.path().join("nobody.sock");
    let err = Socket::<Api>::connect(&path).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn port_zero_reports_the_bound_port() {
    let io = netsock::Server::<Api>::bind(0).await.unwrap();
    let port = io.local_addr().port().unwrap();
    assert_ne!(port, 0);
    assert_eq!(io.local_addr(), &netsock::Addr::tcp("127.0.0.1", port));
}

on_both_transports!(close_does_not_hang_on_a_client_that_stopped_reading);

async fn close_does_not_hang_on_a_client_that_stopped_reading(t: Transport) {
    let builder = netsock::Server::<Api>::builder().queue_capacity(4);
    let (io, mut seen, _dir) = tests::api::serve_with(t, builder).await;
    let mut raw = tests::Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Api>()).await;
    let server_side = within(seen.connected.recv()).await.unwrap();
    // Fill the socket buffers and the queue: the raw client never reads.
    // The writer holds one frame and the queue four, so five emits return
    // even if the kernel buffers nothing.
    let (progress, mut emitted) = tokio::sync::mpsc::unbounded_channel();
    let flood = tokio::spawn(async move {
        loop {
            match server_side.emit_blob(vec![0; 1 << 20]).await {
                Ok(()) => drop(progress.send(())),
                Err(netsock::Error::Disconnected(_)) => return,
                Err(e) => panic!("{e}"),
            }
        }
    });
    for _ in 0..5 {
        within(emitted.recv()).await.unwrap();
    }
    let others = within(client(&io)).await;
    assert_eq!(
        within(others.sum(vec![1, 1])).await.unwrap(),
        2,
        "others are served meanwhile"
    );
    within(io.close()).await;
    within(flood).await.unwrap();
    drop(raw);
}

on_both_transports!(connections_beyond_the_limit_are_refused);

async fn connections_beyond_the_limit_are_refused(t: Transport) {
    let (io, _seen, _dir) =
        tests::api::serve_with(t, netsock::Server::<Api>::builder().max_connections(2)).await;
    let a = within(client(&io)).await;
    let _b = within(client(&io)).await;
    let err = within(Socket::<Api>::connect(io.local_addr()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected(netsock::RejectReason::Other(m)) if m.contains("limit of 2 connections")),
        "{err:?}"
    );
    assert_eq!(io.metrics().rejects.full, 1);
    // Room again once one leaves.
    let server_side = io.socket(a.id()).unwrap();
    within(a.close()).await;
    within(server_side.closed()).await;
    let c = within(client(&io)).await;
    assert_eq!(within(c.sum(vec![1, 1])).await.unwrap(), 2);
    io.close().await;
}

on_both_transports!(
    a_client_waits_for_a_server_that_is_not_up_yet,
    waiting_for_a_server_that_never_comes_names_it
);

/// An address on `t` where nothing listens yet: a path in `dir`, or a TCP
/// port that was free a moment ago.
fn free_addr(t: Transport, dir: &tests::TempDir) -> netsock::Addr {
    match t {
        Transport::Unix => netsock::Addr::unix(dir.path().join("later.sock")),
        _ => {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = probe.local_addr().expect("addr").port();
            netsock::Addr::tcp("127.0.0.1", port)
        }
    }
}

/// `wait_for_server`: the client starts first, and connects once the
/// server is up, instead of failing at once.
async fn a_client_waits_for_a_server_that_is_not_up_yet(t: Transport) {
    let dir = tests::TempDir::new();
    let addr = free_addr(t, &dir);
    let waiting = Socket::<Api>::builder()
        .wait_for_server(std::time::Duration::from_secs(10))
        .connect(addr.clone());
    let waiting = tokio::spawn(waiting);
    // Without the wait, the same address fails at once.
    let at_once = Socket::<Api>::connect(addr.clone()).await;
    assert!(matches!(at_once, Err(Error::Connect { .. })), "{at_once:?}");
    let io = netsock::Server::<Api>::bind(addr).await.expect("bind");
    io.on_connection(|socket: Socket<Api>| async move {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        Ok(())
    });
    io.spawn();
    let socket = within(waiting).await.unwrap().expect("connected");
    assert_eq!(within(socket.sum(vec![2, 3])).await.unwrap(), 5);
    io.close().await;
}

/// When the deadline passes, the error names the address and the attempts.
async fn waiting_for_a_server_that_never_comes_names_it(t: Transport) {
    let dir = tests::TempDir::new();
    let addr = free_addr(t, &dir);
    let failed = within(
        Socket::<Api>::builder()
            .wait_for_server(std::time::Duration::from_millis(500))
            .connect(addr.clone()),
    )
    .await;
    match failed {
        Err(err @ Error::ServerUnreachable { attempts, .. }) => {
            assert!(attempts >= 2, "{err}");
            assert!(err.to_string().contains(&addr.to_string()), "{err}");
        }
        other => panic!("{other:?}"),
    }
}

on_both_transports!(a_failing_on_connection_ends_the_client_with_its_reason);

/// `connect` returns before `on_connection` runs (its `Welcome` goes
/// first); a failing `on_connection` then ends the connection, and the
/// client hears why.
async fn a_failing_on_connection_ends_the_client_with_its_reason(t: Transport) {
    let dir = tests::TempDir::new();
    let io = netsock::Server::<Api>::bind(t.addr(&dir))
        .await
        .expect("bind");
    io.on_connection(|_socket: Socket<Api>| async move {
        Err(Error::Protocol("no room for you".into()))
    });
    io.spawn();
    let socket = within(
        Socket::<Api>::builder()
            .no_reconnect()
            .connect(io.local_addr()),
    )
    .await
    .expect("connect returns before on_connection runs");
    match within(socket.closed()).await {
        DisconnectReason::ClosedByPeer(netsock::CloseReason::Application(why)) => {
            assert!(why.contains("no room for you"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    io.close().await;
}
