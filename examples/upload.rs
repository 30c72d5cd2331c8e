//! Uploads: a request that carries a stream of items to its handler. A
//! client stores a file in chunks (the handler reads them as they come,
//! under credit, and answers once), then sends lines to a handler that
//! answers each with its upper-case form as they go: a stream each way at
//! once. The book's Streams chapter shows this file.
//!
//! ```text
//! cargo run --example upload
//! ```

use futures_util::stream::{self, StreamExt};
use netsock::{Events, ItemStream, Server, Socket};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: api
/// What the server says of a stored file.
#[derive(netsock::Describe, Serialize, Deserialize, Debug)]
struct Receipt {
    name: String,
    bytes: u64,
    chunks: u64,
}

#[derive(Events, Serialize, Deserialize, Debug)]
enum Backup {
    /// Stores a file sent as a stream of chunks; answers once it is all in.
    #[request(upload = Vec<u8>, response = Receipt)]
    Store { name: String },
    /// Answers each line sent with its upper-case form, as they come.
    #[request(upload = String, stream = String)]
    Shout,
}
// ANCHOR_END: api

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // ANCHOR: handlers
    let io = Server::<Backup>::bind(0).await?;
    io.on_connection(|socket: Socket<Backup>| async move {
        // The upload comes after the request's fields, as an ItemStream.
        socket.on_store(|name, mut chunks: ItemStream<Vec<u8>>| async move {
            let (mut bytes, mut count) = (0, 0);
            while let Some(chunk) = chunks.next().await {
                match chunk {
                    Ok(chunk) => (bytes, count) = (bytes + chunk.len() as u64, count + 1),
                    // The caller's source failed, or the connection ended.
                    Err(e) => eprintln!("upload of {name} failed: {e}"),
                }
            }
            Receipt {
                name,
                bytes,
                chunks: count,
            }
        });
        // Both ways: the answer is a stream made from the upload.
        socket.on_shout(|lines: ItemStream<String>| async move {
            lines.map(|line| line.map(|l| l.to_uppercase()).map_err(|e| e.to_string()))
        });
        Ok(())
    });
    io.spawn();
    // ANCHOR_END: handlers

    let socket = Socket::<Backup>::connect(io.local_addr()).await?;

    // ANCHOR: store
    // 1,000 chunks of 4 KiB: they go out as the handler's credit allows.
    let chunks = stream::iter((0..1000).map(|_| vec![0u8; 4096]));
    let receipt = socket.store("photos.tar".into(), chunks).await?;
    println!(
        "stored {}: {} bytes in {} chunks",
        receipt.name, receipt.bytes, receipt.chunks
    );
    // ANCHOR_END: store

    // ANCHOR: both
    let lines = stream::iter(["hello", "apps made of apps"].map(String::from));
    let mut shouted = socket.shout(lines).await?;
    while let Some(line) = shouted.next().await {
        println!("shouted: {}", line?);
    }
    // ANCHOR_END: both

    io.close().await;
    Ok(())
}
