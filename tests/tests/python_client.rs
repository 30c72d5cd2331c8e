//! The Python package's example client (`clients/python/examples/sum_client.py`,
//! run from the source tree) against the Rust sum service, over a Unix
//! socket. Skipped, saying so, when no `python3` of at least 3.11 is
//! installed. The package's own tests (run by `.ci/run`) go further.

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
    let recent = Command::new("python3")
        .args(["-c", "import sys; sys.exit(sys.version_info < (3, 11))"])
        .status()
        .is_ok_and(|status| status.success());
    if !recent {
        println!("skipped: no python3 of at least 3.11");
        return;
    }
    // The client's sum_api.json holds this schema text; it must be the derive's.
    assert_eq!(SumApi::SCHEMA, "SumApi{Sum(Vec<i64>)->i64}");

    let dir = TempDir::new();
    let path = dir.path().join("sum_numbers.sock");
    let io = Server::<SumApi>::bind(&path).await.expect("bind");
    io.on_connection(|socket: Socket<SumApi>| async move {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        Ok(())
    });
    let running = io.spawn();

    let package = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/python");
    let output = within(
        tokio::process::Command::new("python3")
            .arg(package.join("examples/sum_client.py"))
            .arg(&path)
            .env("PYTHONPATH", package.join("src"))
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
