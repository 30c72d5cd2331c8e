//! The book's "Testing a service without sockets" section, compiled and run:
//! a service served and called over the in-memory transport, and (under
//! `cargo test`) tests of it on paused time.
//!
//! ```text
//! cargo run --example book_testing
//! cargo test -p examples --example book_testing
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Events, Serialize, Deserialize, Debug)]
enum Counter {
    /// Adds to the total; replies with the new total.
    #[request(response = u64)]
    Add(u64),
    /// The server tells every client the new total.
    Total(u64),
}

// ANCHOR: service
/// The service under test: whatever address it is bound to.
fn counter_service(io: &Server<Counter>) {
    let total = Arc::new(AtomicU64::new(0));
    let everyone = io.clone();
    io.on_connection(move |socket: Socket<Counter>| {
        let (total, everyone) = (total.clone(), everyone.clone());
        async move {
            socket.on_add(move |n| {
                let (total, everyone) = (total.clone(), everyone.clone());
                async move {
                    let now = total.fetch_add(n, Ordering::SeqCst) + n;
                    let _ = everyone.emit_total(now).await;
                    now
                }
            });
            Ok(())
        }
    });
}
// ANCHOR_END: service

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // ANCHOR: memory
    // "memory://" picks a fresh name, like port 0 a free port: tests running
    // in parallel never collide. "memory://counter" would work as well.
    let io = Server::<Counter>::bind("memory://").await?;
    counter_service(&io);
    tokio::spawn({
        let io = io.clone();
        async move { io.run().await }
    });

    let client = Socket::<Counter>::connect(io.local_addr()).await?;
    let (tx, mut totals) = tokio::sync::mpsc::unbounded_channel();
    client.on_total(move |total| {
        let _ = tx.send(total);
        async {}
    });
    assert_eq!(client.add(2).await?, 2);
    assert_eq!(client.add(3).await?, 5);
    assert_eq!(totals.recv().await, Some(2));
    io.close().await;
    // ANCHOR_END: memory
    println!("served and called over {}", io.local_addr());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // ANCHOR: paused
    /// Paused time: tokio jumps ahead whenever every task waits, so the
    /// 10-second handshake timeout takes no time at all.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_says_hello_is_dropped() {
        let io = Server::<Counter>::bind("memory://").await.unwrap();
        counter_service(&io);
        tokio::spawn({
            let io = io.clone();
            async move { io.run().await }
        });
        // A hand-written peer: a raw byte stream that connects, then says
        // nothing.
        let silent = netsock::memory::MemoryStream::connect(io.local_addr()).unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(io.metrics().rejects.timed_out, 1);
        // Other clients are served all along.
        let client = Socket::<Counter>::connect(io.local_addr()).await.unwrap();
        assert_eq!(client.add(1).await.unwrap(), 1);
        io.close().await;
        drop(silent);
    }
    // ANCHOR_END: paused
}
