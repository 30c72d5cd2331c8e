//! The same request through tarpc (the `tarpc` column): a `#[tarpc::service]`
//! with one method, [`Bench::sum`], served and called as tarpc's own
//! examples do, over `serde_transport` with its bincode codec in
//! `LengthDelimitedCodec` frames.
//!
//! The transports are built from tokio streams with `serde_transport::new`,
//! as tarpc's `tcp` and `unix` helpers build them, so that TCP connections
//! get `TCP_NODELAY` on both ends like the raw baseline's and netsock's.
//! The server runs each request as a task of its own (`execute(..)
//! .for_each(spawn)`), the pattern of tarpc's README; the client is one
//! `BenchClient` per connection, cloned into the tasks that share it.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tarpc::client;
use tarpc::context::{self, Context};
use tarpc::serde_transport;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::api::{NUMS, SUM};
use crate::child::Target;
use crate::BoxError;

/// The tarpc side's service: the request of the raw baseline's
/// `RawMsg::Sum` and netsock's `Api::Sum`.
#[tarpc::service]
pub trait Bench {
    /// Adds the numbers.
    async fn sum(nums: [i64; 8]) -> i64;
}

#[derive(Clone)]
struct BenchServer;

impl Bench for BenchServer {
    async fn sum(self, _: Context, nums: [i64; 8]) -> i64 {
        nums.iter().sum()
    }
}

// ---- server ----------------------------------------------------------------

async fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(fut);
}

/// One connection's channel, each request run as its own task.
fn channel<S>(stream: S)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let framed = Framed::new(stream, LengthDelimitedCodec::new());
    let transport = serde_transport::new(framed, Bincode::default());
    let requests = BaseChannel::with_defaults(transport)
        .execute(BenchServer.serve())
        .for_each(spawn);
    tokio::spawn(requests);
}

/// Serves until the future is dropped. Prints the ready line.
pub async fn serve(unix: Option<&str>) -> Result<(), BoxError> {
    if let Some(path) = unix {
        let listener = UnixListener::bind(path)?;
        println!("ready unix {path}");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => channel(stream),
                Err(e) => accept_error(e).await,
            }
        }
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("ready tcp {}", listener.local_addr()?);
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    stream.set_nodelay(true)?;
                    channel(stream);
                }
                Err(e) => accept_error(e).await,
            }
        }
    }
}

async fn accept_error(e: std::io::Error) {
    eprintln!("tarpc server: accept: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
}

// ---- clients -----------------------------------------------------------------

fn client<S>(stream: S) -> BenchClient
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let framed = Framed::new(stream, LengthDelimitedCodec::new());
    let transport = serde_transport::new(framed, Bincode::default());
    BenchClient::new(client::Config::default(), transport).spawn()
}

/// A client on a connection of its own; its dispatch task runs on the
/// current runtime until every clone is dropped.
pub async fn connect(target: &Target) -> Result<BenchClient, BoxError> {
    Ok(match target {
        Target::Tcp(addr) => {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            client(stream)
        }
        Target::Unix(path) => client(UnixStream::connect(Path::new(path)).await?),
        Target::Tls(..) => return Err("the tarpc side has no TLS".into()),
    })
}

async fn sum(client: &BenchClient) -> Result<(), BoxError> {
    if client.sum(context::current(), NUMS).await? != SUM {
        return Err("unexpected reply".into());
    }
    Ok(())
}

/// `total` calls from `window` tasks sharing one client; seconds taken.
pub async fn inflight(target: &Target, total: u64, window: u64) -> Result<f64, BoxError> {
    let client = connect(target).await?;
    let left = Arc::new(AtomicI64::new(total as i64));
    let start = Instant::now();
    let tasks: Vec<_> = (0..window)
        .map(|_| {
            let (client, left) = (client.clone(), left.clone());
            tokio::spawn(async move {
                while left.fetch_sub(1, Ordering::Relaxed) > 0 {
                    sum(&client).await?;
                }
                Ok::<(), BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// `calls` sequential calls; the p50 of their round trips, in seconds.
pub async fn latency(target: &Target, calls: usize) -> Result<f64, BoxError> {
    let client = connect(target).await?;
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        let value = client.sum(context::current(), NUMS).await?;
        times.push(start.elapsed().as_secs_f64());
        if value != SUM {
            return Err("unexpected reply".into());
        }
    }
    Ok(crate::report::percentile(&mut times, 0.5))
}

/// `conns` clients each making `per` sequential calls at once; seconds
/// taken (connecting excluded).
pub async fn conns(target: &Target, conns: usize, per: u64) -> Result<f64, BoxError> {
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        clients.push(connect(target).await?);
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                for _ in 0..per {
                    sum(&client).await?;
                }
                Ok::<(), BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Opens `n` connections, makes one call on each, and holds them.
pub async fn open_idle(target: &Target, n: usize) -> Result<Vec<BenchClient>, BoxError> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let client = connect(target).await?;
        sum(&client).await?;
        clients.push(client);
    }
    Ok(clients)
}
