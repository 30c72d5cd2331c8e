//! The sum-numbers service: one program asks another to add numbers.
//!
//! ```text
//! cargo run --example sum_numbers
//! ```
//!
//! The example starts itself again as a child process (`sum_numbers serve
//! PATH`) that serves `Sum` on a Unix socket in a temporary directory,
//! connects to it, prints `21`, and stops the child. The two halves are what
//! two separate programs would contain.

use std::process::Stdio;

use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

// ANCHOR: api
/// What the sum-numbers service understands.
#[derive(Events, Serialize, Deserialize, Debug)]
enum SumApi {
    /// Adds the numbers; the reply is their sum.
    #[request(response = i64)]
    Sum(Vec<i64>),
}
// ANCHOR_END: api

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            let path = args.get(2).ok_or("usage: sum_numbers serve PATH")?;
            serve_until_stdin_closes(path).await
        }
        _ => call_a_child_service().await,
    }
}

// ANCHOR: service
/// The service: answers `Sum` on a Unix socket (or a TCP port).
async fn serve(path: &str) -> netsock::Result<()> {
    let io = Server::<SumApi>::bind(path).await?;
    io.on_connection(|socket: Socket<SumApi>| async move {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        Ok(())
    });
    println!("listening on {}", io.local_addr());
    io.run().await
}
// ANCHOR_END: service

/// The child process: serves until its parent closes its standard input.
async fn serve_until_stdin_closes(path: &str) -> Result<(), BoxError> {
    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    tokio::select! {
        result = serve(path) => result?,
        () = stdin_closed => {}
    }
    Ok(())
}

/// The caller: starts the service as a child process, calls it, stops it.
async fn call_a_child_service() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("netsock-sum-numbers-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("sum_numbers.sock");
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    // The child prints one line once it listens.
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut ready = String::new();
    BufReader::new(stdout).read_line(&mut ready).await?;
    if ready.is_empty() {
        return Err("the service exited before listening".into());
    }

    // ANCHOR: call
    let socket = Socket::<SumApi>::connect(&path).await?;
    let total = socket.sum(vec![1, 2, 3, 4, 5, 6]).await?;
    println!("{total}");
    // ANCHOR_END: call

    socket.close().await;
    drop(child.stdin.take()); // tells the service to stop
    let status = child.wait().await?;
    let _ = std::fs::remove_dir_all(&dir);
    if !status.success() {
        return Err(format!("the service exited with {status}").into());
    }
    Ok(())
}
