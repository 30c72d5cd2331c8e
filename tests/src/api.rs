//! The event enum the integration tests speak, and a server that answers it.

use std::sync::Arc;
use std::time::Duration;

use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{TempDir, Transport};

/// Everything the test server and clients exchange.
#[derive(Events, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Api {
    /// A chat line.
    Message { text: String, n: u32 },
    /// Arbitrary bytes, one way.
    Blob(Vec<u8>),
    /// Adds numbers.
    #[request(response = i64)]
    Sum(Vec<i64>),
    /// Never answers; the handler reports when it is dropped.
    #[request(response = ())]
    Hang,
    /// The handler panics.
    #[request(response = ())]
    Panic,
    /// Replies with `n` zero bytes.
    #[request(response = Vec<u8>)]
    Zeros(u32),
    /// Nobody handles this.
    #[request(response = String)]
    Unhandled,
}

/// What `fd_limited_server` answers.
#[derive(Events, Serialize, Deserialize, Debug)]
pub enum Probe {
    /// Adds numbers.
    #[request(response = i64)]
    Sum(Vec<i64>),
    /// The server's `accept_failures` count.
    #[request(response = u64)]
    AcceptFailures,
}

/// What the test server observed.
#[derive(Debug)]
pub struct Seen {
    /// Each server-side socket as its `on_connection` completes.
    pub connected: mpsc::UnboundedReceiver<Socket<Api>>,
    /// `Message` events received by the server, with the sender's id.
    pub messages: mpsc::UnboundedReceiver<(u64, String, u32)>,
    /// Fires when a `Hang` request starts, with the socket it came on.
    pub hang_started: mpsc::UnboundedReceiver<Socket<Api>>,
    /// Fires when a `Hang` handler's future is dropped (cancelled).
    pub hang_dropped: mpsc::UnboundedReceiver<()>,
}

struct OnDrop(Option<mpsc::UnboundedSender<()>>);
impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// A running test server on `transport` and what it observes. Keep the
/// `TempDir` alive as long as the server.
pub async fn serve(transport: Transport) -> (Server<Api>, Seen, TempDir) {
    serve_with(transport, Server::<Api>::builder()).await
}

/// Like [`serve`], with options.
pub async fn serve_with(
    transport: Transport,
    builder: netsock::ServerBuilder<Api>,
) -> (Server<Api>, Seen, TempDir) {
    let dir = TempDir::new();
    let io = builder.bind(transport.addr(&dir)).await.expect("bind");
    let (connected_tx, connected) = mpsc::unbounded_channel();
    let (messages_tx, messages) = mpsc::unbounded_channel();
    let (hang_tx, hang_started) = mpsc::unbounded_channel();
    let (dropped_tx, hang_dropped) = mpsc::unbounded_channel();
    let txs = Arc::new((connected_tx, messages_tx, hang_tx, dropped_tx));
    io.on_connection(move |socket: Socket<Api>| {
        let txs = txs.clone();
        async move {
            let id = socket.id().0;
            let messages = txs.1.clone();
            socket.on_message(move |text, n| {
                let _ = messages.send((id, text, n));
                async {}
            });
            socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
            let (hang, dropped, me) = (txs.2.clone(), txs.3.clone(), socket.clone());
            socket.on_hang(move || {
                let _ = hang.send(me.clone());
                let guard = OnDrop(Some(dropped.clone()));
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await
                }
            });
            socket.on_panic(|| async { panic!("the handler blew up") });
            socket.on_zeros(|n| async move { vec![0u8; n as usize] });
            let _ = txs.0.send(socket.clone());
            Ok(())
        }
    });
    io.spawn();
    let seen = Seen {
        connected,
        messages,
        hang_started,
        hang_dropped,
    };
    (io, seen, dir)
}

/// A client that answers `Sum` too, so the server can call it.
pub async fn client(io: &Server<Api>) -> Socket<Api> {
    let socket = Socket::<Api>::connect(io.local_addr())
        .await
        .expect("connect");
    socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() * 10 });
    socket
}

/// A short request timeout for tests that expect one.
pub const SHORT: Duration = Duration::from_millis(200);
