//! A feed server for `tests/tests/streams.rs`'s memory bound, run in a
//! child process so that its memory is measured apart from the consumer's.
//!
//! ```text
//! stream_producer tcp|unix [PATH]
//! ```
//!
//! Prints the address it listens on, then serves [`Feed`] until stdin
//! closes.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use netsock::{Server, Socket};
use tests::feed::{answer_feed, Feed, FeedHandle};
use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> netsock::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match (args.first().map(String::as_str), args.get(1)) {
        (Some("unix"), Some(path)) => netsock::Addr::unix(path),
        _ => netsock::Addr::tcp("127.0.0.1", 0),
    };
    let io = Server::<Feed>::bind(addr).await?;
    let produced = Arc::new(AtomicU64::new(0));
    io.on_connection(move |socket: Socket<Feed>| {
        let (dropped, _) = tokio::sync::mpsc::unbounded_channel();
        answer_feed(&socket, produced.clone(), dropped);
        let counter = produced.clone();
        socket.on_produced(move || {
            let n = counter.load(std::sync::atomic::Ordering::Relaxed);
            async move { n }
        });
        async { Ok(()) }
    });
    println!("{}", io.local_addr());
    let running = io.spawn();
    // Until the test closes our stdin.
    let _ = tokio::io::stdin().read_to_end(&mut Vec::new()).await;
    running.close().await
}
