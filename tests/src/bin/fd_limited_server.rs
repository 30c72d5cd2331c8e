//! A server for `tests/tests/fd_limit.rs`, run in a child process with a
//! small file descriptor limit (`ulimit -n`).
//!
//! ```text
//! fd_limited_server tcp|unix [PATH]
//! ```
//!
//! Prints the address it listens on, then serves [`Probe`] until stdin
//! closes.

use std::time::Duration;

use netsock::{Server, Socket};
use tests::api::{Probe, ProbeHandle};
use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> netsock::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match (args.first().map(String::as_str), args.get(1)) {
        (Some("unix"), Some(path)) => netsock::Addr::unix(path),
        _ => netsock::Addr::tcp("127.0.0.1", 0),
    };
    let io = Server::<Probe>::builder()
        .handshake_timeout(Duration::from_millis(500))
        .bind(addr)
        .await?;
    let server = io.clone();
    io.on_connection(move |socket: Socket<Probe>| {
        let server = server.clone();
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        socket.on_accept_failures(move || {
            let failures = server.metrics().accept_failures;
            async move { failures }
        });
        async { Ok(()) }
    });
    println!("{}", io.local_addr());
    let running = io.spawn();
    // Until the test closes our stdin.
    let _ = tokio::io::stdin().read_to_end(&mut Vec::new()).await;
    running.close().await
}
