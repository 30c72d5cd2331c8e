//! Shared by `tests/tests/redis_cluster.rs` and the `cluster_node` binary:
//! the events of the cluster tests, a node, a client, and a `redis-server`
//! of a test's own on a Unix socket in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use netsock::adapter::Adapter;
use netsock::{Events, Server, Socket};
use netsock_redis::RedisDriver;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{TempDir, WAIT};

/// How many times a [`Counted`] was serialized, in this process.
pub static ENCODED: AtomicUsize = AtomicUsize::new(0);

/// A value that counts its encodings.
#[derive(netsock::Describe, Deserialize, Debug, Clone, PartialEq)]
pub struct Counted(pub u32);

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ENCODED.fetch_add(1, Ordering::SeqCst);
        self.0.serialize(s)
    }
}

/// The events of the cluster tests, both ways.
#[derive(Events, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Api {
    /// A line of chat; a server relays a client's to its room `lobby`.
    Line(String),
    /// Counts its encodings.
    Tally(Counted),
    /// Client to server: put me in this room.
    #[request(response = ())]
    Enter(String),
    /// Server to client: add these, plus your bonus.
    #[request(response = i64)]
    Sum(Vec<i64>),
}

/// Test timings: a heartbeat every 100 ms, silent nodes forgotten after
/// 1.5 s (generous, so that a loaded machine forgets no live node).
pub fn adapter(driver: RedisDriver) -> Adapter {
    Adapter::new(driver)
        .name("test")
        .heartbeat(Duration::from_millis(100))
        .node_timeout(Duration::from_millis(1500))
        .fetch_timeout(Duration::from_secs(2))
}

/// A node on `addr`: clients join rooms with `Enter`; a client's `Line`
/// goes to the rest of `lobby`, on every node.
pub async fn node(redis_url: &str, addr: impl netsock::IntoAddr) -> netsock::Result<Server<Api>> {
    let driver = RedisDriver::connect(redis_url).await?;
    node_with(adapter(driver), addr).await
}

/// The same, with this adapter.
pub async fn node_with(
    adapter: Adapter,
    addr: impl netsock::IntoAddr,
) -> netsock::Result<Server<Api>> {
    let io = Server::<Api>::builder().adapter(adapter).bind(addr).await?;
    io.on_connection(|socket: Socket<Api>| async move {
        let me = socket.clone();
        socket.on_enter(move |room| {
            me.join(room);
            async {}
        });
        let me = socket.clone();
        socket.on_line(move |line| {
            let me = me.clone();
            async move {
                let _ = me.to("lobby").emit_line(line).await;
            }
        });
        Ok(())
    });
    io.spawn();
    Ok(io)
}

/// What a test client heard.
pub struct Heard {
    pub lines: mpsc::UnboundedReceiver<String>,
    pub tallies: mpsc::UnboundedReceiver<Counted>,
}

/// A client of `addr`, in `rooms`, answering `Sum` with the sum plus
/// `bonus`.
pub async fn client(addr: &netsock::Addr, rooms: &[&str], bonus: i64) -> (Socket<Api>, Heard) {
    let socket = Socket::<Api>::connect(addr.clone()).await.expect("connect");
    let (lines_tx, lines) = mpsc::unbounded_channel();
    let (tallies_tx, tallies) = mpsc::unbounded_channel();
    socket.on_line(move |line| {
        let _ = lines_tx.send(line);
        async {}
    });
    socket.on_tally(move |c| {
        let _ = tallies_tx.send(c);
        async {}
    });
    socket.on_sum(move |numbers| async move { bonus + numbers.iter().sum::<i64>() });
    socket.start();
    for room in rooms {
        socket.enter((*room).to_owned()).await.expect("enter");
    }
    (socket, Heard { lines, tallies })
}

/// Whether the Redis tests can run here: `redis-server` on `PATH`. Without
/// it, says so once on the terminal (past the test harness's capture) and
/// returns false; unless `NETSOCK_REQUIRE_REDIS=1`, which makes it a
/// failure.
pub fn redis_available() -> bool {
    if RedisServer::binary().is_some() {
        return true;
    }
    if std::env::var("NETSOCK_REQUIRE_REDIS").as_deref() == Ok("1") {
        panic!("NETSOCK_REQUIRE_REDIS=1, but there is no redis-server on PATH");
    }
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "redis_cluster: SKIPPED (no redis-server on PATH): install redis-server to run them; \
             NETSOCK_REQUIRE_REDIS=1 makes its absence a failure"
        );
    });
    false
}

/// A `redis-server` of a test's own, on a Unix socket in a temporary
/// directory, with no persistence; killed when dropped.
pub struct RedisServer {
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// `redis-server` on `PATH`.
    pub fn binary() -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
    }

    /// Starts one and waits until it answers.
    pub async fn start() -> RedisServer {
        let mut redis = RedisServer {
            dir: TempDir::new(),
            child: None,
        };
        redis.spawn().await;
        redis
    }

    /// Its socket file.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL to give [`RedisDriver::connect`].
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Kills it (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Starts it again on the same socket path.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let binary = RedisServer::binary().expect("redis-server on PATH");
        let child = Command::new(binary)
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let socket = self.socket();
        let ready = async {
            while !answers_ping(&socket).await {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(WAIT, ready).await.is_err() {
            panic!(
                "redis-server did not answer on {} within {WAIT:?}",
                socket.display()
            );
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a Redis answers `PING` on this socket.
async fn answers_ping(socket: &Path) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::UnixStream::connect(socket).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
}
