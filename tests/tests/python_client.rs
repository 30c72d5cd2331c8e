//! The Python client written from the book's wire chapter
//! (`examples/python/sum_client.py`) against the Rust sum service, over a
//! Unix socket. Skipped, saying so, when `python3` is not installed.

use std::path::PathBuf;
use std::process::Command;

use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tests::{within, TempDir};

/// The sum service's enum, as in `examples/sum_numbers.rs`.
#[derive(Events, Serialize, Deserialize, Debug)]
enum SumApi {
    #[request(response = i64)]
    Sum(Vec<i64>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_calls_the_rust_sum_service() {
    if Command::new("python3").arg("--version").output().is_err() {
        println!("skipped: python3 not found");
        return;
    }
    // The client hard-codes this schema text; it must be the derive's.
    assert_eq!(SumApi::SCHEMA, "SumApi{Sum(Vec<i64>)->i64}");

    let dir = TempDir::new();
    let path = dir.path().join("sum_numbers.sock");
    let io = Server::<SumApi>::bind(&path).await.expect("bind");
    io.on_connection(|socket: Socket<SumApi>| async move {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        Ok(())
    });
    let running = io.spawn();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/python/sum_client.py");
    let output = within(
        tokio::process::Command::new("python3")
            .arg(&script)
            .arg(&path)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sum_client.py failed ({}):\n{stdout}{stderr}",
        output.status
    );
    assert_eq!(stdout.trim(), "21", "stderr: {stderr}");

    io.close().await;
    within(running).await.unwrap();
}
