//! Session recovery, compiled and run: a server streams numbered ticks to a
//! client through a small proxy that cuts the connection twice, in the
//! middle of the stream; the client, built with `Recovery`, receives every
//! tick once and in order, and a call made across the cuts is answered once.
//!
//! ```text
//! cargo run --example recovery
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use netsock::{Events, Recovery, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TICKS: u32 = 100_000;

/// A stream of ticks, and a request the server counts.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Feed {
    Tick(u32),
    /// Adds the numbers; the server counts how often it ran.
    #[request(response = i64)]
    Sum(Vec<i64>),
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let io = Server::<Feed>::bind("127.0.0.1:0").await?;
    let runs = Arc::new(AtomicU32::new(0));
    let (connected_tx, mut connected) = mpsc::unbounded_channel();
    io.on_connection({
        let runs = runs.clone();
        move |socket: Socket<Feed>| {
            let runs = runs.clone();
            socket.on_sum(move |numbers| {
                runs.fetch_add(1, Ordering::SeqCst);
                async move { numbers.iter().sum::<i64>() }
            });
            let _ = connected_tx.send(socket);
            async { Ok(()) }
        }
    });
    io.spawn();
    let netsock::Addr::Tcp { host, port } = io.local_addr() else {
        return Err("not a TCP address".into());
    };
    let proxy = Proxy::start(format!("{host}:{port}")).await?;

    // ANCHOR: client
    let socket = Socket::<Feed>::builder()
        .recovery(Recovery::DEFAULT) // ask the server for a session
        .connect(proxy.addr.as_str())
        .await?;
    socket.on_reconnect(|r| async move {
        // `recovered`: the session was resumed, nothing was lost or doubled.
        println!("back after {:?}: recovered = {}", r.offline, r.recovered);
    });
    // ANCHOR_END: client
    let (ticks_tx, mut ticks) = mpsc::unbounded_channel();
    socket.on_tick(move |n| {
        let _ = ticks_tx.send(n);
        async {}
    });

    let server_side = connected.recv().await.ok_or("no connection")?;
    tokio::spawn(async move {
        for n in 1..=TICKS {
            if server_side.emit_tick(n).await.is_err() {
                return;
            }
        }
    });
    let call = tokio::spawn({
        let socket = socket.clone();
        async move { socket.sum(vec![20, 22]).await }
    });
    let mut expected = 1;
    while expected <= TICKS {
        let n = ticks.recv().await.ok_or("the client ended")?;
        if n != expected {
            return Err(format!("tick {n} arrived where {expected} was due").into());
        }
        // Two cuts, mid-stream: the bytes in flight are lost with them.
        if n == TICKS / 3 || n == 2 * TICKS / 3 {
            println!("cut after tick {n}: {} connection(s) dropped", proxy.cut());
        }
        expected += 1;
    }
    let sum = call.await??;
    println!(
        "{TICKS} ticks, each once and in order; Sum = {sum}, run {} time(s) on the server",
        runs.load(Ordering::SeqCst)
    );
    socket.close().await;
    io.close().await;
    Ok(())
}

/// A TCP proxy whose connections can be cut, as a network fault would.
struct Proxy {
    addr: String,
    pipes: Arc<std::sync::Mutex<JoinSet<()>>>,
}

impl Proxy {
    async fn start(target: String) -> Result<Proxy, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let pipes = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        tokio::spawn({
            let pipes = pipes.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        continue;
                    };
                    if let Ok(mut pipes) = pipes.lock() {
                        pipes.spawn(async move {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        });
                    }
                }
            }
        });
        Ok(Proxy { addr, pipes })
    }

    /// Drops every connection through the proxy now.
    fn cut(&self) -> usize {
        let Ok(mut pipes) = self.pipes.lock() else {
            return 0;
        };
        while pipes.try_join_next().is_some() {}
        let cut = pipes.len();
        pipes.abort_all();
        cut
    }
}
