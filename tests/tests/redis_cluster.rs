//! Several servers as one cluster through a real Redis (issue 16): each
//! test starts its own `redis-server` on a Unix socket in a temporary
//! directory, nodes in this process and in child processes
//! (`cluster_node`), and clients on different nodes. Without
//! `redis-server` on `PATH` they are skipped, with one line saying so
//! (`NETSOCK_REQUIRE_REDIS=1` makes that a failure).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use netsock::{Addr, CallError, Server, Socket, SocketId};
use netsock_redis::RedisDriver;
use tests::cluster::{
    client, node, node_with, redis_available, Api, ApiEmit, ApiHandle, Counted, RedisServer,
    ENCODED,
};
use tests::{eventually, within};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn tcp() -> Addr {
    Addr::tcp("127.0.0.1", 0)
}

/// `n` nodes of one cluster, each hearing from all the others.
async fn nodes(redis: &RedisServer, n: usize) -> Vec<Server<Api>> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(node(&redis.url(), tcp()).await.unwrap());
    }
    for io in &nodes {
        within(io.cluster().wait_for_nodes(n - 1)).await;
    }
    nodes
}

/// A node in a child process; killed when dropped.
struct ChildNode {
    child: Child,
    addr: Addr,
}

impl ChildNode {
    async fn start(redis: &RedisServer) -> ChildNode {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cluster_node"))
            .arg(redis.url())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = within(lines.next_line()).await.unwrap().unwrap();
        let addr = line.split(' ').nth(1).unwrap().parse::<Addr>().unwrap();
        ChildNode { child, addr }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_node() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let io = nodes(&redis, 3).await;
    let (a, mut heard_a) = client(io[0].local_addr(), &["lobby"], 0).await;
    let (b, mut heard_b) = client(io[1].local_addr(), &["lobby"], 0).await;
    let (c, mut heard_c) = client(io[2].local_addr(), &["muted"], 0).await;
    assert_ne!(a.id().node(), b.id().node(), "ids carry their node");
    assert_ne!(b.id().node(), c.id().node());

    // io.emit_*: every socket of every node.
    within(io[0].emit_line("all".into())).await.unwrap();
    for heard in [&mut heard_a, &mut heard_b, &mut heard_c] {
        assert_eq!(within(heard.lines.recv()).await.unwrap(), "all");
    }
    // io.to(room): members on other nodes; c is not in it.
    within(io[2].to("lobby").emit_line("lobby".into()))
        .await
        .unwrap();
    assert_eq!(within(heard_a.lines.recv()).await.unwrap(), "lobby");
    assert_eq!(within(heard_b.lines.recv()).await.unwrap(), "lobby");
    // .except(room) and .except(id of a socket on another node).
    within(
        io[1]
            .except("muted")
            .except(a.id())
            .emit_line("except".into()),
    )
    .await
    .unwrap();
    assert_eq!(within(heard_b.lines.recv()).await.unwrap(), "except");
    // socket.to(room) from a server-side socket: a client's Line, relayed
    // by its node to the rest of the lobby, reaches b on another node, not a.
    a.emit_line("from a".into()).await.unwrap();
    assert_eq!(within(heard_b.lines.recv()).await.unwrap(), "from a");
    // socket.broadcast(): everyone but the socket, on every node.
    let a_on_server = io[0].socket(a.id()).unwrap();
    within(a_on_server.broadcast().emit_line("not a".into()))
        .await
        .unwrap();
    assert_eq!(within(heard_b.lines.recv()).await.unwrap(), "not a");
    assert_eq!(within(heard_c.lines.recv()).await.unwrap(), "not a");
    // Emit by id to a socket on another node.
    within(io[0].to_socket(c.id()).emit_line("just c".into()))
        .await
        .unwrap();
    assert_eq!(within(heard_c.lines.recv()).await.unwrap(), "just c");
    // Nothing else arrived: in order per emitter, so a marker sent last to
    // everyone comes next everywhere.
    within(io[0].emit_line("end".into())).await.unwrap();
    assert_eq!(within(heard_a.lines.recv()).await.unwrap(), "end");
    assert_eq!(within(heard_b.lines.recv()).await.unwrap(), "end");
    assert_eq!(within(heard_c.lines.recv()).await.unwrap(), "end");
    for n in &io {
        n.close().await;
    }
}

/// The only test that encodes `Counted`, so the global count is ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_is_encoded_once_on_the_emitting_node() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let io = nodes(&redis, 3).await;
    let mut heard = Vec::new();
    for n in &io {
        for _ in 0..3 {
            heard.push(client(n.local_addr(), &["all"], 0).await);
        }
    }
    let before = ENCODED.load(Ordering::SeqCst);
    within(io[0].to("all").emit_tally(Counted(5)))
        .await
        .unwrap();
    for (_, h) in &mut heard {
        assert_eq!(within(h.tallies.recv()).await.unwrap(), Counted(5));
    }
    assert_eq!(
        ENCODED.load(Ordering::SeqCst) - before,
        1,
        "one encoding for 9 sockets on 3 nodes"
    );
    for n in &io[1..] {
        let m = n.cluster().metrics().unwrap();
        assert_eq!(
            m.frames_relayed, 1,
            "the frame's bytes, relayed as they came"
        );
    }
    for n in &io {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_a_room_gather_every_node() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let io = nodes(&redis, 3).await;
    let (a, _ha) = client(io[0].local_addr(), &["workers"], 10).await;
    let (b, _hb) = client(io[1].local_addr(), &["workers"], 20).await;
    let (c, _hc) = client(io[2].local_addr(), &["workers"], 30).await;
    let (_idle, _hi) = client(io[2].local_addr(), &[], 0).await;
    let replies = within(
        io[1]
            .to("workers")
            .timeout(Duration::from_secs(2))
            .request::<i64>(Api::Sum(vec![1, 2])),
    )
    .await;
    let mut expected = vec![(a.id(), Ok(13)), (b.id(), Ok(23)), (c.id(), Ok(33))];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(replies, expected);
    for n in &io {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_and_remote_operations_span_nodes() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let io = nodes(&redis, 2).await;
    let (a, _ha) = client(io[0].local_addr(), &["red"], 0).await;
    let (b, mut hb) = client(io[1].local_addr(), &["blue"], 0).await;

    // Cluster-wide answers, and the local-only ones.
    let all: Vec<SocketId> = within(io[0].fetch_sockets())
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(all, sorted(vec![a.id(), b.id()]));
    assert_eq!(io[0].sockets().len(), 1, "sockets() is this node's");
    assert_eq!(within(io[0].cluster().count()).await.unwrap(), 2);
    assert_eq!(
        within(io[0].cluster().rooms()).await.unwrap(),
        ["blue", "red"]
    );
    assert_eq!(io[0].rooms(), ["red"]);
    let blue = within(io[0].cluster().in_room("blue")).await.unwrap();
    assert_eq!(blue.len(), 1);
    assert_eq!(
        (blue[0].id, blue[0].rooms.clone()),
        (b.id(), vec!["blue".to_string()])
    );
    assert!(io[0].in_room("blue").is_empty(), "in_room() is this node's");

    // Make a socket on another node join a room, then reach it there.
    io[0].to_socket(b.id()).join("green").unwrap();
    eventually(|| io[1].rooms().contains(&"green".to_string())).await;
    within(io[0].to("green").emit_line("green".into()))
        .await
        .unwrap();
    assert_eq!(within(hb.lines.recv()).await.unwrap(), "green");
    io[0].to("green").leave("green").unwrap();
    eventually(|| !io[1].rooms().contains(&"green".to_string())).await;

    // Server to server.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    io[1].cluster().on_message(move |from, message: String| {
        let _ = tx.send((from, message));
    });
    io[0].cluster().emit(&"reload".to_string()).unwrap();
    assert_eq!(
        within(rx.recv()).await.unwrap(),
        (io[0].cluster().node(), "reload".to_string())
    );

    // Disconnect a socket on another node.
    io[0].to("blue").close().unwrap();
    within(b.closed()).await;
    assert_eq!(within(io[0].cluster().count()).await.unwrap(), 1);
    for n in &io {
        n.close().await;
    }
}

fn sorted(mut ids: Vec<SocketId>) -> Vec<SocketId> {
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_in_separate_processes_and_a_killed_one() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let here = node(&redis.url(), tcp()).await.unwrap();
    let mut one = ChildNode::start(&redis).await;
    let two = ChildNode::start(&redis).await;
    within(here.cluster().wait_for_nodes(2)).await;
    let (x, mut hx) = client(&one.addr, &["lobby"], 1).await;
    let (y, mut hy) = client(&two.addr, &["lobby"], 2).await;
    let (z, mut hz) = client(here.local_addr(), &["lobby"], 3).await;

    // A client of one child process talks to the room; the other child's
    // client and this process's hear it.
    x.emit_line("hi from one".into()).await.unwrap();
    assert_eq!(within(hy.lines.recv()).await.unwrap(), "hi from one");
    assert_eq!(within(hz.lines.recv()).await.unwrap(), "hi from one");
    within(here.to("lobby").emit_line("from here".into()))
        .await
        .unwrap();
    assert_eq!(within(hx.lines.recv()).await.unwrap(), "from here");
    assert_eq!(within(hy.lines.recv()).await.unwrap(), "from here");
    let replies = within(
        here.to("lobby")
            .timeout(Duration::from_secs(2))
            .request::<i64>(Api::Sum(vec![1])),
    )
    .await;
    assert_eq!(replies.len(), 3);
    assert!(replies.iter().all(|(_, r)| r.is_ok()));

    // SIGKILL one child: a request to the room still finishes at its
    // timeout (plus the grace for the trip back), with the others' replies.
    one.child.kill().await.unwrap();
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let replies = within(
        here.to("lobby")
            .timeout(timeout)
            .request::<i64>(Api::Sum(vec![1])),
    )
    .await;
    let took = started.elapsed();
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    let ok: Vec<SocketId> = replies
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(ok, sorted(vec![y.id(), z.id()]));
    // It is forgotten once silent for the node timeout: requests and
    // queries no longer wait for it at all.
    let dead = x.id().node();
    eventually(|| !here.cluster().nodes().contains(&dead)).await;
    assert!(here.cluster().metrics().unwrap().nodes_timed_out >= 1);
    let started = Instant::now();
    let replies = within(
        here.to("lobby")
            .timeout(Duration::from_secs(5))
            .request::<i64>(Api::Sum(vec![1])),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for a dead node"
    );
    assert_eq!(replies.len(), 2);
    assert!(replies
        .iter()
        .all(|(_, r): &(SocketId, Result<i64, CallError>)| r.is_ok()));
    drop(two);
    here.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn riding_out_a_redis_restart() {
    if !redis_available() {
        return;
    }
    let mut redis = RedisServer::start().await;
    // No heartbeats during the test: while Redis is down, the one message
    // that fails to go out is the test's own.
    let mut io = Vec::new();
    for _ in 0..2 {
        let driver = RedisDriver::connect(&redis.url()).await.unwrap();
        let adapter = tests::cluster::adapter(driver)
            .heartbeat(Duration::from_secs(600))
            .node_timeout(Duration::from_secs(1200));
        io.push(node_with(adapter, tcp()).await.unwrap());
    }
    let (_a, mut ha) = client(io[0].local_addr(), &["lobby"], 0).await;
    let (_b, mut hb) = client(io[1].local_addr(), &["lobby"], 0).await;
    within(io[0].to("lobby").emit_line("before".into()))
        .await
        .unwrap();
    assert_eq!(within(ha.lines.recv()).await.unwrap(), "before");
    assert_eq!(within(hb.lines.recv()).await.unwrap(), "before");

    redis.kill();
    // Both nodes notice their subscription is gone.
    eventually(|| {
        io.iter()
            .all(|n| n.cluster().metrics().unwrap().lost_connections >= 1)
    })
    .await;
    // Local delivery goes on; what cannot reach the other node is counted.
    let before = io[0].cluster().metrics().unwrap();
    let _ = within(io[0].to("lobby").emit_line("during".into())).await;
    assert_eq!(within(ha.lines.recv()).await.unwrap(), "during");
    eventually(|| {
        let m = io[0].cluster().metrics().unwrap();
        m.publish_failed + m.dropped > before.publish_failed + before.dropped
    })
    .await;

    redis.restart().await;
    eventually(|| {
        io.iter()
            .all(|n| n.cluster().metrics().unwrap().reconnects >= 1)
    })
    .await;
    // Cluster delivery resumes.
    within(io[0].to("lobby").emit_line("after".into()))
        .await
        .unwrap();
    assert_eq!(within(ha.lines.recv()).await.unwrap(), "after");
    assert_eq!(
        within(hb.lines.recv()).await.unwrap(),
        "after",
        "b never got \"during\": it was counted as lost on a"
    );
    // And b counts, from the gap in a's numbers, what a queued and never
    // got through: nothing is lost without a count on either side.
    let a = io[0].cluster().metrics().unwrap();
    let failed = a.publish_failed - before.publish_failed;
    assert_eq!(io[1].cluster().metrics().unwrap().missed, failed);
    for n in &io {
        n.close().await;
    }
}

/// Session recovery in a cluster: a client that resumes on the node that
/// holds its session keeps its id and its rooms, and what the other nodes
/// broadcast to its room while it was cut off reaches it, in order.
/// (Resuming on another node is not possible: the session lives in the
/// node that granted it; the client gets a new session there.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_keeps_its_rooms() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let io = nodes(&redis, 2).await;
    let dir = tests::TempDir::new();
    let proxy =
        tests::proxy::Proxy::start(tests::Transport::Tcp, &dir, io[0].local_addr().clone()).await;
    let a = Socket::<Api>::builder()
        .recovery(netsock::Recovery::DEFAULT)
        .reconnect(netsock::Reconnect::new().initial_delay(Duration::from_millis(5)))
        .connect(proxy.addr().clone())
        .await
        .unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    a.on_line(move |line| {
        let _ = lines_tx.send(line);
        async {}
    });
    let (back_tx, mut back) = tokio::sync::mpsc::unbounded_channel();
    a.on_reconnect(move |r| {
        let _ = back_tx.send(r);
        async {}
    });
    within(a.enter("lobby".into())).await.unwrap();
    let id = a.id();
    within(io[1].to("lobby").emit_line("before".into()))
        .await
        .unwrap();
    assert_eq!(within(lines.recv()).await.unwrap(), "before");
    assert_eq!(proxy.cut(), 1);
    within(io[1].to("lobby").emit_line("during".into()))
        .await
        .unwrap();
    let r = within(back.recv()).await.unwrap();
    assert!(r.recovered, "{r:?}");
    assert_eq!(a.id(), id, "the same socket");
    within(io[1].to("lobby").emit_line("after".into()))
        .await
        .unwrap();
    assert_eq!(within(lines.recv()).await.unwrap(), "during");
    assert_eq!(within(lines.recv()).await.unwrap(), "after");
    a.close().await;
    for n in &io {
        n.close().await;
    }
}
