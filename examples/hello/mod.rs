//! The seed's first program, shared by `hello_tcp` and `hello_unix`: a
//! server that greets every client, and a client that answers.

use netsock::{Addr, Events, Server, Socket};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: events
/// The only event: a chat message.
#[derive(Events, Serialize, Deserialize, Debug)]
pub enum Chat {
    /// A line of text, and how many clients the server has.
    Message { text: String, total_clients: usize },
}
// ANCHOR_END: events

/// `-- server`, `-- client`, or nothing: both in one process.
pub async fn main(addr: Addr) -> Result<(), BoxError> {
    match std::env::args().nth(1).as_deref() {
        Some("server") => {
            let io = server(addr).await?;
            println!("listening on {}; stop with Ctrl-C", io.local_addr());
            // Ctrl-C: stop accepting, give requests in flight 5 s, tell clients.
            io.run_until(tokio::signal::ctrl_c(), std::time::Duration::from_secs(5))
                .await?;
            Ok(())
        }
        Some("client") => client(addr).await,
        None => {
            let io = server(addr).await?;
            let running = io.spawn();
            client(io.local_addr().clone()).await?;
            running.close().await?;
            Ok(())
        }
        Some(other) => Err(format!("unknown mode {other:?}; use server or client").into()),
    }
}

// ANCHOR: server
/// Binds a server that greets each client and prints what clients send.
pub async fn server(addr: Addr) -> netsock::Result<Server<Chat>> {
    let io = Server::<Chat>::bind(addr).await?;
    let clients = io.clone();
    io.on_connection(move |socket: Socket<Chat>| {
        let total_clients = clients.sockets().len();
        async move {
            socket.emit_message("hello".into(), total_clients).await?;
            socket.on_message(|text, _| async move { println!("socket sent a message: {text}") });
            Ok(())
        }
    });
    Ok(io)
}
// ANCHOR_END: server

// ANCHOR: client
/// Connects, waits for the greeting, answers it, and closes.
pub async fn client(addr: Addr) -> Result<(), BoxError> {
    let socket = Socket::<Chat>::connect(addr).await?;
    let (text, total_clients) = socket.once_message().await?;
    println!("server says {text:?} ({total_clients} clients connected)");
    socket.emit_message("hi, server".into(), 0).await?;
    socket.close().await;
    Ok(())
}
// ANCHOR_END: client
