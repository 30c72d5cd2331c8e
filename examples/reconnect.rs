//! The book's Reliability chapter, compiled and run: a client keeps its
//! handlers across a server restart, and the events it emits while offline
//! reach the new server, in order.
//!
//! ```text
//! cargo run --example reconnect
//! ```

use std::path::Path;
use std::time::Duration;

use netsock::{Events, Reconnect, Reconnected, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the client reports to the server.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Log {
    Line { n: u32, text: String },
}

/// A server at `path` that passes on the lines it receives.
async fn serve(path: &Path) -> Result<(Server<Log>, mpsc::UnboundedReceiver<String>), BoxError> {
    let io = Server::<Log>::bind(path).await?;
    let (lines_tx, lines) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Log>| {
        let lines = lines_tx.clone();
        async move {
            socket.on_line(move |n, text| {
                let _ = lines.send(format!("#{n} {text}"));
                async {}
            });
            Ok(())
        }
    });
    io.spawn();
    Ok((io, lines))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("netsock-reconnect-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("log.sock");
    let (first, mut lines) = serve(&path).await?;

    // ANCHOR: connect
    let socket = Socket::<Log>::builder()
        .reconnect(
            Reconnect::new()
                .initial_delay(Duration::from_millis(20)) // default 100 ms, doubling
                .max_delay(Duration::from_millis(500)) // default 5 s
                .max_attempts(50) // default: no limit
                .offline_buffer(100), // default 1,024 events
        )
        .connect(&path)
        .await?;
    // ANCHOR_END: connect

    // ANCHOR: handlers
    // Registered once: they run at every disconnect and every reconnect.
    let (down_tx, mut down) = mpsc::unbounded_channel();
    socket.on_disconnect(move |reason| {
        println!("client: disconnected: {reason}");
        let _ = down_tx.send(());
        async {}
    });
    let (back_tx, mut back) = mpsc::unbounded_channel();
    socket.on_reconnect(move |r: Reconnected| {
        println!(
            "client: reconnected after {} attempt(s) and {:?} offline; {} buffered events sent",
            r.attempts, r.offline, r.replayed
        );
        let _ = back_tx.send(());
        async {}
    });
    // ANCHOR_END: handlers

    socket.emit_line(1, "first server".into()).await?;
    println!("server 1 got {}", lines.recv().await.ok_or("no line")?);

    // ANCHOR: offline
    first.close().await; // the server goes away; the client starts reconnecting
    down.recv().await; // the client noticed: emits go to its offline buffer now
    for n in 2..=4 {
        socket.emit_line(n, "while offline".into()).await?; // kept in the buffer
    }
    let (second, mut lines) = serve(&path).await?; // a new server, same path
    back.recv().await; // the buffered events are on their way, in order
    socket.emit_line(5, "back online".into()).await?; // sent after them
    for _ in 2..=5 {
        println!("server 2 got {}", lines.recv().await.ok_or("no line")?);
    }
    // ANCHOR_END: offline

    // ANCHOR: close
    socket.close().await; // closed for good: no more reconnects
    println!("client: closed for good: {}", socket.closed().await);
    // ANCHOR_END: close
    second.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
