//! A server out of file descriptors: accepting fails, is counted, and is
//! retried after a pause; once descriptors are free again (here, when the
//! handshake timeout drops the silent strangers holding them) a
//! well-behaved client is served. The server runs in a child process with
//! a small `ulimit -n`, so the limit binds it alone.

use std::process::Stdio;

use netsock::Socket;
use tests::api::{Probe, ProbeEmit};
use tests::{within, Raw, TempDir};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts the server with at most 48 descriptors; gives its address.
async fn limited_server(transport: &str, dir: &TempDir) -> (tokio::process::Child, netsock::Addr) {
    let path = dir.path().join("limited.sock");
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 48 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_fd_limited_server"))
        .arg(transport)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start fd_limited_server");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    within(BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("read the address");
    let addr = match transport {
        "unix" => netsock::Addr::unix(&path),
        _ => {
            let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
            netsock::Addr::tcp("127.0.0.1", port.expect("a port"))
        }
    };
    (child, addr)
}

async fn out_of_descriptors(transport: &str) {
    let dir = TempDir::new();
    let (mut child, addr) = limited_server(transport, &dir).await;
    // 80 silent strangers: more than the server has descriptors for.
    let mut strangers = Vec::new();
    for _ in 0..80 {
        strangers.push(Raw::connect(&addr).await);
    }
    // A real client behind them is served once handshake timeouts free
    // descriptors, while the strangers are still connected.
    let socket = within(Socket::<Probe>::connect(&addr))
        .await
        .expect("connect");
    assert_eq!(within(socket.sum(vec![1, 2, 3])).await.unwrap(), 6);
    let failures = within(socket.accept_failures()).await.unwrap();
    assert!(failures > 0, "no accept failure was counted");
    socket.close().await;
    drop(strangers);
    drop(child.stdin.take());
    let status = within(child.wait()).await.expect("wait");
    assert!(status.success(), "fd_limited_server: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failures_are_counted_and_the_server_recovers_tcp() {
    out_of_descriptors("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failures_are_counted_and_the_server_recovers_unix() {
    out_of_descriptors("unix").await;
}
