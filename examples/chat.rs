//! A chat server with rooms, and chat clients as separate processes.
//!
//! ```text
//! cargo run --example chat                          # a scripted demo: server + two client processes
//! cargo run --example chat -- server                # terminal 1: serves /tmp/netsock-chat.sock
//! cargo run --example chat -- client alice          # terminal 2: type `/join lobby`, then lines
//! cargo run --example chat -- client bob            # terminal 3
//! ```
//!
//! Client commands: `/join ROOM` (also lists who is there), `/leave ROOM`,
//! anything else is said in the room joined last. A middleware admits a
//! client only with a nick (sent as the handshake's auth value) and attaches
//! it to the socket.

use std::process::Stdio;

use netsock::{Events, Handshake, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ADDR: &str = "/tmp/netsock-chat.sock";

// ANCHOR: events
/// Everything said in the chat, both ways.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Chat {
    /// Enter a room; the reply lists its members. (Not `Join`: a variant
    /// may not take the name of a runtime method such as `Socket::join`.)
    #[request(response = Vec<String>)]
    Enter { room: String },
    /// Leave a room.
    Leave { room: String },
    /// Say something in a room.
    Say { room: String, text: String },
    /// Something `from` said in `room` (server to clients).
    Said {
        room: String,
        from: String,
        text: String,
    },
}
// ANCHOR_END: events

/// The nick the middleware attached to a socket.
struct Nick(String);

// ANCHOR: server
async fn server(addr: &str) -> netsock::Result<Server<Chat>> {
    let io = Server::<Chat>::bind(addr).await?;
    io.middleware(|mut hs: Handshake| async move {
        match hs.auth::<String>() {
            Some(nick) if !nick.trim().is_empty() => {
                hs.insert(Nick(nick));
                Ok(hs)
            }
            _ => Err("send your nick as the auth value".into()),
        }
    });
    let server = io.clone();
    io.on_connection(move |socket: Socket<Chat>| {
        let server = server.clone();
        async move {
            let nick = |s: &Socket<Chat>| s.data::<Nick>().map_or("?".into(), |n| n.0.clone());
            let me = socket.clone();
            socket.on_enter(move |room| {
                me.join(&room);
                let members = server.in_room(&room).iter().map(nick).collect();
                async move { members }
            });
            let me = socket.clone();
            socket.on_leave(move |room| {
                me.leave(room);
                async {}
            });
            let me = socket.clone();
            socket.on_say(move |room, text| {
                let (me, from) = (me.clone(), nick(&me));
                async move {
                    if me.rooms().contains(&room) {
                        let _ = me.to(room.clone()).emit_said(room, from, text).await;
                    }
                }
            });
            Ok(())
        }
    });
    Ok(io)
}
// ANCHOR_END: server

// ANCHOR: client
/// Reads commands from stdin; prints what is said. With `wait`, keeps
/// running after stdin ends until it has heard that many lines.
async fn client(addr: &str, nick: &str, wait: usize) -> Result<(), BoxError> {
    let socket = Socket::<Chat>::builder()
        .auth_value(nick)?
        .connect(addr)
        .await?;
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    socket.on_said(move |room, from, text| {
        println!("[{room}] {from}: {text}");
        let _ = heard_tx.send(());
        async {}
    });
    let mut room = None;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(name) = line.strip_prefix("/join ") {
            let members = socket.enter(name.to_string()).await?;
            println!("joined {name}: {}", members.join(", "));
            room = Some(name.to_string());
        } else if let Some(name) = line.strip_prefix("/leave ") {
            socket.emit_leave(name.to_string()).await?;
        } else if let Some(room) = &room {
            socket.emit_say(room.clone(), line).await?;
        } else {
            println!("/join a room first");
        }
    }
    for _ in 0..wait {
        heard.recv().await;
    }
    socket.close().await;
    Ok(())
}
// ANCHOR_END: client

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => {
            let io = server(args.get(1).map_or(ADDR, String::as_str)).await?;
            println!("chat server on {}; stop with Ctrl-C", io.local_addr());
            // Ctrl-C: stop accepting, give requests in flight 5 s, tell clients.
            io.run_until(tokio::signal::ctrl_c(), std::time::Duration::from_secs(5))
                .await?;
            Ok(())
        }
        Some("client") => {
            let nick = args.get(1).ok_or("usage: chat client NICK [ADDR] [WAIT]")?;
            let addr = args.get(2).map_or(ADDR, String::as_str);
            let wait = args.get(3).map_or(Ok(0), |w| w.parse())?;
            client(addr, nick, wait).await
        }
        None => demo().await,
        Some(other) => Err(format!("unknown mode {other:?}: use server or client").into()),
    }
}

/// Runs a server and two client processes with scripted input.
async fn demo() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("netsock-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let addr = dir.join("chat.sock").to_string_lossy().into_owned();
    let io = server(&addr).await?;
    let running = io.spawn();
    let spawn = |nick: &str, wait: &str| {
        Command::new(std::env::current_exe()?)
            .args(["client", nick, &addr, wait])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
    };
    // Bob joins the lobby and waits to hear one line.
    let mut bob = spawn("bob", "1")?;
    let mut bob_in = bob.stdin.take().ok_or("no stdin")?;
    bob_in.write_all(b"/join lobby\n").await?;
    drop(bob_in);
    let mut bob_out = BufReader::new(bob.stdout.take().ok_or("no stdout")?).lines();
    let joined = bob_out.next_line().await?.ok_or("bob exited")?;
    println!("bob   | {joined}");
    // Alice joins, says hello, and leaves.
    let mut alice = spawn("alice", "0")?;
    let mut alice_in = alice.stdin.take().ok_or("no stdin")?;
    alice_in
        .write_all(b"/join lobby\nhello from alice\n")
        .await?;
    drop(alice_in);
    let alice_out = alice.wait_with_output().await?;
    for line in String::from_utf8_lossy(&alice_out.stdout).lines() {
        println!("alice | {line}");
    }
    while let Some(line) = bob_out.next_line().await? {
        println!("bob   | {line}");
    }
    let bob_status = bob.wait().await?;
    running.close().await?;
    let _ = std::fs::remove_dir_all(&dir);
    if !alice_out.status.success() || !bob_status.success() {
        return Err("a client failed".into());
    }
    Ok(())
}
