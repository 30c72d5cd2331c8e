//! The Unix socket file: stale files are replaced, a live server's file is
//! never taken, other files are never touched, and the file goes at close.

use netsock::{Error, Server, SocketMode};
use tests::api::{client, serve, Api, ApiEmit};
use tests::{within, TempDir, Transport};

#[tokio::test]
async fn stale_socket_file_is_replaced() {
    let dir = TempDir::new();
    let path = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // leaves the file
    assert!(path.exists());
    let io = Server::<Api>::bind(&path).await.unwrap();
    io.spawn();
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

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn socket_file_is_owner_only_by_default_and_configurable() {
    let dir = TempDir::new();
    let path = dir.path().join("private.sock");
    let io = Server::<Api>::bind(&path).await.unwrap();
    assert_eq!(mode_of(&path), 0o600);
    // Nothing is left behind from the private bind directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("private.sock")]);
    io.close().await;

    let shared = dir.path().join("group.sock");
    let io = Server::<Api>::builder()
        .socket_mode(SocketMode::OWNER_AND_GROUP)
        .bind(&shared)
        .await
        .unwrap();
    assert_eq!(mode_of(&shared), 0o660);
    io.close().await;
}

/// Connects to `path` as user `nobody` (uid 65534) from another process.
/// `None` when that cannot be tried here (not root, or no python3).
fn connect_as_nobody(path: &std::path::Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let probe = path.with_extension("probe");
    std::fs::write(&probe, b"").unwrap();
    let root = std::fs::metadata(&probe).unwrap().uid() == 0;
    std::fs::remove_file(&probe).unwrap();
    if !root {
        println!("skipped: not running as root, cannot try another user");
        return None;
    }
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1]); print('connected')\nexcept PermissionError:\n print('denied')";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .uid(65534)
        .gid(65534)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            Some(String::from_utf8_lossy(&out.stdout).trim() == "connected")
        }
        Ok(out) => panic!("probe failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => {
            println!("skipped: python3 not found");
            None
        }
    }
}

#[tokio::test]
async fn another_user_cannot_connect_unless_allowed() {
    let dir = TempDir::new();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = dir.path().join("owner-only.sock");
    let io = Server::<Api>::bind(&path).await.unwrap();
    io.spawn();
    if let Some(connected) = tokio::task::spawn_blocking({
        let path = path.clone();
        move || connect_as_nobody(&path)
    })
    .await
    .unwrap()
    {
        assert!(!connected, "another user connected to a 0600 socket");
        let open = dir.path().join("open.sock");
        let io2 = Server::<Api>::builder()
            .socket_mode(SocketMode::EVERYONE)
            .bind(&open)
            .await
            .unwrap();
        io2.spawn();
        let connected = tokio::task::spawn_blocking(move || connect_as_nobody(&open))
            .await
            .unwrap();
        assert_eq!(connected, Some(true), "0666 lets others in");
        io2.close().await;
    }
    io.close().await;
}
