//! What netsock logs, shown with `tracing-subscriber`.
//!
//! ```text
//! cargo run --example tracing            # info: listening, connected, disconnected
//! RUST_LOG_LEVEL=trace cargo run --example tracing   # every span and frame
//! ```
//!
//! netsock logs through `tracing`: a `netsock_server` span (address), a
//! `connection` span per socket (id, peer, transport) and a `request` span
//! per incoming request (id, event). Connects and disconnects (with the
//! reason) are at info, refused handshakes and protocol errors at warn,
//! frames at trace. Without a subscriber nothing is printed.

use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};

#[derive(Events, Serialize, Deserialize, Debug)]
enum SumApi {
    #[request(response = i64)]
    Sum(Vec<i64>),
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // ANCHOR: subscriber
    let level = std::env::var("RUST_LOG_LEVEL")
        .ok()
        .and_then(|l| l.parse().ok());
    tracing_subscriber::fmt()
        .with_max_level(level.unwrap_or(tracing::Level::INFO))
        .init();
    // ANCHOR_END: subscriber

    let io = Server::<SumApi>::bind(0).await?;
    io.on_connection(|socket: Socket<SumApi>| async move {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        Ok(())
    });
    let running = io.spawn();
    let socket = Socket::<SumApi>::connect(io.local_addr()).await?;
    println!("sum = {}", socket.sum(vec![1, 2, 3]).await?);
    socket.close().await;
    running.close().await?;
    Ok(())
}
