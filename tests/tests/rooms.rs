//! Rooms and broadcast: join/leave/to/except, a socket's broadcast, many
//! recipients, requests to many, slow recipients, and no leaked rooms.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netsock::{CallError, Events, Server, Socket, SocketId};
use serde::{Deserialize, Serialize};
use tests::{on_both_transports, within, Raw, TempDir, Transport};
use tokio::sync::mpsc;

static ENCODED: AtomicUsize = AtomicUsize::new(0);

/// A value that counts how often it is serialized.
#[derive(netsock::Describe, Deserialize, Debug, Clone, PartialEq)]
struct Counted(u32);

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ENCODED.fetch_add(1, Ordering::SeqCst);
        self.0.serialize(s)
    }
}

#[derive(Events, Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Room {
    /// A line from sender `from`, number `seq`.
    Line { from: u32, seq: u32 },
    /// Counts its encodings.
    Tally(Counted),
    /// Big, for filling queues.
    Blob(Vec<u8>),
    #[request(response = i64)]
    Sum(Vec<i64>),
    #[request(response = ())]
    Hang,
}

/// A server whose sockets relay each `Line` to the rest of the "lobby", and
/// report themselves on `connected`.
async fn server(
    t: Transport,
    builder: netsock::ServerBuilder<Room>,
) -> (Server<Room>, mpsc::UnboundedReceiver<Socket<Room>>, TempDir) {
    let dir = TempDir::new();
    let io = builder.bind(t.addr(&dir)).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Room>| {
        let tx = tx.clone();
        async move {
            let relay = socket.clone();
            socket.on_line(move |from, seq| {
                let relay = relay.clone();
                async move {
                    relay.to("lobby").emit_line(from, seq).await.unwrap();
                }
            });
            let _ = tx.send(socket);
            Ok(())
        }
    });
    io.spawn();
    (io, rx, dir)
}

/// A client that forwards every `Line` it receives into a channel.
async fn listener(io: &Server<Room>) -> (Socket<Room>, mpsc::UnboundedReceiver<(u32, u32)>) {
    let socket = within(Socket::<Room>::connect(io.local_addr()))
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    socket.on_line(move |from, seq| {
        let _ = tx.send((from, seq));
        async {}
    });
    socket.start();
    (socket, rx)
}

/// What `rx` got before the marker line `(u32::MAX, marker)`.
async fn until_marker(rx: &mut mpsc::UnboundedReceiver<(u32, u32)>, marker: u32) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match within(rx.recv()).await.unwrap() {
            (u32::MAX, seq) if seq == marker => return got,
            (_, seq) => got.push(seq),
        }
    }
}

on_both_transports!(
    join_leave_to_except_and_broadcast,
    every_member_gets_every_message_once_in_order,
    requests_to_a_room_gather_every_reply,
    a_client_that_never_reads_does_not_hold_up_a_broadcast,
);

async fn join_leave_to_except_and_broadcast(t: Transport) {
    let (io, mut connected, _dir) = server(t, Server::builder()).await;
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..4 {
        clients.push(listener(&io).await);
        servers.push(within(connected.recv()).await.unwrap());
    }
    let [a, b, c, _d] = [&servers[0], &servers[1], &servers[2], &servers[3]];
    a.join("red");
    b.join("red");
    c.join("blue");
    assert_eq!(a.rooms(), vec!["red".to_string()]);
    assert_eq!(io.rooms(), vec!["blue".to_string(), "red".to_string()]);
    let ids = |v: Vec<Socket<Room>>| v.iter().map(Socket::id).collect::<Vec<SocketId>>();
    assert_eq!(ids(io.in_room("red")), vec![a.id(), b.id()]);

    // Each step sends seq = step number; a marker to all closes the round.
    let steps: Vec<(u32, netsock::Broadcast<Room>)> = vec![
        (1, io.to("red")),
        (2, io.to("red").except(a.id())),
        (3, io.except("red")),
        (4, a.broadcast()),
        (5, a.to("red")),
        (6, io.to("red").to("blue")),
        (7, io.to("red").to("blue").except("blue")),
    ];
    for (seq, target) in steps {
        within(target.emit_line(0, seq)).await.unwrap();
    }
    b.leave("red");
    within(io.to("red").emit_line(0, 8)).await.unwrap();
    within(io.emit_line(u32::MAX, 99)).await.unwrap();
    let mut got = Vec::new();
    for (_, rx) in &mut clients {
        got.push(until_marker(rx, 99).await);
    }
    assert_eq!(got[0], vec![1, 6, 7, 8]);
    assert_eq!(got[1], vec![1, 2, 4, 5, 6, 7]);
    assert_eq!(got[2], vec![3, 4, 6]);
    assert_eq!(got[3], vec![3, 4]);

    // Leaving and disconnecting empties the room table.
    a.leave("red");
    assert_eq!(io.rooms(), vec!["blue".to_string()]);
    for (client, _) in &clients {
        client.close().await;
    }
    for s in &servers {
        within(s.closed()).await;
    }
    assert!(io.rooms().is_empty(), "rooms left behind: {:?}", io.rooms());
    assert!(io.sockets().is_empty());
    io.close().await;
}

async fn every_member_gets_every_message_once_in_order(t: Transport) {
    const CLIENTS: usize = 200;
    const SENDERS: u32 = 3;
    const PER_SENDER: u32 = 20;
    let (io, mut connected, _dir) = server(t, Server::builder()).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let client = listener(&io).await;
        within(connected.recv()).await.unwrap().join("lobby");
        clients.push(client);
    }
    assert_eq!(io.in_room("lobby").len(), CLIENTS);
    // Three members send; the server relays each line to the rest of the room.
    for from in 0..SENDERS {
        let sender = clients[from as usize].0.clone();
        tokio::spawn(async move {
            for seq in 0..PER_SENDER {
                sender.emit_line(from, seq).await.unwrap();
            }
        });
    }
    for (i, (_, rx)) in clients.iter_mut().enumerate() {
        let mine = if (i as u32) < SENDERS { PER_SENDER } else { 0 };
        let expected = (SENDERS * PER_SENDER - mine) as usize;
        let mut next: BTreeMap<u32, u32> = BTreeMap::new();
        for _ in 0..expected {
            let (from, seq) = within(rx.recv()).await.unwrap();
            assert_ne!(from as usize, i, "a sender got its own line back");
            let want = next.entry(from).or_insert(0);
            assert_eq!(
                seq, *want,
                "client {i}: sender {from} out of order or duplicated"
            );
            *want += 1;
        }
    }
    // Nothing more: the next thing each client sees is the marker.
    within(io.emit_line(u32::MAX, 7)).await.unwrap();
    for (_, rx) in &mut clients {
        assert_eq!(within(rx.recv()).await.unwrap(), (u32::MAX, 7));
    }
    io.close().await;
    assert!(io.rooms().is_empty());
}

async fn requests_to_a_room_gather_every_reply(t: Transport) {
    let (io, mut connected, _dir) = server(t, Server::builder()).await;
    let mut expected = BTreeMap::new();
    let mut keep = Vec::new();
    for k in 1..=3i64 {
        let socket = within(Socket::<Room>::connect(io.local_addr()))
            .await
            .unwrap();
        socket.on_sum(move |numbers| async move { numbers.iter().sum::<i64>() * k });
        socket.start();
        let server_side = within(connected.recv()).await.unwrap();
        server_side.join("workers");
        expected.insert(server_side.id(), Ok(6 * k));
        keep.push(socket);
    }
    // One member never answers, one has no handler.
    let hangs = within(Socket::<Room>::connect(io.local_addr()))
        .await
        .unwrap();
    hangs.on_sum(|_| std::future::pending::<i64>());
    hangs.start();
    let s = within(connected.recv()).await.unwrap();
    s.join("workers");
    expected.insert(
        s.id(),
        Err(CallError::Timeout {
            after: Duration::from_secs(2),
        }),
    );
    let silent = within(Socket::<Room>::connect(io.local_addr()))
        .await
        .unwrap();
    silent.start();
    let s = within(connected.recv()).await.unwrap();
    s.join("workers");
    expected.insert(
        s.id(),
        Err(CallError::NoHandler {
            event: "Sum".into(),
        }),
    );

    let replies = within(
        io.to("workers")
            .timeout(Duration::from_secs(2))
            .request::<i64>(Room::Sum(vec![1, 2, 3])),
    )
    .await;
    let replies: BTreeMap<_, _> = replies.into_iter().collect();
    assert_eq!(replies, expected);
    io.close().await;
}

async fn a_client_that_never_reads_does_not_hold_up_a_broadcast(t: Transport) {
    let (io, mut connected, _dir) = server(t, Server::builder().queue_capacity(4)).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Room>()).await;
    let stuck = within(connected.recv()).await.unwrap();
    stuck.join("lobby");
    let reader = within(Socket::<Room>::connect(io.local_addr()))
        .await
        .unwrap();
    let (tx, mut blobs) = mpsc::unbounded_channel();
    reader.on_blob(move |b| {
        let _ = tx.send(b.len());
        async {}
    });
    reader.start();
    within(connected.recv()).await.unwrap().join("lobby");
    // 40 MiB through the room: far more than the stuck client's queue and
    // socket buffers hold.
    for _ in 0..40 {
        within(io.to("lobby").emit_blob(vec![1; 1 << 20]))
            .await
            .unwrap();
        assert_eq!(within(blobs.recv()).await.unwrap(), 1 << 20);
    }
    assert!(
        stuck.dropped_events() > 0,
        "the stuck client's queue overflowed and was counted"
    );
    drop(raw);
    io.close().await;
}

/// The only test that encodes `Counted`, so the global count is ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_is_encoded_once() {
    let (io, mut connected, _dir) = server(Transport::Tcp, Server::builder()).await;
    let mut inboxes = Vec::new();
    for _ in 0..10 {
        let socket = within(Socket::<Room>::connect(io.local_addr()))
            .await
            .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        socket.on_tally(move |c| {
            let _ = tx.send(c);
            async {}
        });
        socket.start();
        within(connected.recv()).await.unwrap().join("all");
        inboxes.push((socket, rx));
    }
    let before = ENCODED.load(Ordering::SeqCst);
    within(io.to("all").emit_tally(Counted(5))).await.unwrap();
    within(io.emit_tally(Counted(6))).await.unwrap();
    assert_eq!(
        ENCODED.load(Ordering::SeqCst) - before,
        2,
        "one encoding per broadcast"
    );
    for (_, rx) in &mut inboxes {
        assert_eq!(within(rx.recv()).await.unwrap(), Counted(5));
        assert_eq!(within(rx.recv()).await.unwrap(), Counted(6));
    }
    io.close().await;
}

/// `on_any` sees every incoming event and request; the handlers still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_any_observes_without_stealing() {
    let (io, mut connected, _dir) = server(Transport::Unix, Server::builder()).await;
    let (client, mut lines) = listener(&io).await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    client.on_any(move |event: &Room| {
        let _ = seen_tx.send(event.clone());
    });
    client.on_sum(|n| async move { n.iter().sum::<i64>() });
    let server_side = within(connected.recv()).await.unwrap();
    within(server_side.emit_line(1, 2)).await.unwrap();
    assert_eq!(within(server_side.sum(vec![3, 4])).await.unwrap(), 7);
    // Events and requests run on different tasks: either may be seen first.
    let mut observed = vec![
        within(seen.recv()).await.unwrap(),
        within(seen.recv()).await.unwrap(),
    ];
    observed.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        observed,
        vec![Room::Line { from: 1, seq: 2 }, Room::Sum(vec![3, 4])]
    );
    assert_eq!(within(lines.recv()).await.unwrap(), (1, 2));
    io.close().await;
}

on_both_transports!(a_stuck_member_cannot_hold_a_room_request_past_its_timeout);

async fn a_stuck_member_cannot_hold_a_room_request_past_its_timeout(t: Transport) {
    let (io, mut connected, _dir) = server(t, Server::builder().queue_capacity(4)).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Room>()).await;
    let stuck = within(connected.recv()).await.unwrap();
    stuck.join("workers");
    let worker = within(Socket::<Room>::connect(io.local_addr()))
        .await
        .unwrap();
    worker.on_sum(|n| async move { n.iter().sum::<i64>() });
    worker.start();
    within(connected.recv()).await.unwrap().join("workers");
    // Fill the stuck member's queue: broadcasts start being dropped for it.
    while stuck.dropped_events() == 0 {
        within(
            io.to("workers")
                .except(worker.id())
                .emit_blob(vec![0; 1 << 20]),
        )
        .await
        .unwrap();
    }
    let replies = within(
        io.to("workers")
            .timeout(Duration::from_secs(2))
            .request::<i64>(Room::Sum(vec![2, 3])),
    )
    .await;
    let replies: BTreeMap<_, _> = replies.into_iter().collect();
    assert_eq!(replies[&worker.id()], Ok(5));
    assert_eq!(
        replies[&stuck.id()],
        Err(CallError::Timeout {
            after: Duration::from_secs(2)
        })
    );
    drop(raw);
    io.close().await;
}
