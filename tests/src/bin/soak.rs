//! The long soak run.
//!
//! ```text
//! cargo run --release -p tests --bin soak -- [CONNECTIONS] [ROUNDS] [SECONDS_PER_ROUND] [tcp|unix]
//! ```
//!
//! Defaults: 1000 connections, 8 rounds of 6 s, on a Unix socket. Exits
//! non-zero if a request was lost, answered wrongly or twice, or if memory
//! grew by more than 10% (plus 16 MiB) from the middle round to the last:
//! the first half of the rounds is warm-up for the allocator.

use std::time::Duration;

use tests::soak::{run, Config};
use tests::Transport;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let transport = match args.get(3).map(String::as_str) {
        Some("tcp") => Transport::Tcp,
        _ => Transport::Unix,
    };
    let config = Config {
        transport,
        connections: arg(0, 1000) as usize,
        rounds: arg(1, 8) as usize,
        round: Duration::from_secs(arg(2, 6)),
        disconnect_chance: 0.001,
    };
    println!("soak: {config:?}");
    let report = run(config).await;
    println!("{report:#?}");
    let ok = report.lost == 0
        && report.wrong == 0
        && report.handled_twice == 0
        && !grew(&report.rss_kib);
    if !ok {
        eprintln!("soak FAILED");
        std::process::exit(1);
    }
    println!("soak passed");
}

/// Whether memory grew from the middle round (after warm-up) to the last.
fn grew(rss: &[u64]) -> bool {
    match (rss.get(rss.len() / 2), rss.last()) {
        (Some(&base), Some(&last)) => last > base + base / 10 + 16 * 1024,
        _ => false,
    }
}
