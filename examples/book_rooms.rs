//! The book's Rooms and broadcast chapter, compiled and run: rooms, targets,
//! a recipient too slow to keep up, and a request to a whole room.
//!
//! ```text
//! cargo run --example book_rooms
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use netsock::{CallError, Events, MissReason, Server, Socket, SocketError, SocketId};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: events
/// A game lobby: the same enum both ways.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Lobby {
    /// A line of text (server to clients).
    Line { text: String },
    /// A large update (server to clients).
    Snapshot(Vec<u8>),
    /// Asks a player whether it is ready; it answers with its name.
    #[request(response = String)]
    Ready,
}
// ANCHOR_END: events

/// Connects a client named `name` that records every line it hears.
async fn player(
    io: &Server<Lobby>,
    name: &'static str,
    heard: mpsc::UnboundedSender<(&'static str, String)>,
) -> netsock::Result<Socket<Lobby>> {
    let socket = Socket::<Lobby>::connect(io.local_addr()).await?;
    socket.on_line(move |text| {
        let _ = heard.send((name, text));
        async {}
    });
    socket.on_snapshot(|_| async {});
    socket.on_ready(move || async move { name.to_string() });
    Ok(socket)
}

/// The lines heard, by player, once the round's last line ("end") arrived
/// at every one of `players`.
async fn round(
    heard: &mut mpsc::UnboundedReceiver<(&'static str, String)>,
    players: usize,
) -> BTreeMap<&'static str, Vec<String>> {
    let mut lines: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut ended = 0;
    while ended < players {
        let Some((name, text)) = heard.recv().await else {
            break;
        };
        if text == "end" {
            ended += 1;
        } else {
            lines.entry(name).or_default().push(text);
        }
    }
    lines
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("netsock-book-rooms-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let io = Server::<Lobby>::builder()
        .queue_capacity(16) // frames per connection; default 1024
        .bind(dir.join("lobby.sock"))
        .await?;
    let (connected_tx, mut connected) = mpsc::unbounded_channel();
    // ANCHOR: error_hook
    let (dropped_tx, mut dropped) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Lobby>| {
        let id = socket.id();
        // A broadcast that finds this socket's queue full skips it and says so.
        let dropped = dropped_tx.clone();
        socket.on_error(move |err| {
            if let SocketError::Missed {
                event,
                why: MissReason::QueueFull,
            } = err
            {
                let _ = dropped.send((id, event));
            }
        });
        let connected = connected_tx.clone();
        async move {
            let _ = connected.send(socket);
            Ok(())
        }
    });
    // ANCHOR_END: error_hook
    let running = io.spawn();

    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let mut clients = Vec::new();
    let mut sockets = BTreeMap::new();
    for name in ["alice", "bob", "carol"] {
        clients.push(player(&io, name, heard_tx.clone()).await?);
        let server_side: Socket<Lobby> = connected.recv().await.ok_or("no connection")?;
        sockets.insert(name, server_side);
    }
    let (alice, bob, carol) = (&sockets["alice"], &sockets["bob"], &sockets["carol"]);

    // ANCHOR: rooms
    alice.join("red");
    bob.join("red");
    carol.join("blue");
    carol.join("spectators");
    assert_eq!(carol.rooms(), ["blue", "spectators"]); // sorted
    assert_eq!(io.rooms(), ["blue", "red", "spectators"]); // rooms with members
    let members: Vec<SocketId> = io.in_room("red").iter().map(Socket::id).collect();
    assert_eq!(members, [alice.id(), bob.id()]); // in id order
    carol.leave("spectators"); // its last member left: the room is dropped
    assert_eq!(io.rooms(), ["blue", "red"]);
    // ANCHOR_END: rooms

    // ANCHOR: targets
    io.to("red").emit_line("to red".into()).await?; // alice, bob
    io.to("red")
        .to("blue")
        .emit_line("to red or blue".into())
        .await?; // all three
    io.except("red").emit_line("to all but red".into()).await?; // carol
    io.to("red")
        .except(alice.id())
        .emit_line("to red but alice".into())
        .await?; // bob
    alice.broadcast().emit_line("from alice".into()).await?; // bob, carol
    alice
        .to("red")
        .emit_line("from alice to red".into())
        .await?; // bob
                 // To everyone: io.emit_* (a Broadcast with no room and no exception).
    io.emit_line("end".into()).await?;
    // ANCHOR_END: targets
    let lines = round(&mut heard, 3).await;
    for (name, lines) in &lines {
        println!("{name} heard {lines:?}");
    }
    assert_eq!(lines["alice"], ["to red", "to red or blue"]);
    assert_eq!(
        lines["bob"],
        [
            "to red",
            "to red or blue",
            "to red but alice",
            "from alice",
            "from alice to red"
        ]
    );
    assert_eq!(
        lines["carol"],
        ["to red or blue", "to all but red", "from alice"]
    );

    // ANCHOR: requests
    let answers: Vec<(SocketId, Result<String, CallError>)> = io
        .to("red")
        .timeout(Duration::from_secs(1)) // default: the server's request timeout
        .request::<String>(Lobby::Ready)
        .await;
    // One entry per member, by socket id: its reply or its own error.
    for (id, answer) in &answers {
        println!("socket {id} answered {answer:?}");
    }
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|(_, a)| a.is_ok()));
    // ANCHOR_END: requests

    // A player whose handler is stuck stops reading; its queue fills.
    let gate = Arc::new(Semaphore::new(0)); // closed below, to let it go
    let slow = Socket::<Lobby>::builder()
        .queue_capacity(1)
        .connect(io.local_addr())
        .await?;
    slow.on_snapshot({
        let gate = gate.clone();
        move |_| {
            let gate = gate.clone();
            async move { drop(gate.acquire().await) }
        }
    });
    let slow_side = connected.recv().await.ok_or("no connection")?;
    slow_side.join("red");
    let fast = &clients[1]; // bob, also in "red"
    let (got_tx, mut got) = mpsc::unbounded_channel();
    fast.on_snapshot(move |s| {
        let _ = got_tx.send(s.len());
        async {}
    });
    // ANCHOR: slow
    let mut sent = 0;
    while slow_side.dropped_events() == 0 && sent < 200 {
        // Never waits: queued for each member that has room, dropped for
        // a member whose queue is full.
        io.to("red").emit_snapshot(vec![0; 256 * 1024]).await?;
        sent += 1;
        got.recv().await; // bob keeps up and gets every one
    }
    let (id, event) = dropped.recv().await.ok_or("no drop reported")?;
    assert_eq!((id, event), (slow_side.id(), "Snapshot"));
    println!(
        "{sent} snapshots sent; bob got all, the stuck socket {id} missed {}",
        slow_side.dropped_events()
    );
    // ANCHOR_END: slow
    assert!(slow_side.dropped_events() > 0);
    assert_eq!(bob.dropped_events(), 0);
    gate.close(); // the stuck handler returns; the socket catches up
    slow.close().await;
    slow_side.closed().await;

    // ANCHOR: cleanup
    for client in &clients {
        client.close().await;
    }
    for server_side in sockets.values() {
        server_side.closed().await; // the server saw it go
    }
    // Disconnected sockets leave every room; empty rooms are dropped.
    assert!(io.rooms().is_empty());
    // ANCHOR_END: cleanup
    running.close().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
