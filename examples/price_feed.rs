//! A price subscription: one request, answered with a stream of ticks, to
//! a fast subscriber and a slow one. The slow one reads a few ticks, then
//! leaves; credit keeps the server from producing more than a window ahead
//! of it, and dropping its stream stops the server's. The book's Streams
//! chapter shows this file.
//!
//! ```text
//! cargo run --example price_feed
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use netsock::{CallError, Events, Server, Socket};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: api
/// One price change.
#[derive(netsock::Describe, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Tick {
    seq: u64,
    price: f64,
}

#[derive(Events, Serialize, Deserialize, Debug)]
enum Prices {
    /// Every price change of `symbol`, up to `count` of them: a request
    /// answered with a stream of `Tick`s.
    #[request(stream = Tick)]
    Watch { symbol: String, count: u64 },
}
// ANCHOR_END: api

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // How many ticks the server has produced, for all subscribers.
    let produced = Arc::new(AtomicU64::new(0));

    // ANCHOR: handler
    let io = Server::<Prices>::bind(0).await?;
    let made = produced.clone();
    io.on_connection(move |socket: Socket<Prices>| {
        let made = made.clone();
        async move {
            socket.on_watch(move |symbol, count| {
                let made = made.clone();
                async move {
                    // An unknown symbol ends the stream with an error.
                    let start = match symbol.as_str() {
                        "ACME" => Ok(100.0),
                        _ => Err(format!("no such symbol: {symbol}")),
                    };
                    stream::iter(0..count).map(move |seq| {
                        // Polled only while the subscriber's credit lasts.
                        made.fetch_add(1, Ordering::Relaxed);
                        let base = start.clone()?;
                        Ok::<_, String>(Tick {
                            seq,
                            price: base + (seq % 7) as f64 * 0.25,
                        })
                    })
                }
            });
            Ok(())
        }
    });
    // ANCHOR_END: handler
    let addr = io.local_addr().clone();
    let running = io.spawn();

    // ANCHOR: fast
    // A fast subscriber reads every tick as it comes...
    let fast = Socket::<Prices>::connect(&addr).await?;
    let fast_reader = tokio::spawn(async move {
        let mut ticks = fast.watch("ACME".into(), 10_000).await?;
        let mut last = None;
        while let Some(tick) = ticks.next().await {
            last = Some(tick?); // Result<Tick, CallError>
        }
        println!("fast subscriber: read every tick, the last {last:?}");
        fast.close().await;
        Ok::<_, CallError>(last)
    });
    // ANCHOR_END: fast

    // ANCHOR: slow
    // ...while a slow one, at the same time, reads a few and leaves.
    let slow = Socket::<Prices>::connect(&addr).await?;
    let mut ticks = slow.watch("ACME".into(), 1_000_000).await?;
    for _ in 0..5 {
        let tick = ticks.next().await.transpose()?;
        println!("slow subscriber: {tick:?}");
        tokio::time::sleep(Duration::from_millis(100)).await; // a slow consumer
    }
    let last = fast_reader.await??;
    assert_eq!(last.map(|t| t.seq), Some(9_999));
    // For the slow one, the server ran at most a window (8192 small ticks)
    // ahead of what was read, not a million.
    let ahead = produced.load(Ordering::Relaxed) - 10_000;
    println!("slow subscriber: read 5, the server produced {ahead}");
    assert!(ahead <= 5 + u64::from(netsock::frame::RECEIVE_WINDOW_ITEMS));
    drop(ticks); // cancels: the server drops its stream
                 // ANCHOR_END: slow

    // ANCHOR: error
    let mut ticks = slow.watch("NOPE".into(), 3).await?;
    match ticks.next().await {
        Some(Err(CallError::HandlerFailed { message })) => println!("refused: {message}"),
        other => println!("unexpected: {other:?}"),
    }
    // ANCHOR_END: error

    slow.close().await;
    running.close().await?;
    Ok(())
}
