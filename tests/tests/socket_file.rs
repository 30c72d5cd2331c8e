//! The Unix socket file: stale files are replaced, a live server's file is
//! never taken, other files are never touched, and the file goes at close.

use netsock::{Error, Server};
use tests::api::{client, serve, Api, ApiEmit};
use tests::{within, TempDir, Transport};

#[tokio::test]
async fn stale_socket_file_is_replaced() {
    let dir = TempDir::new();
    let path = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // leaves the file
    assert!(path.exists());
    let io = Server::<Api>::bind(&path).await.unwrap();
    tokio::spawn({
        let io = io.clone();
        async move { io.run().await }
    });
    let socket = within(netsock::Socket::<Api>::connect(&path))
        .await
        .unwrap();
    assert!(socket.is_connected());
    io.close().await;
    assert!(!path.exists(), "close() removes the socket file");
}

#[tokio::test]
async fn live_socket_file_is_not_stolen() {
    let (io, _seen, _dir) = serve(Transport::Unix).await;
    let path = io.local_addr().as_path().unwrap().to_path_buf();
    let err = Server::<Api>::bind(&path).await.unwrap_err();
    assert!(matches!(err, Error::AddrInUse { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("another server is already listening"),
        "{err}"
    );
    // The first server is untouched.
    let socket = within(client(&io)).await;
    assert_eq!(within(socket.sum(vec![1, 2])).await.unwrap(), 3);
    io.close().await;
    assert!(!path.exists());
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_never_touched() {
    let dir = TempDir::new();
    let path = dir.path().join("precious.txt");
    std::fs::write(&path, "keep me").unwrap();
    let err = Server::<Api>::bind(&path).await.unwrap_err();
    assert!(matches!(err, Error::Bind { .. }), "{err:?}");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}

#[tokio::test]
async fn dropping_the_last_handle_removes_the_file() {
    let dir = TempDir::new();
    let path = dir.path().join("dropped.sock");
    let io = Server::<Api>::bind(&path).await.unwrap();
    assert!(path.exists());
    drop(io);
    assert!(!path.exists());
}
