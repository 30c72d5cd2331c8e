//! The same workloads through netsock's public API, as a user writes them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use netsock::{Addr, ClientTls, Server, ServerTls, Socket, TlsRoots};

use crate::api::{Api, ApiEmit, ApiHandle, NUMS, SUM, TICK};
use crate::child::Target;
use crate::BoxError;

/// Serves until the future is dropped. Prints the ready line. With `tls`,
/// serves TLS with `cert.pem` and `key.pem` from that directory.
pub async fn serve(unix: Option<&str>, tls: Option<&Path>) -> Result<(), BoxError> {
    serve_with(unix, tls, None).await
}

/// Serves as a node of the cluster `bench` through the Redis at
/// `redis_url`.
pub async fn serve_cluster(unix: Option<&str>, redis_url: &str) -> Result<(), BoxError> {
    let driver = netsock_redis::RedisDriver::connect(redis_url).await?;
    let adapter = netsock::adapter::Adapter::new(driver).name("bench");
    serve_with(unix, None, Some(adapter)).await
}

async fn serve_with(
    unix: Option<&str>,
    tls: Option<&Path>,
    adapter: Option<netsock::adapter::Adapter>,
) -> Result<(), BoxError> {
    let mut builder = Server::<Api>::builder().max_connections(19_000);
    if let Some(adapter) = adapter {
        builder = builder.adapter(adapter);
    }
    if let Some(dir) = tls {
        builder = builder.tls(ServerTls::from_pem_files(
            dir.join("cert.pem"),
            dir.join("key.pem"),
        )?);
    }
    let io = match unix {
        Some(path) => builder.bind(PathBuf::from(path)).await?,
        None => builder.bind(0).await?,
    };
    let events = Arc::new(AtomicU64::new(0));
    io.on_connection(move |socket: Socket<Api>| {
        let events = events.clone();
        async move {
            socket.on_sum(|nums| async move { nums.iter().sum::<i64>() });
            let seen = events.clone();
            socket.on_tick(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
                async {}
            });
            socket.on_count(move || {
                let n = events.load(Ordering::Relaxed);
                async move { n }
            });
            socket.on_ticks(|n| async move { futures_util::stream::repeat(TICK).take(n as usize) });
            let me = socket.clone();
            socket.on_fanout(move |n| {
                let others = me.broadcast();
                async move {
                    for _ in 0..n {
                        let _ = others.emit(Api::Tick(TICK)).await;
                    }
                    u64::from(n)
                }
            });
            Ok(())
        }
    });
    match (io.local_addr(), unix) {
        (_, Some(path)) => println!("ready unix {path}"),
        (Addr::Tcp { host, port }, None) => println!("ready tcp {host}:{port}"),
        (Addr::Tls { host, port }, None) => println!("ready tls {host}:{port}"),
        (other, None) => return Err(format!("unexpected address {other}").into()),
    }
    io.run().await?;
    Ok(())
}

/// Whether the clients `connect` makes ask for a recoverable session (the
/// `recovery` workload turns it on and off).
pub static RECOVERY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub async fn connect(target: &Target) -> Result<Socket<Api>, BoxError> {
    let recovery = RECOVERY
        .load(Ordering::Relaxed)
        .then_some(netsock::Recovery::DEFAULT);
    Ok(match target {
        Target::Tcp(addr) => {
            Socket::<Api>::builder()
                .recovery(recovery)
                .connect(addr.as_str())
                .await?
        }
        Target::Unix(path) => {
            Socket::<Api>::builder()
                .recovery(recovery)
                .connect(path)
                .await?
        }
        Target::Tls(addr, dir) => {
            Socket::<Api>::builder()
                .tls(client_tls(dir)?)
                .connect(format!("tls://{addr}"))
                .await?
        }
    })
}

/// One client TLS configuration for the process, as a program would have:
/// connections after the first resume its TLS session.
fn client_tls(dir: &Path) -> Result<ClientTls, BoxError> {
    static TLS: OnceLock<ClientTls> = OnceLock::new();
    if let Some(tls) = TLS.get() {
        return Ok(tls.clone());
    }
    let roots = TlsRoots::from_pem_file(dir.join("ca.pem"))?;
    Ok(TLS.get_or_init(|| ClientTls::with_roots(roots)).clone())
}

/// Opens `n` connections at once, makes one call on each; seconds taken,
/// connecting (and its handshakes) included.
pub async fn connect_many(target: &Target, n: usize) -> Result<f64, BoxError> {
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move {
                let socket = connect(&target).await?;
                if socket.sum(NUMS).await? != SUM {
                    return Err::<Socket<Api>, BoxError>("unexpected reply".into());
                }
                Ok(socket)
            })
        })
        .collect();
    let mut sockets = Vec::with_capacity(n);
    for task in tasks {
        sockets.push(task.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    for socket in sockets {
        socket.close().await;
    }
    Ok(secs)
}

/// `total` calls from `window` tasks sharing one connection; seconds taken.
pub async fn inflight(target: &Target, total: u64, window: u64) -> Result<f64, BoxError> {
    let socket = connect(target).await?;
    let left = Arc::new(AtomicI64::new(total as i64));
    let start = Instant::now();
    let tasks: Vec<_> = (0..window)
        .map(|_| {
            let (socket, left) = (socket.clone(), left.clone());
            tokio::spawn(async move {
                while left.fetch_sub(1, Ordering::Relaxed) > 0 {
                    if socket.sum(NUMS).await? != SUM {
                        return Err::<(), BoxError>("unexpected reply".into());
                    }
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    socket.close().await;
    Ok(secs)
}

/// `calls` sequential calls; the p50 of their round trips, in seconds.
pub async fn latency(target: &Target, calls: usize) -> Result<f64, BoxError> {
    let socket = connect(target).await?;
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        let value = socket.sum(NUMS).await?;
        times.push(start.elapsed().as_secs_f64());
        if value != SUM {
            return Err("unexpected reply".into());
        }
    }
    socket.close().await;
    Ok(crate::report::percentile(&mut times, 0.5))
}

/// `n` one-way events (the writer batches them), then `Count` until the
/// server has them all; seconds taken.
pub async fn events(target: &Target, n: u64) -> Result<f64, BoxError> {
    let socket = connect(target).await?;
    let base = socket.count().await?;
    let start = Instant::now();
    for _ in 0..n {
        socket.emit_tick(TICK).await?;
    }
    while socket.count().await? < base + n {}
    let secs = start.elapsed().as_secs_f64();
    socket.close().await;
    Ok(secs)
}

/// A stream of `n` 16-byte items from the server, read to its end;
/// seconds taken.
pub async fn stream(target: &Target, n: u64) -> Result<f64, BoxError> {
    let socket = connect(target).await?;
    let start = Instant::now();
    let mut items = socket.ticks(n).await?;
    let mut got = 0;
    while let Some(item) = items.next().await {
        item?;
        got += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    if got != n {
        return Err(format!("{got} items of {n}").into());
    }
    socket.close().await;
    Ok(secs)
}

/// `conns` connections each making `per` sequential calls at once; seconds
/// taken (connecting excluded).
pub async fn conns(target: &Target, conns: usize, per: u64) -> Result<f64, BoxError> {
    let mut sockets = Vec::with_capacity(conns);
    for _ in 0..conns {
        sockets.push(connect(target).await?);
    }
    let start = Instant::now();
    let tasks: Vec<_> = sockets
        .iter()
        .map(|socket| {
            let socket = socket.clone();
            tokio::spawn(async move {
                for _ in 0..per {
                    if socket.sum(NUMS).await? != SUM {
                        return Err::<(), BoxError>("unexpected reply".into());
                    }
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    for socket in sockets {
        socket.close().await;
    }
    Ok(secs)
}

/// Opens `n` connections, makes one call on each, and holds them.
pub async fn open_idle(target: &Target, n: usize) -> Result<Vec<Socket<Api>>, BoxError> {
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = connect(target).await?;
        if socket.sum(NUMS).await? != SUM {
            return Err("unexpected reply".into());
        }
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Receivers for the broadcast workload.
pub struct Receivers {
    _sockets: Vec<Socket<Api>>,
    counter: Arc<AtomicU64>,
    target: Arc<AtomicU64>,
    done: Arc<tokio::sync::Notify>,
}

/// Connects `n` receivers, spread over `targets` in turn, each counting the
/// `Tick`s it gets.
pub async fn receivers(targets: &[Target], n: usize) -> Result<Receivers, BoxError> {
    let counter = Arc::new(AtomicU64::new(0));
    let goal = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(tokio::sync::Notify::new());
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let socket = connect(&targets[i % targets.len()]).await?;
        let (counter, goal, done) = (counter.clone(), goal.clone(), done.clone());
        socket.on_tick(move |_| {
            let seen = counter.fetch_add(1, Ordering::Relaxed) + 1;
            if seen == goal.load(Ordering::Relaxed) {
                done.notify_one();
            }
            async {}
        });
        if socket.sum(NUMS).await? != SUM {
            return Err("unexpected reply".into());
        }
        sockets.push(socket);
    }
    Ok(Receivers {
        _sockets: sockets,
        counter,
        target: goal,
        done,
    })
}

impl Receivers {
    /// Closes every receiver.
    pub async fn close(self) {
        for socket in self._sockets {
            socket.close().await;
        }
    }
}

/// Asks the server (on a control connection) to broadcast `events` ticks to
/// the `clients` receivers; seconds until all have arrived.
pub async fn broadcast(
    target: &Target,
    rx: &Receivers,
    clients: u64,
    events: u32,
) -> Result<f64, BoxError> {
    let goal = clients * u64::from(events);
    rx.counter.store(0, Ordering::Relaxed);
    rx.target.store(goal, Ordering::Relaxed);
    let control = connect(target).await?;
    let start = Instant::now();
    control.fanout(events).await?;
    if tokio::time::timeout(Duration::from_secs(60), rx.done.notified())
        .await
        .is_err()
    {
        let got = rx.counter.load(Ordering::Relaxed);
        return Err(format!(
            "netsock broadcast: {got} of {goal} deliveries (a full queue drops events)"
        )
        .into());
    }
    let secs = start.elapsed().as_secs_f64();
    control.close().await;
    Ok(secs)
}
