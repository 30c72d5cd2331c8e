//! The book's Events chapter, compiled and run: a client that only listens,
//! events as values (`events()`, `once_*`), a handler that replies to its
//! sender, and names netsock keeps for itself.
//!
//! ```text
//! cargo run --example book_events
//! ```

use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: api
#[derive(Events, Serialize, Deserialize, Debug)]
enum Chat {
    /// The first events a socket.io user writes: `emit_join`, `on_join`.
    Join(String),
    Message {
        text: String,
        seq: usize,
    },
    /// Numbers to add; the total comes back as an event.
    Sum(Vec<i64>),
    Total(i64),
    /// A request named like `Socket::close`: its stub is `close_request`.
    #[request(response = String)]
    Close,
    Bye,
}
// ANCHOR_END: api

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let io = Server::<Chat>::bind(0).await?;
    // ANCHOR: reply
    io.on_connection(|socket: Socket<Chat>| async move {
        // socket.io's `socket.on('sum', n => socket.emit('total', sum(n)))`:
        socket.on_sum_with(|socket, numbers| async move {
            socket.emit_total(numbers.iter().sum()).await
        });
        socket.on_join_with(|socket, room| async move { socket.join(room) });
        socket.on_close(|| async { "see you".to_string() });
        // Greet at once: the client has not registered its handlers yet.
        for n in 1..=3 {
            socket.emit_message("hello".into(), n).await?;
        }
        socket.emit_bye().await?;
        Ok(())
    });
    // ANCHOR_END: reply
    let addr = io.local_addr().clone();
    let running = io.spawn();

    listen_only(addr.clone()).await?;
    as_values(addr.clone()).await?;
    running.close().await?;
    Ok(())
}

/// The net-socket.io client as written: connect, handle, wait. The
/// greetings were sent before `on_message` ran; none is lost.
async fn listen_only(addr: netsock::Addr) -> Result<(), BoxError> {
    let (done, mut bye) = mpsc::unbounded_channel();
    // ANCHOR: listen
    let socket = Socket::<Chat>::connect(addr).await?;
    socket.on_message(|text, seq| async move { println!("{seq}: {text}") });
    socket.on_bye(move || {
        let _ = done.send(());
        async {}
    });
    // Nothing else to call: wait for whatever ends the program.
    bye.recv().await;
    // ANCHOR_END: listen
    socket.close().await;
    Ok(())
}

/// The same greetings as values, then a request and a reply event.
async fn as_values(addr: netsock::Addr) -> Result<(), BoxError> {
    let socket = Socket::<Chat>::connect(addr).await?;
    // ANCHOR: stream
    let mut events = socket.events();
    while let Some(event) = events.next().await {
        match event {
            Chat::Message { text, seq } => println!("{seq}: {text}"),
            Chat::Bye => break,
            other => println!("unexpected: {other:?}"),
        }
    }
    // ANCHOR_END: stream
    drop(events);
    // ANCHOR: once
    socket.emit_sum(vec![1, 2, 3, 4, 5, 6]).await?;
    let total: i64 = socket.once_total().await?;
    assert_eq!(total, 21);
    // ANCHOR_END: once
    socket.emit_join("lobby".into()).await?;
    assert_eq!(socket.close_request().await?, "see you");
    socket.close().await;
    Ok(())
}
