//! A socket that receives one enum and sends another, both with the same
//! variant names: each method resolves to the enum that applies.

use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};

#[derive(Events, Serialize, Deserialize, Debug)]
enum ClientToServer {
    Message {
        text: String,
    },
    #[request(response = u64)]
    Count,
}

#[derive(Events, Serialize, Deserialize, Debug)]
enum ServerToClient {
    Message { text: String, from: u64 },
}

#[allow(dead_code)]
async fn server(io: Server<ClientToServer, ServerToClient>) -> netsock::Result<()> {
    io.emit_message("hello".into(), 0).await?; // ServerToClient
    io.on_connection(
        |socket: Socket<ClientToServer, ServerToClient>| async move {
            socket.on_message(|text| async move { println!("{text}") }); // ClientToServer
            socket.on_count(|| async { 1 });
            socket.emit_message("welcome".into(), socket.id().0).await?;
            Ok(())
        },
    );
    Ok(())
}

#[allow(dead_code)]
async fn client(socket: Socket<ServerToClient, ClientToServer>) -> Result<(), netsock::CallError> {
    socket.on_message(|text, from| async move { println!("{from}: {text}") });
    let _ = socket.emit_message("hi".into()).await;
    let _: u64 = socket.count().await?;
    Ok(())
}

fn main() {}
