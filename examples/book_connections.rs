//! The book's Addresses, Rooms and broadcast, Middleware and Reliability
//! chapters, compiled and run: addresses, options, sending to every client,
//! auth bytes, and closing.
//!
//! ```text
//! cargo run --example book_connections
//! ```

use std::time::Duration;

use netsock::{
    Addr, CloseReason, DisconnectReason, Events, Heartbeat, SchemaCheck, Server, Socket,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the server pushes to its clients.
#[derive(Events, Serialize, Deserialize, Debug)]
enum News {
    Headline { text: String },
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // ANCHOR: addrs
    assert_eq!("3000".parse::<Addr>()?, Addr::tcp("127.0.0.1", 3000)); // loopback only
    assert_eq!("0.0.0.0:3000".parse::<Addr>()?, Addr::tcp("0.0.0.0", 3000));
    assert_eq!("[::1]:3000".parse::<Addr>()?, Addr::tcp("::1", 3000));
    assert_eq!(
        "/tmp/app.sock".parse::<Addr>()?,
        Addr::unix("/tmp/app.sock")
    );
    assert_eq!("unix://app.sock".parse::<Addr>()?, Addr::unix("app.sock"));
    assert_eq!(
        "tcp://localhost:80".parse::<Addr>()?,
        Addr::tcp("localhost", 80)
    );
    assert!("localhost".parse::<Addr>().is_err()); // neither a port nor a path
                                                   // ANCHOR_END: addrs

    // ANCHOR: bind
    let tcp = Server::<News>::bind(0).await?; // port 0: the OS picks a free port
    println!("listening on {}", tcp.local_addr()); // tcp://127.0.0.1:PORT
    let dir = std::env::temp_dir().join(format!("netsock-book-conn-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("news.sock");
    let io = Server::<News>::bind(&path).await?; // a Unix socket file
    assert!(matches!(
        Server::<News>::bind(&path).await,
        Err(netsock::Error::AddrInUse { .. }) // a live server owns it
    ));
    // ANCHOR_END: bind
    tcp.close().await;

    // ANCHOR: server_options
    let options = Server::<News>::builder()
        .handshake_timeout(Duration::from_secs(5)) // default 10 s
        .request_timeout(Duration::from_secs(10)) // default 10 s
        .max_frame_size(1024 * 1024) // default 8 MiB, at least 1 KiB
        .queue_capacity(256) // frames; default 1024
        .max_concurrent_requests(64) // per connection; default 1024
        .write_timeout(Duration::from_secs(10)) // a peer that stops reading; default 30 s
        .max_handshakes(64) // strangers in their handshake at once; default 256
        .max_handshake_size(16 * 1024) // first frame, auth included; default 4 KiB
        .heartbeat(Heartbeat::every(Duration::from_secs(10))) // default 25 s, then 20 s to answer
        .schema_check(SchemaCheck::Strict); // default: refuse a peer built from another enum
                                            // ANCHOR_END: server_options
    let strict = options.bind(dir.join("strict.sock")).await?;
    strict.close().await;

    let (connected_tx, mut connected) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<News>| {
        let connected = connected_tx.clone();
        async move {
            let _ = connected.send(socket);
            Ok(())
        }
    });
    let running = io.spawn();

    // ANCHOR: client_options
    let socket = Socket::<News>::builder()
        .handshake_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(2))
        .max_frame_size(64 * 1024)
        .auth(b"token-123".to_vec()) // sent in the handshake
        .connect(&path)
        .await?;
    // ANCHOR_END: client_options
    let other = Socket::<News>::builder()
        .no_reconnect() // its first disconnect is its last
        .connect(&path)
        .await?;
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    for client in [&socket, &other] {
        let heard = heard_tx.clone();
        let id = client.id();
        client.on_headline(move |text| {
            let _ = heard.send((id, text));
            async {}
        });
    }
    let first = connected.recv().await.ok_or("no connection")?;
    connected.recv().await.ok_or("no connection")?;

    // ANCHOR: broadcast
    // Every connected socket, in id order (net-socket.io's `io.sockets`):
    println!("{} clients connected", io.sockets().len());
    // To all of them; the event is encoded once:
    io.emit_headline("netsock has a book".into()).await?;
    // To all but one (more targets in the Rooms and broadcast chapter):
    io.except(first.id())
        .emit_headline("not for the first client".into())
        .await?;
    // ANCHOR_END: broadcast
    for _ in 0..3 {
        let (id, text) = heard.recv().await.ok_or("no headline")?;
        println!("client {id} heard {text:?}");
    }

    // ANCHOR: close
    socket.on_disconnect(|reason| async move { println!("client: {reason}") });
    socket.close().await; // sends Close(Normal) after the queued frames
    let server_side = io.socket(first.id()).unwrap_or(first);
    assert_eq!(
        server_side.closed().await,
        DisconnectReason::ClosedByPeer(CloseReason::Normal)
    );
    io.close().await; // stops accepting, closes the rest, removes the socket file
    let reason = other.closed().await; // for good: `other` has `no_reconnect()`
    assert!(matches!(
        reason,
        DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_))
    ));
    // ANCHOR_END: close
    running.await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
