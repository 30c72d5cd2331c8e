//! Client reconnects: backoff until the server is back, handlers kept (and
//! run once), the offline buffer replayed in order or refused by policy,
//! requests made while offline waiting for the way back, and the cases where a client must
//! not reconnect.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netsock::{
    Addr, CallError, CloseReason, DisconnectReason, Error, Heartbeat, Reconnect, Reconnected,
    Server, Socket, SocketError,
};
use tests::api::{Api, ApiEmit, ApiHandle};
use tests::{on_both_transports, within, TempDir, Transport};
use tokio::sync::mpsc;

/// Reconnects quickly, so the tests do not wait on backoff.
fn fast() -> Reconnect {
    Reconnect::new()
        .initial_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(50))
}

/// A client of `addr` that reconnects by `policy`.
async fn client(addr: &Addr, policy: Reconnect) -> Socket<Api> {
    within(Socket::<Api>::builder().reconnect(policy).connect(addr))
        .await
        .expect("connect")
}

/// A server at `addr` that forwards `Message`s, with the connecting
/// sockets.
struct Served {
    io: Server<Api>,
    messages: mpsc::UnboundedReceiver<(String, u32)>,
    connected: mpsc::UnboundedReceiver<Socket<Api>>,
}

async fn serve_at(addr: &Addr) -> Served {
    let io = Server::<Api>::bind(addr).await.expect("bind");
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
    io.spawn();
    Served {
        io,
        messages,
        connected,
    }
}

/// The first server of a test, on an address a restarted server can bind
/// again: the same path on a Unix socket; on TCP a port below the kernel's
/// ephemeral range, which no client connection (of this or a parallel test)
/// takes as its own port meanwhile.
async fn first_server(t: Transport, dir: &TempDir) -> Served {
    if t == Transport::Unix {
        return serve_at(&t.addr(dir)).await;
    }
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % 4000 * 3;
    loop {
        let port = 20_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        let addr = Addr::tcp("127.0.0.1", port as u16);
        if Server::<Api>::bind(&addr).await.is_ok() {
            // Free again as soon as dropped (SO_REUSEADDR).
            return serve_at(&addr).await;
        }
    }
}

/// Where a restarted server binds: where the first one was.
fn fixed(first: &Server<Api>) -> Addr {
    first.local_addr().clone()
}

fn channel<T: Send + 'static>() -> (
    impl Fn(T) -> std::future::Ready<()> + Send + Sync + 'static,
    mpsc::UnboundedReceiver<T>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        move |value| {
            let _ = tx.send(value);
            std::future::ready(())
        },
        rx,
    )
}

on_both_transports!(
    comes_back_after_a_restart_and_replays_in_order,
    requests_wait_while_offline,
    fail_offline_refuses_emits,
    offline_buffer_is_bounded_and_reports_what_it_dropped,
    gives_up_after_max_attempts,
    no_reconnect_ends_at_the_first_disconnect,
    a_server_closing_the_socket_is_final,
    a_refusing_server_ends_the_retries,
    survives_repeated_network_cuts,
    leaves_a_silent_server_by_heartbeat_and_comes_back
);

async fn comes_back_after_a_restart_and_replays_in_order(t: Transport) {
    let dir = TempDir::new();
    let mut first = first_server(t, &dir).await;
    let addr = fixed(&first.io);
    let socket = client(&addr, fast()).await;
    // Handlers registered once, before any reconnect.
    let runs = Arc::new(AtomicU32::new(0));
    let (got_tx, mut got) = mpsc::unbounded_channel();
    socket.on_message({
        let runs = runs.clone();
        move |text, n| {
            runs.fetch_add(1, Ordering::SeqCst);
            let _ = got_tx.send((text, n));
            async {}
        }
    });
    let (on_disconnect, mut disconnects) = channel();
    socket.on_disconnect(on_disconnect);
    let (on_reconnect, mut reconnects) = channel::<Reconnected>();
    socket.on_reconnect(on_reconnect);
    within(socket.emit_message("before".into(), 0))
        .await
        .unwrap();
    assert_eq!(within(first.messages.recv()).await.unwrap().1, 0);

    within(first.io.close()).await;
    let reason = within(disconnects.recv()).await.unwrap();
    assert!(
        matches!(
            reason,
            DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_))
        ),
        "{reason:?}"
    );
    assert!(!socket.is_connected());
    // Offline: these wait in the buffer.
    for n in 1..=3 {
        socket.emit_message("offline".into(), n).await.unwrap();
    }

    let mut second = serve_at(&addr).await;
    let back = within(reconnects.recv()).await.unwrap();
    assert_eq!(back.replayed, 3);
    assert!(back.attempts >= 1);
    assert_eq!(back.reason, reason);
    assert!(socket.is_connected());
    within(socket.emit_message("online".into(), 4))
        .await
        .unwrap();
    for n in 1..=4 {
        assert_eq!(within(second.messages.recv()).await.unwrap().1, n);
    }
    assert_eq!(within(socket.sum(vec![2, 3])).await, Ok(5));

    // The server's emit reaches the one handler, once.
    let server_side = within(second.connected.recv()).await.unwrap();
    assert_eq!(socket.id(), server_side.id(), "the new connection's id");
    within(server_side.emit_message("hello again".into(), 9))
        .await
        .unwrap();
    assert_eq!(
        within(got.recv()).await.unwrap(),
        ("hello again".to_owned(), 9)
    );
    within(server_side.emit_message("and again".into(), 10))
        .await
        .unwrap();
    assert_eq!(within(got.recv()).await.unwrap().1, 10);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(disconnects.try_recv().is_err(), "one disconnect only");

    within(socket.close()).await;
    assert_eq!(
        within(socket.closed()).await,
        DisconnectReason::ClosedLocally
    );
    second.io.close().await;
}

/// A call in flight when the connection drops fails at the drop (it may
/// have run); one made while offline has not left, and waits for the next
/// connection, within its timeout: it completes once the server is back,
/// or times out saying after how long. The waiting is bounded like the
/// offline buffer, and `fail_offline` makes it fail at once.
async fn requests_wait_while_offline(t: Transport) {
    let dir = TempDir::new();
    let mut first = first_server(t, &dir).await;
    let addr = fixed(&first.io);
    let socket = client(&addr, fast().offline_buffer(2)).await;
    // `socket`'s side, before another client connects: the two could be
    // announced in either order.
    let server_side = within(first.connected.recv()).await.unwrap();
    let strict = client(&addr, fast().fail_offline()).await;
    let (on_disconnect, mut disconnects) = channel();
    socket.on_disconnect(on_disconnect);
    let (on_strict_disconnect, mut strict_disconnects) = channel();
    strict.on_disconnect(on_strict_disconnect);
    server_side.on_sum(|_| std::future::pending::<i64>());
    let call = tokio::spawn({
        let socket = socket.clone();
        async move { socket.timeout(Duration::from_secs(60)).sum(vec![1]).await }
    });
    within(async {
        while server_side.metrics().traffic.frames_in == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    within(first.io.close()).await;
    let err = within(call).await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Disconnected(DisconnectReason::ClosedByPeer(_))
        ),
        "{err:?}"
    );
    within(disconnects.recv()).await.unwrap();
    within(strict_disconnects.recv()).await.unwrap();

    // Offline, with nobody listening: a call times out after its own timeout.
    let short = Duration::from_millis(50);
    assert_eq!(
        within(socket.timeout(short).sum(vec![1])).await,
        Err(CallError::Timeout { after: short })
    );
    // With `fail_offline`, it fails at once, saying why.
    let err = within(strict.sum(vec![1])).await.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Disconnected(DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_)))
        ),
        "{err:?}"
    );
    // Two calls wait (the offline buffer's size); a third fails at once.
    // (Each of the two tries again if the probe below held its place.)
    let waiting: Vec<_> = (1..=2)
        .map(|n| {
            let socket = socket.clone();
            tokio::spawn(async move {
                loop {
                    match socket
                        .timeout(Duration::from_secs(60))
                        .sum(vec![n, 40])
                        .await
                    {
                        Err(CallError::Disconnected(_)) => tokio::task::yield_now().await,
                        answer => return answer,
                    }
                }
            })
        })
        .collect();
    within(async {
        loop {
            match socket.timeout(short).sum(vec![0]).await {
                Err(CallError::Disconnected(_)) => break,
                // The two were not both waiting yet.
                Err(CallError::Timeout { .. }) => continue,
                other => panic!("{other:?}"),
            }
        }
    })
    .await;
    // The server comes back: both complete, once each.
    let second = serve_at(&addr).await;
    let answers: Vec<i64> = futures_util::future::join_all(waiting)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(answers, [41, 42]);
    socket.close().await;
    strict.close().await;
    second.io.close().await;
}

async fn fail_offline_refuses_emits(t: Transport) {
    let dir = TempDir::new();
    let first = first_server(t, &dir).await;
    let addr = fixed(&first.io);
    let socket = client(&addr, fast().fail_offline()).await;
    let (on_disconnect, mut disconnects) = channel();
    socket.on_disconnect(on_disconnect);
    let (on_reconnect, mut reconnects) = channel::<Reconnected>();
    socket.on_reconnect(on_reconnect);
    within(first.io.close()).await;
    within(disconnects.recv()).await.unwrap();
    let err = socket.emit_message("lost".into(), 1).await.unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
    let err = socket
        .try_emit(Api::Message {
            text: "lost".into(),
            n: 2,
        })
        .unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");

    let mut second = serve_at(&addr).await;
    assert_eq!(within(reconnects.recv()).await.unwrap().replayed, 0);
    within(socket.emit_message("after".into(), 3))
        .await
        .unwrap();
    assert_eq!(within(second.messages.recv()).await.unwrap().1, 3);
    socket.close().await;
    second.io.close().await;
}

async fn offline_buffer_is_bounded_and_reports_what_it_dropped(t: Transport) {
    let dir = TempDir::new();
    let first = first_server(t, &dir).await;
    let socket = client(first.io.local_addr(), fast().offline_buffer(2)).await;
    let (on_disconnect, mut disconnects) = channel();
    socket.on_disconnect(on_disconnect);
    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    socket.on_error(move |err| {
        let _ = errors_tx.send(err);
    });
    within(first.io.close()).await;
    within(disconnects.recv()).await.unwrap();
    socket.emit_message("kept".into(), 1).await.unwrap();
    socket
        .try_emit(Api::Message {
            text: "kept".into(),
            n: 2,
        })
        .unwrap();
    let err = socket.emit_message("refused".into(), 3).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::OfflineBufferFull {
                event: "Message",
                capacity: 2
            }
        ),
        "{err:?}"
    );
    // Volatile emits are dropped while offline, and counted.
    socket
        .volatile()
        .emit_message("dropped".into(), 4)
        .await
        .unwrap();
    assert_eq!(socket.dropped_events(), 1);
    // Closing for good: the two buffered events were never sent.
    within(socket.close()).await;
    match within(errors.recv()).await.unwrap() {
        SocketError::Unsent { events, reason } => {
            assert_eq!(events, 2);
            assert_eq!(reason, DisconnectReason::ClosedLocally);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(socket.dropped_events(), 3);
}

async fn gives_up_after_max_attempts(t: Transport) {
    let dir = TempDir::new();
    let first = first_server(t, &dir).await;
    let socket = client(first.io.local_addr(), fast().max_attempts(3)).await;
    within(first.io.close()).await;
    let reason = within(socket.closed()).await;
    match &reason {
        DisconnectReason::ReconnectFailed { attempts, error } => {
            assert_eq!(*attempts, 3);
            assert!(!error.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!socket.is_connected());
    let err = socket.emit_message("late".into(), 1).await.unwrap_err();
    assert_eq!(err.to_string(), Error::Disconnected(reason).to_string());
}

async fn no_reconnect_ends_at_the_first_disconnect(t: Transport) {
    let dir = TempDir::new();
    let first = first_server(t, &dir).await;
    let socket = within(
        Socket::<Api>::builder()
            .no_reconnect()
            .connect(first.io.local_addr()),
    )
    .await
    .unwrap();
    within(first.io.close()).await;
    let reason = within(socket.closed()).await;
    assert!(
        matches!(
            reason,
            DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_))
        ),
        "{reason:?}"
    );
    let err = socket.emit_message("late".into(), 1).await.unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
}

async fn a_server_closing_the_socket_is_final(t: Transport) {
    let dir = TempDir::new();
    let mut first = first_server(t, &dir).await;
    let socket = client(first.io.local_addr(), fast()).await;
    socket.start();
    let server_side = within(first.connected.recv()).await.unwrap();
    within(server_side.close()).await;
    assert_eq!(
        within(socket.closed()).await,
        DisconnectReason::ClosedByPeer(CloseReason::Normal)
    );
    assert!(first.connected.try_recv().is_err(), "no reconnect");
    first.io.close().await;
}

async fn a_refusing_server_ends_the_retries(t: Transport) {
    let dir = TempDir::new();
    let first = first_server(t, &dir).await;
    let addr = fixed(&first.io);
    let socket = client(&addr, fast()).await;
    within(first.io.close()).await;
    // The restarted server refuses this client: retrying cannot help.
    let second = Server::<Api>::bind(&addr).await.unwrap();
    second.middleware(|_hs| async { Err("not you".into()) });
    second.spawn();
    let reason = within(socket.closed()).await;
    match &reason {
        DisconnectReason::ReconnectFailed { error, .. } => {
            assert!(error.contains("not you"), "{error}")
        }
        other => panic!("unexpected {other:?}"),
    }
    second.close().await;
}

/// Several clients emit and call through a proxy that cuts every connection
/// again and again: each client comes back every time, every request is
/// answered right or fails as disconnected (never a timeout, never a wrong
/// or doubled answer), and each client's events arrive in order, never twice.
async fn survives_repeated_network_cuts(t: Transport) {
    const CLIENTS: usize = 4;
    const CUTS: usize = 5;
    let (io, mut seen, dir) = tests::api::serve(t).await;
    let proxy = tests::proxy::Proxy::start(t, &dir, fixed(&io)).await;
    let (done_tx, done) = tokio::sync::watch::channel(false);
    // (client, how many times it has come back) after each answer.
    let (progress_tx, mut progress) = mpsc::unbounded_channel::<(usize, usize)>();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let socket = client(proxy.addr(), fast()).await;
        let back = Arc::new(AtomicU32::new(0));
        socket.on_reconnect({
            let back = back.clone();
            move |_| {
                back.fetch_add(1, Ordering::SeqCst);
                async {}
            }
        });
        let (done, progress_tx) = (done.clone(), progress_tx.clone());
        clients.push(tokio::spawn(async move {
            let (mut answered, mut cut_off, mut n) = (0u32, 0u32, 0u32);
            while !*done.borrow() {
                n += 1;
                match socket.emit_message(format!("c{c}"), n).await {
                    Ok(()) | Err(Error::OfflineBufferFull { .. }) => {}
                    Err(err) => panic!("emit failed: {err}"),
                }
                match socket.sum(vec![i64::from(n), c as i64]).await {
                    Ok(sum) => {
                        assert_eq!(sum, i64::from(n) + c as i64, "a wrong answer");
                        answered += 1;
                        let _ = progress_tx.send((c, back.load(Ordering::SeqCst) as usize));
                    }
                    Err(CallError::Disconnected(_)) => {
                        cut_off += 1;
                        // Offline: wait for the way back rather than spin.
                        tokio::task::yield_now().await;
                    }
                    Err(err) => panic!("request failed: {err}"),
                }
            }
            socket.close().await;
            (answered, cut_off, back.load(Ordering::SeqCst) as usize)
        }));
    }
    // Wait until every client is answered on its newest connection, then
    // cut them all.
    for cuts in 0..=CUTS {
        let mut answered = [false; CLIENTS];
        within(async {
            while !answered.iter().all(|a| *a) {
                let (c, back) = progress.recv().await.unwrap();
                answered[c] |= back == cuts;
            }
        })
        .await;
        if cuts < CUTS {
            assert_eq!(proxy.cut(), CLIENTS);
        }
    }
    let _ = done_tx.send(true);
    for client in clients {
        let (answered, _cut_off, back) = within(client).await.unwrap();
        assert!(answered > CUTS as u32);
        assert_eq!(back, CUTS, "each cut, one reconnect");
    }
    // Per client, the server saw each event at most once, in order.
    let mut last = [0u32; CLIENTS];
    while let Ok((_, text, n)) = seen.messages.try_recv() {
        let c: usize = text[1..].parse().unwrap();
        assert!(n > last[c], "client {c}: event {n} after {}", last[c]);
        last[c] = n;
    }
    assert!(last.iter().all(|n| *n > 0));
    io.close().await;
}

/// A server that stops answering without closing (a hung process, a dead
/// link) is noticed by the heartbeat, and the client reconnects.
async fn leaves_a_silent_server_by_heartbeat_and_comes_back(t: Transport) {
    // Short, yet long enough that a loaded machine answers pings in time.
    const BEAT: Duration = Duration::from_millis(300);
    let (io, mut seen, dir) = tests::api::serve(t).await;
    let proxy = tests::proxy::Proxy::start(t, &dir, fixed(&io)).await;
    let socket = within(
        Socket::<Api>::builder()
            .heartbeat(Heartbeat::every(BEAT).timeout(BEAT))
            .reconnect(fast())
            .connect(proxy.addr()),
    )
    .await
    .unwrap();
    let (on_disconnect, mut disconnects) = channel();
    socket.on_disconnect(on_disconnect);
    let (on_reconnect, mut reconnects) = channel::<Reconnected>();
    socket.on_reconnect(on_reconnect);
    assert_eq!(within(socket.sum(vec![1, 2])).await, Ok(3));
    let first = within(seen.connected.recv()).await.unwrap();

    proxy.freeze();
    assert_eq!(
        within(disconnects.recv()).await.unwrap(),
        DisconnectReason::HeartbeatTimeout { after: BEAT * 2 }
    );
    let back = within(reconnects.recv()).await.unwrap();
    assert_eq!(
        back.reason,
        DisconnectReason::HeartbeatTimeout { after: BEAT * 2 }
    );
    let second = within(seen.connected.recv()).await.unwrap();
    assert_ne!(first.id(), second.id());
    assert_eq!(socket.id(), second.id());
    assert_eq!(within(socket.sum(vec![2, 3])).await, Ok(5));
    socket.close().await;
    proxy.cut(); // the frozen connection would hold the server's close up
    io.close().await;
}
