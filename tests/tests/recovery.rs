//! Session recovery: a client with `Recovery` rides out cuts in the network
//! (a proxy cuts its connections at random points, mid-frame included)
//! with every event and call delivered exactly once and in order; a session
//! the server no longer has is replaced cleanly, with the loss reported;
//! tokens that are not the client's own are refused.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netsock::frame::{Header, LostReason, Resumption, SessionAsk, SessionGrant, SessionToken};
use netsock::{CallError, Reconnect, Reconnected, Recovery, Server, Socket};
use tests::api::{Api, ApiEmit, ApiHandle};
use tests::proxy::Proxy;
use tests::{hello, on_both_transports, within, Raw, TempDir, Transport};
use tokio::sync::mpsc;

on_both_transports!(
    nothing_is_lost_or_doubled_across_cuts,
    a_server_that_lost_the_session_says_so_and_the_client_goes_on,
    a_session_past_its_window_reports_exactly_what_was_lost,
    tokens_not_the_clients_own_are_refused,
    a_client_without_recovery_gets_no_session,
    a_stream_carries_on_across_cuts,
    a_killed_server_process_loses_the_session_cleanly,
);

/// Events each way in the run under cuts (the long run: `RECOVERY_EVENTS`).
fn events() -> u32 {
    std::env::var("RECOVERY_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// Reconnects at once: the cuts are many.
fn fast() -> Reconnect {
    Reconnect::new()
        .initial_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(20))
}

/// A server answering `Sum` (recording each call's first number, to catch
/// a call run twice) and forwarding `Message`s, with its sockets.
struct Served {
    io: Server<Api>,
    connected: mpsc::UnboundedReceiver<Socket<Api>>,
    messages: mpsc::UnboundedReceiver<u32>,
    calls: Arc<Mutex<HashSet<i64>>>,
    doubled: Arc<AtomicUsize>,
}

async fn serve(builder: netsock::ServerBuilder<Api>, t: Transport, dir: &TempDir) -> Served {
    let io = builder.bind(t.addr(dir)).await.expect("bind");
    let (connected_tx, connected) = mpsc::unbounded_channel();
    let (messages_tx, messages) = mpsc::unbounded_channel();
    let calls = Arc::new(Mutex::new(HashSet::new()));
    let doubled = Arc::new(AtomicUsize::new(0));
    io.on_connection({
        let (calls, doubled) = (calls.clone(), doubled.clone());
        move |socket: Socket<Api>| {
            let messages_tx = messages_tx.clone();
            let (calls, doubled) = (calls.clone(), doubled.clone());
            let _ = connected_tx.send(socket.clone());
            async move {
                socket.on_message(move |_, n| {
                    let _ = messages_tx.send(n);
                    async {}
                });
                socket.on_sum(move |numbers| {
                    if !calls.lock().unwrap().insert(numbers[0]) {
                        doubled.fetch_add(1, Ordering::SeqCst);
                    }
                    async move { numbers.iter().sum::<i64>() }
                });
                Ok(())
            }
        }
    });
    io.spawn();
    Served {
        io,
        connected,
        messages,
        calls,
        doubled,
    }
}

/// A client of `addr` with recovery, and its reconnects.
async fn client(
    addr: &netsock::Addr,
    recovery: Option<Recovery>,
) -> (Socket<Api>, mpsc::UnboundedReceiver<Reconnected>) {
    let socket = within(
        Socket::<Api>::builder()
            .recovery(recovery)
            .reconnect(fast())
            .connect(addr),
    )
    .await
    .expect("connect");
    let (tx, rx) = mpsc::unbounded_channel();
    socket.on_reconnect(move |r| {
        let _ = tx.send(r);
        async {}
    });
    (socket, rx)
}

/// Checks that `rx` yields 1, 2, ..., `n`, each once, in order.
async fn in_order(rx: &mut mpsc::UnboundedReceiver<u32>, n: u32, who: &str) {
    for expected in 1..=n {
        let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{who}: event {expected} never came"));
        assert_eq!(got, Some(expected), "{who}: out of order or doubled");
    }
}

/// The proxy cuts every connection after 20 to 400 KB, wherever that
/// falls; meanwhile both sides emit `events()` events and the client makes
/// calls from 8 tasks. Every event arrives once and in order, every call is
/// answered right and runs once, and every reconnect resumes the session
/// (the server saw one connection).
async fn nothing_is_lost_or_doubled_across_cuts(t: Transport) {
    let dir = TempDir::new();
    let mut served = serve(Server::<Api>::builder(), t, &dir).await;
    let proxy = Proxy::start(t, &dir, served.io.local_addr().clone()).await;
    proxy.chaos(20_000, 400_000);
    let (socket, mut reconnects) = client(proxy.addr(), Some(Recovery::DEFAULT)).await;
    let (got_tx, mut got) = mpsc::unbounded_channel();
    socket.on_message(move |_, n| {
        let _ = got_tx.send(n);
        async {}
    });
    let server_side = within(served.connected.recv()).await.unwrap();
    let n = events();
    let server_emits = tokio::spawn(async move {
        for i in 1..=n {
            server_side.emit_message("s".into(), i).await.unwrap();
        }
    });
    let client_emits = tokio::spawn({
        let socket = socket.clone();
        async move {
            for i in 1..=n {
                socket.emit_message("c".into(), i).await.unwrap();
            }
        }
    });
    let next_call = Arc::new(AtomicU32::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (socket, next_call, mut stopped) =
                (socket.clone(), next_call.clone(), stopped.clone());
            tokio::spawn(async move {
                let mut answered = 0;
                loop {
                    let id = i64::from(next_call.fetch_add(1, Ordering::SeqCst));
                    let patient = socket.timeout(Duration::from_secs(30));
                    let call = patient.sum(vec![id, 1]);
                    tokio::select! {
                        answer = call => {
                            assert_eq!(answer, Ok(id + 1), "call {id}");
                            answered += 1;
                        }
                        _ = stopped.wait_for(|s| *s) => return answered,
                    }
                }
            })
        })
        .collect();
    in_order(&mut served.messages, n, "server").await;
    in_order(&mut got, n, "client").await;
    within(server_emits).await.unwrap();
    within(client_emits).await.unwrap();
    proxy.calm();
    let _ = stop.send(true);
    let mut answered = 0;
    for caller in callers {
        answered += within(caller).await.unwrap();
    }
    assert!(answered > 0);
    assert_eq!(served.doubled.load(Ordering::SeqCst), 0, "a call ran twice");
    let cuts = proxy.chaos_cuts();
    assert!(cuts >= 3, "only {cuts} cuts");
    let mut resumed = 0;
    while let Ok(r) = reconnects.try_recv() {
        assert!(r.recovered, "{r:?}");
        resumed += 1;
    }
    assert!(resumed >= cuts - 1, "{resumed} resumes for {cuts} cuts");
    let metrics = served.io.metrics();
    assert_eq!(metrics.connections_total, 1, "the session was replaced");
    assert!(metrics.sessions_resumed >= resumed as u64);
    eprintln!(
        "{n} events each way, {answered} calls ({} distinct), {cuts} cuts, {resumed} resumes",
        served.calls.lock().unwrap().len()
    );
    socket.close().await;
    served.io.close().await;
}

/// A server that restarted (here: another server behind the proxy) knows
/// no session: the client gets a new one, says the old was lost (with what
/// it had not had acknowledged), and carries on.
async fn a_server_that_lost_the_session_says_so_and_the_client_goes_on(t: Transport) {
    let dir = TempDir::new();
    let first = serve(Server::<Api>::builder(), t, &dir).await;
    let proxy = Proxy::start(t, &dir, first.io.local_addr().clone()).await;
    let (socket, mut reconnects) = client(proxy.addr(), Some(Recovery::DEFAULT)).await;
    assert_eq!(within(socket.sum(vec![1, 2])).await, Ok(3));
    let dir2 = TempDir::new();
    let mut second = serve(Server::<Api>::builder(), t, &dir2).await;
    proxy.retarget(second.io.local_addr().clone());
    assert_eq!(proxy.cut(), 1);
    let r = within(reconnects.recv()).await.unwrap();
    assert!(!r.recovered);
    let lost = r.lost.expect("a loss");
    assert_eq!(lost.why, LostReason::Unknown);
    assert_eq!(lost.received, None);
    within(second.connected.recv()).await.unwrap();
    assert_eq!(within(socket.sum(vec![2, 2])).await, Ok(4));
    socket.emit_message("after".into(), 1).await.unwrap();
    assert_eq!(within(second.messages.recv()).await, Some(1));
    assert_eq!(second.io.metrics().sessions_lost, 1);
    socket.close().await;
    first.io.close().await;
    second.io.close().await;
}

/// A client that comes back after the window: the server remembers how
/// much of the ended session it received and sent, so the client reports
/// exactly what was lost each way.
async fn a_session_past_its_window_reports_exactly_what_was_lost(t: Transport) {
    let dir = TempDir::new();
    let window = Duration::from_millis(50);
    let builder = Server::<Api>::builder().recovery(Recovery::DEFAULT.with_window(window));
    let mut served = serve(builder, t, &dir).await;
    let proxy = Proxy::start(t, &dir, served.io.local_addr().clone()).await;
    let socket = within(
        Socket::<Api>::builder()
            .recovery(Recovery::DEFAULT)
            .reconnect(
                Reconnect::new()
                    .initial_delay(Duration::from_millis(400))
                    .jitter(0.0),
            )
            .connect(proxy.addr()),
    )
    .await
    .unwrap();
    let (tx, mut reconnects) = mpsc::unbounded_channel();
    socket.on_reconnect(move |r| {
        let _ = tx.send(r);
        async {}
    });
    let server_side = within(served.connected.recv()).await.unwrap();
    // Both sides have everything so far: a call and its answer.
    assert_eq!(within(socket.sum(vec![5, 5])).await, Ok(10));
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    server_side.on_disconnect(move |reason| {
        let _ = ended_tx.send(reason);
        async {}
    });
    let (cut_tx, mut cut) = mpsc::unbounded_channel();
    socket.on_disconnect(move |reason| {
        let _ = cut_tx.send(reason);
        async {}
    });
    assert_eq!(proxy.cut(), 1);
    assert!(within(cut.recv()).await.unwrap().is_cut());
    // While the client is away: 3 events each way.
    for n in 1..=3 {
        server_side.emit_message("s".into(), n).await.unwrap();
        socket.emit_message("c".into(), n).await.unwrap();
    }
    let reason = within(ended.recv()).await.unwrap();
    assert!(reason.is_cut(), "{reason:?}");
    let r = within(reconnects.recv()).await.unwrap();
    assert!(!r.recovered);
    let lost = r.lost.expect("a loss");
    assert!(matches!(lost.why, LostReason::Expired { .. }), "{lost:?}");
    // What the server sent (the 3 events) is lost; what the client
    // emitted never left it, and is not.
    assert_eq!((lost.sent, lost.received), (0, Some(3)), "{lost:?}");
    // The three events the client emitted while away never left it: they
    // go out on the new session.
    for n in 1..=3 {
        assert_eq!(within(served.messages.recv()).await, Some(n));
    }
    socket.close().await;
    served.io.close().await;
}

/// Tokens shown by anyone but their owner are refused: another client's
/// (other credentials), one already used, and a made-up one. Each gets a
/// new session, and the server counts the losses.
async fn tokens_not_the_clients_own_are_refused(t: Transport) {
    let dir = TempDir::new();
    let served = serve(Server::<Api>::builder(), t, &dir).await;
    let addr = served.io.local_addr().clone();
    // Handshakes with a session ask, as a client would; gives the grant.
    async fn ask(
        addr: &netsock::Addr,
        ask: SessionAsk,
        auth: Option<Vec<u8>>,
    ) -> (Raw, SessionGrant) {
        let mut raw = Raw::connect(addr).await;
        let hello = netsock::frame::Hello {
            auth,
            ..hello::<Api>()
        };
        let payload = postcard::to_stdvec(&ask).unwrap();
        raw.send(&Header::Hello(hello), Some(&payload)).await;
        let (header, payload) = within(raw.recv()).await.unwrap();
        assert!(matches!(header, Header::Welcome { .. }), "{header:?}");
        (raw, postcard::from_bytes(&payload).unwrap())
    }
    let mine = Some(b"alice".to_vec());
    let (raw, grant) = ask(&addr, SessionAsk::New, mine.clone()).await;
    assert_eq!(grant.resumption, Resumption::New);
    drop(raw);
    let resume = |token| SessionAsk::Resume { token, received: 0 };
    // Another client's credentials: refused, and the owner keeps it.
    let (_thief, refused) = ask(&addr, resume(grant.token), Some(b"mallory".to_vec())).await;
    assert_eq!(refused.resumption, Resumption::Lost(LostReason::NotYours));
    let (_raw, resumed) = ask(&addr, resume(grant.token), mine.clone()).await;
    assert_eq!(resumed.resumption, Resumption::Resumed { received: 0 });
    assert_ne!(resumed.token, grant.token, "a new token with every Welcome");
    // The old token again: used up.
    let (_raw, replayed) = ask(&addr, resume(grant.token), mine.clone()).await;
    assert_eq!(replayed.resumption, Resumption::Lost(LostReason::Unknown));
    // A forged one.
    let (_raw, forged) = ask(&addr, resume(SessionToken([42; 16])), mine).await;
    assert_eq!(forged.resumption, Resumption::Lost(LostReason::Unknown));
    let metrics = served.io.metrics();
    assert_eq!((metrics.sessions_resumed, metrics.sessions_lost), (1, 3));
    served.io.close().await;
}

/// Without `recovery`, a client asks for nothing: a cut fails its call in
/// flight as before, and it comes back with a new connection.
async fn a_client_without_recovery_gets_no_session(t: Transport) {
    let dir = TempDir::new();
    let mut served = serve(Server::<Api>::builder(), t, &dir).await;
    let proxy = Proxy::start(t, &dir, served.io.local_addr().clone()).await;
    let (socket, mut reconnects) = client(proxy.addr(), None).await;
    let first = within(served.connected.recv()).await.unwrap();
    first.on_hang(std::future::pending::<()>);
    let call = tokio::spawn({
        let socket = socket.clone();
        async move { socket.timeout(Duration::from_secs(30)).hang().await }
    });
    within(async {
        while first.metrics().traffic.frames_in == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    proxy.cut();
    assert!(matches!(
        within(call).await.unwrap(),
        Err(CallError::Disconnected(_))
    ));
    let r = within(reconnects.recv()).await.unwrap();
    assert_eq!((r.recovered, r.lost), (false, None));
    within(served.connected.recv()).await.unwrap();
    assert_eq!(served.io.metrics().connections_total, 2);
    socket.close().await;
    served.io.close().await;
}

/// A stream open across cuts carries on: with recovery its frames are
/// numbered like the rest, so its items arrive once each, in order, and
/// its credit is not lost with a cut.
async fn a_stream_carries_on_across_cuts(t: Transport) {
    use tests::feed::{serve_feed, Feed, FeedEmit};
    let (io, _probe, dir) = serve_feed(t).await;
    let proxy = Proxy::start(t, &dir, io.local_addr().clone()).await;
    proxy.chaos(5_000, 60_000);
    let socket = within(
        Socket::<Feed>::builder()
            .recovery(Recovery::DEFAULT)
            .reconnect(fast())
            .connect(proxy.addr()),
    )
    .await
    .unwrap();
    let n = 100_000;
    let mut items = within(socket.timeout(Duration::from_secs(30)).count(n))
        .await
        .unwrap();
    for expected in 0..n {
        let item = tokio::time::timeout(Duration::from_secs(30), items.next())
            .await
            .unwrap_or_else(|_| panic!("item {expected} never came"));
        assert_eq!(item, Some(Ok(expected)));
    }
    assert_eq!(within(items.next()).await, None, "the stream ends");
    let cuts = proxy.chaos_cuts();
    assert!(cuts >= 3, "only {cuts} cuts");
    socket.close().await;
    io.close().await;
}

/// A server process killed mid-session (SIGKILL: nothing said, nothing
/// kept) and another started in its place: the client's resume is refused
/// as `Unknown`, it reports the loss (what the server sent: unknown), and
/// carries on with a new session on the new process.
async fn a_killed_server_process_loses_the_session_cleanly(t: Transport) {
    use tests::feed::{start_producer, Feed, FeedEmit};
    let dir = TempDir::new();
    let bin = env!("CARGO_BIN_EXE_stream_producer");
    let transport = if t == Transport::Unix { "unix" } else { "tcp" };
    let (mut first, first_addr) = start_producer(bin, transport, &dir.path().join("1.sock")).await;
    let proxy = Proxy::start(t, &dir, first_addr).await;
    let socket = within(
        Socket::<Feed>::builder()
            .recovery(Recovery::DEFAULT)
            .reconnect(fast())
            .connect(proxy.addr()),
    )
    .await
    .unwrap();
    let (tx, mut reconnects) = mpsc::unbounded_channel();
    socket.on_reconnect(move |r| {
        let _ = tx.send(r);
        async {}
    });
    assert_eq!(within(socket.sum(vec![1, 2])).await, Ok(3));
    let (second, second_addr) = start_producer(bin, transport, &dir.path().join("2.sock")).await;
    proxy.retarget(second_addr);
    first.kill().await.unwrap();
    let r = within(reconnects.recv()).await.unwrap();
    assert!(!r.recovered, "{r:?}");
    let lost = r.lost.expect("a loss");
    assert_eq!((lost.why, lost.received), (LostReason::Unknown, None));
    assert_eq!(within(socket.sum(vec![2, 2])).await, Ok(4));
    socket.close().await;
    drop(second);
}
