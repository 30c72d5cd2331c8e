//! Connection middleware: accept with data attached, refuse with a reason,
//! several in order, peer credentials on Unix sockets.

use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use netsock::{Error, Handshake, RejectReason, Server, Socket};
use tests::api::{Api, ApiEmit, ApiHandle};
use tests::{on_both_transports, within, TempDir, Transport};
use tokio::sync::mpsc;

/// Who the middleware says the client is.
#[derive(Debug, PartialEq)]
struct User(String);

/// A server that admits tokens "alice-token" and "bob-token", reports each
/// admitted socket's `User` and peer credentials, and answers `Sum`.
#[allow(clippy::type_complexity)]
async fn server(
    t: Transport,
) -> (
    Server<Api>,
    mpsc::UnboundedReceiver<(Option<String>, Option<netsock::PeerCred>)>,
    Arc<Mutex<Vec<&'static str>>>,
    TempDir,
) {
    let dir = TempDir::new();
    let io = Server::<Api>::bind(t.addr(&dir)).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let first = order.clone();
    io.middleware(move |hs: Handshake| {
        first.lock().unwrap().push("first");
        async move { Ok(hs) }
    });
    let second = order.clone();
    io.middleware(move |mut hs: Handshake| {
        second.lock().unwrap().push("second");
        async move {
            match hs.auth::<String>().as_deref() {
                Some("alice-token") => hs.insert(User("alice".into())),
                Some("bob-token") => hs.insert(User("bob".into())),
                Some("panic") => panic!("checker crashed"),
                _ => return Err("a valid token is required".into()),
            }
            Ok(hs)
        }
    });
    let (tx, rx) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Api>| {
        let tx = tx.clone();
        async move {
            let user = socket.data::<User>().map(|u| u.0.clone());
            let _ = tx.send((user, socket.peer_cred()));
            let me = socket.clone();
            socket.on_sum(move |numbers| {
                // Data attached by the middleware is readable in handlers.
                let bonus = if me.data::<User>().is_some_and(|u| u.0 == "bob") {
                    100
                } else {
                    0
                };
                async move { numbers.iter().sum::<i64>() + bonus }
            });
            Ok(())
        }
    });
    io.spawn();
    (io, rx, order, dir)
}

on_both_transports!(
    accepts_and_attaches_data,
    refuses_with_a_reason,
    runs_in_order
);

async fn accepts_and_attaches_data(t: Transport) {
    let (io, mut admitted, _order, _dir) = server(t).await;
    let alice = within(
        Socket::<Api>::builder()
            .auth_value("alice-token")
            .unwrap()
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    let (user, cred) = within(admitted.recv()).await.unwrap();
    assert_eq!(user.as_deref(), Some("alice"));
    assert_eq!(within(alice.sum(vec![1, 2])).await.unwrap(), 3);
    let bob = within(
        Socket::<Api>::builder()
            .auth_value("bob-token")
            .unwrap()
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    assert_eq!(
        within(admitted.recv()).await.unwrap().0.as_deref(),
        Some("bob")
    );
    assert_eq!(within(bob.sum(vec![1, 2])).await.unwrap(), 103);

    match t {
        Transport::Tcp => assert_eq!(cred, None),
        Transport::Unix => {
            // Our own uid and gid, as the owner of a file we create.
            let probe = own_uid_gid();
            let cred = cred.expect("credentials on a Unix socket");
            assert_eq!((cred.uid, cred.gid), probe);
            assert_eq!(cred.pid, Some(std::process::id() as i32));
        }
    }
    io.close().await;
}

fn own_uid_gid() -> (u32, u32) {
    let dir = TempDir::new();
    let path = dir.path().join("probe");
    std::fs::write(&path, b"").unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    (meta.uid(), meta.gid())
}

async fn refuses_with_a_reason(t: Transport) {
    let (io, mut admitted, _order, _dir) = server(t).await;
    for builder in [
        Socket::<Api>::builder(),
        Socket::<Api>::builder().auth_value("mallory").unwrap(),
        Socket::<Api>::builder().auth(vec![0xff, 0xfe]),
    ] {
        let err = within(builder.connect(io.local_addr())).await.unwrap_err();
        assert!(
            matches!(&err, Error::Rejected(RejectReason::Refused(r)) if r == "a valid token is required"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("a valid token is required"),
            "{err}"
        );
    }
    // A middleware that panics refuses the client; the server carries on.
    let err = within(
        Socket::<Api>::builder()
            .auth_value("panic")
            .unwrap()
            .connect(io.local_addr()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected(RejectReason::Refused(r)) if r.contains("checker crashed")),
        "{err:?}"
    );
    assert!(io.sockets().is_empty());
    let alice = within(
        Socket::<Api>::builder()
            .auth_value("alice-token")
            .unwrap()
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    assert_eq!(
        within(admitted.recv()).await.unwrap().0.as_deref(),
        Some("alice")
    );
    within(alice.emit_message("hi".into(), 1)).await.unwrap();
    io.close().await;
}

async fn runs_in_order(t: Transport) {
    let (io, mut admitted, order, _dir) = server(t).await;
    let _a = within(
        Socket::<Api>::builder()
            .auth_value("alice-token")
            .unwrap()
            .connect(io.local_addr()),
    )
    .await
    .unwrap();
    within(admitted.recv()).await.unwrap();
    let _ = within(Socket::<Api>::builder().connect(io.local_addr()))
        .await
        .unwrap_err();
    assert_eq!(
        *order.lock().unwrap(),
        vec!["first", "second", "first", "second"]
    );
    io.close().await;
}
