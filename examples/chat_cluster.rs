//! Three chat servers acting as one, through Redis; clients on different
//! servers talk in one room.
//!
//! ```text
//! cargo run --example chat_cluster                     # starts its own redis-server
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example chat_cluster
//! ```
//!
//! Without `REDIS_URL`, the example starts `redis-server` (from `PATH`) on
//! a Unix socket in a temporary directory. It then starts itself three
//! times as `chat_cluster server REDIS_URL`: three server processes, each
//! on a port of its own, all nodes of the cluster `chat`. Alice, Bob and
//! Carol each connect to a different server, enter the room `lobby`, and
//! talk; each line reaches the others through their own servers. Then
//! everything stops.

use std::process::Stdio;
use std::time::Duration;

use netsock::adapter::Adapter;
use netsock::{Events, Server, Socket};
use netsock_redis::RedisDriver;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every wait of the demo is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

// ANCHOR: events
/// The chat, both ways.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Chat {
    /// Enter a room; the reply is how many are in it, on every server.
    #[request(response = u32)]
    Enter { room: String },
    /// Say something in a room.
    Say {
        room: String,
        from: String,
        text: String,
    },
    /// Something said in a room (server to clients).
    Said { from: String, text: String },
}
// ANCHOR_END: events

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("server"), Some(url)) => serve(url).await,
        _ => demo().await,
    }
}

// ANCHOR: server
/// One chat server: a node of the cluster `chat`, on a port of its own.
async fn server(redis_url: &str) -> netsock::Result<Server<Chat>> {
    let redis = RedisDriver::connect(redis_url).await?;
    let io = Server::<Chat>::builder()
        .adapter(Adapter::new(redis).name("chat"))
        .bind(0)
        .await?;
    let server = io.clone();
    io.on_connection(move |socket: Socket<Chat>| {
        let cluster = server.cluster();
        async move {
            let me = socket.clone();
            socket.on_enter(move |room| {
                me.join(&room);
                let cluster = cluster.clone();
                // Members on every server, not only this one.
                async move { cluster.in_room(&room).await.map_or(0, |m| m.len() as u32) }
            });
            let me = socket.clone();
            socket.on_say(move |room, from, text| {
                let me = me.clone();
                // The room's other members, whichever server they are on.
                async move {
                    let _ = me.to(room).emit_said(from, text).await;
                }
            });
            Ok(())
        }
    });
    Ok(io)
}
// ANCHOR_END: server

/// A server process: serves until its parent closes its standard input.
async fn serve(redis_url: &str) -> Result<(), BoxError> {
    let io = server(redis_url).await?;
    io.spawn();
    println!("listening {}", io.local_addr());
    // Ready once it hears from the two other servers.
    tokio::time::timeout(WAIT, io.cluster().wait_for_nodes(2)).await?;
    println!("ready");
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    io.close().await;
    Ok(())
}

/// A `redis-server` of the demo's own, on a Unix socket; killed when
/// dropped.
struct OwnRedis {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl OwnRedis {
    async fn start() -> Result<(OwnRedis, String), BoxError> {
        let dir = std::env::temp_dir().join(format!("netsock-chat-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("redis.sock");
        let child = std::process::Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start redis-server ({e}): install it, or set REDIS_URL")
            })?;
        let redis = OwnRedis { child, dir };
        let url = format!("redis+unix://{}", socket.display());
        // Ready when it answers.
        let answers = async {
            while RedisDriver::connect(&url).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(WAIT, answers).await?;
        Ok((redis, url))
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server process of the demo.
struct ServerProcess {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    addr: netsock::Addr,
}

impl ServerProcess {
    async fn start(redis_url: &str) -> Result<ServerProcess, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["server", redis_url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line()).await??;
        let addr = line
            .as_deref()
            .and_then(|l| l.strip_prefix("listening "))
            .ok_or("a server exited before listening")?
            .parse()?;
        Ok(ServerProcess { child, lines, addr })
    }

    async fn ready(&mut self) -> Result<(), BoxError> {
        match tokio::time::timeout(WAIT, self.lines.next_line()).await?? {
            Some(line) if line == "ready" => Ok(()),
            _ => Err("a server did not join the cluster".into()),
        }
    }

    async fn stop(mut self) -> Result<(), BoxError> {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(WAIT, self.child.wait()).await??;
        if !status.success() {
            return Err(format!("a server exited with {status}").into());
        }
        Ok(())
    }
}

// ANCHOR: client
/// A chat user connected to one server, in `lobby`.
async fn user(
    name: &str,
    addr: &netsock::Addr,
) -> Result<(Socket<Chat>, mpsc::UnboundedReceiver<String>), BoxError> {
    let socket = Socket::<Chat>::connect(addr.clone()).await?;
    let (tx, heard) = mpsc::unbounded_channel();
    let me = name.to_owned();
    socket.on_said(move |from, text| {
        println!("  {me} hears {from}: {text}");
        let _ = tx.send(format!("{from}: {text}"));
        async {}
    });
    socket.start();
    let members = socket.enter("lobby".into()).await?;
    println!("{name} enters the lobby on {addr}: {members} in it");
    Ok((socket, heard))
}
// ANCHOR_END: client

async fn demo() -> Result<(), BoxError> {
    let (own_redis, url) = match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let (redis, url) = OwnRedis::start().await?;
            (Some(redis), url)
        }
    };
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(ServerProcess::start(&url).await?);
    }
    for server in &mut servers {
        server.ready().await?;
    }
    println!(
        "three servers: {}",
        servers
            .iter()
            .map(|s| s.addr.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let (alice, mut alice_heard) = user("alice", &servers[0].addr).await?;
    let (bob, mut bob_heard) = user("bob", &servers[1].addr).await?;
    let (carol, mut carol_heard) = user("carol", &servers[2].addr).await?;
    let said = |room: &str, from: &str, text: &str| Chat::Say {
        room: room.into(),
        from: from.into(),
        text: text.into(),
    };
    alice
        .emit(said("lobby", "alice", "hi, both of you"))
        .await?;
    for heard in [&mut bob_heard, &mut carol_heard] {
        let line = tokio::time::timeout(WAIT, heard.recv()).await?;
        assert_eq!(line.as_deref(), Some("alice: hi, both of you"));
    }
    bob.emit(said("lobby", "bob", "hello from server 2"))
        .await?;
    for heard in [&mut alice_heard, &mut carol_heard] {
        let line = tokio::time::timeout(WAIT, heard.recv()).await?;
        assert_eq!(line.as_deref(), Some("bob: hello from server 2"));
    }

    for socket in [alice, bob, carol] {
        socket.close().await;
    }
    for server in servers {
        server.stop().await?;
    }
    drop(own_redis);
    println!("done");
    Ok(())
}
