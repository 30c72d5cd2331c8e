//! The `cluster` workload: netsock servers as nodes of one cluster through
//! a `redis-server` of the harness's own (from `PATH`, on a Unix socket in
//! the harness's temporary directory).
//!
//! * Broadcast: one event to 1,000 clients spread over 3 server processes,
//!   emitted on one of them, against the same broadcast to 1,000 clients of
//!   one server process (no adapter), deliveries/s. In the table the
//!   one-process figure is the "raw" column.
//! * Latency: a control client asks a server to broadcast one `Tick` to its
//!   one other client, which timestamps its arrival: p50 of the time from
//!   the request to the arrival, first on the one-process server (L1),
//!   then with the control client on node 0 and the receiver on node 1
//!   (L2). The netsock column is L2 − L1, what the hop through Redis and
//!   the other node adds. The "raw" column is the p50 of a raw Redis
//!   PUBLISH → message round trip (the `redis` crate, one publishing and
//!   one subscribed connection), measured in the same run.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use netsock::Socket;
use tokio::sync::mpsc;

use crate::api::{Api, ApiEmit, ApiHandle};
use crate::child::{self, Target};
use crate::report::{percentile, Row};
use crate::{ns, row, runtime, BoxError, Opts};

/// A `redis-server` on a Unix socket; killed when dropped.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    fn start(dir: &std::path::Path) -> Result<OwnRedis, BoxError> {
        let socket = dir.join("redis.sock");
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server from PATH: {e}"))?;
        let redis = OwnRedis {
            child,
            url: format!("redis+unix://{}", socket.display()),
        };
        let client = redis::Client::open(redis.url.as_str())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.get_connection().is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rows(opts: &Opts, rows: &mut Vec<Row>) {
    let clients = if opts.quick { 100 } else { 1_000 };
    let mut fan = row(
        &format!(
            "broadcast 1 event to {clients} clients, mt: 3 processes through Redis (netsock column) vs 1 process (raw column)"
        ),
        "TCP",
        "M deliveries/s",
        1e-6,
        true,
    );
    let mut hop = row(
        "emit to a client of another node: added p50 (netsock column) vs raw Redis PUBLISH→message p50 (raw column)",
        "TCP",
        "µs",
        1e6,
        false,
    );
    if let Err(e) = measure(opts, clients, &mut fan, &mut hop) {
        fan.error = Some(e.to_string());
        hop.error = Some(e.to_string());
    }
    rows.push(fan);
    rows.push(hop);
}

fn measure(opts: &Opts, clients: usize, fan: &mut Row, hop: &mut Row) -> Result<(), BoxError> {
    let redis = OwnRedis::start(&opts.dir)?;
    let single = child::spawn("netsock", false, "mt", "rpc", false, &opts.dir)?;
    let nodes = (0..3)
        .map(|_| child::spawn("cluster", false, "mt", &redis.url, false, &opts.dir))
        .collect::<Result<Vec<_>, _>>()?;
    let targets: Vec<Target> = nodes.iter().map(|n| n.target.clone()).collect();
    let rt = runtime(true);
    let events = opts.size(200) as u32;
    let total = clients as f64 * f64::from(events);
    rt.block_on(async {
        let one = ns::receivers(std::slice::from_ref(&single.target), clients).await?;
        let spread = ns::receivers(&targets, clients).await?;
        for rep in 0..=opts.reps {
            let a = total / ns::broadcast(&single.target, &one, clients as u64, events).await?;
            let b = total / ns::broadcast(&targets[0], &spread, clients as u64, events).await?;
            if rep > 0 {
                fan.raw.push(a);
                fan.netsock.push(b);
            }
        }
        one.close().await;
        spread.close().await;
        let samples = opts.size(2_000) as usize;
        for rep in 0..=opts.reps {
            let raw = redis_round_trip(&redis.url, samples).await?;
            let local = emit_latency(&single.target, &single.target, samples).await?;
            let remote = emit_latency(&targets[0], &targets[1], samples).await?;
            let added = remote - local;
            if rep > 0 {
                hop.raw.push(raw);
                hop.netsock.push(added);
            }
        }
        Ok::<(), BoxError>(())
    })?;
    drop(rt);
    Ok(())
}

/// The p50 of `n` PUBLISH → message round trips, in seconds.
async fn redis_round_trip(url: &str, n: usize) -> Result<f64, BoxError> {
    let client = redis::Client::open(url)?;
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let mut subscriber = client.get_async_pubsub().await?;
    subscriber.subscribe("bench#round-trip").await?;
    let mut messages = subscriber.on_message();
    let payload = [7u8; 40];
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        redis::cmd("PUBLISH")
            .arg("bench#round-trip")
            .arg(&payload[..])
            .query_async::<()>(&mut publisher)
            .await?;
        messages.next().await.ok_or("the subscription ended")?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(percentile(&mut times, 0.5))
}

/// The p50 of `n` single broadcasts, from the request of a client of
/// `from` to the arrival at a client of `to` (its only other socket), in
/// seconds.
async fn emit_latency(from: &Target, to: &Target, n: usize) -> Result<f64, BoxError> {
    let control = ns::connect(from).await?;
    let (receiver, mut arrivals) = timestamped(to).await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        control.fanout(1).await?;
        let wait = Duration::from_secs(10);
        let arrived = tokio::time::timeout(wait, arrivals.recv())
            .await?
            .ok_or("closed")?;
        times.push((arrived - start).as_secs_f64());
    }
    control.close().await;
    receiver.close().await;
    Ok(percentile(&mut times, 0.5))
}

/// A client of `target` that sends the arrival time of each `Tick`.
async fn timestamped(
    target: &Target,
) -> Result<(Socket<Api>, mpsc::UnboundedReceiver<Instant>), BoxError> {
    let socket = ns::connect(target).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Arc::new(tx);
    socket.on_tick(move |_| {
        let _ = tx.send(Instant::now());
        async {}
    });
    // A call makes sure the server has listed it before the first emit.
    socket.sum(crate::api::NUMS).await?;
    Ok((socket, rx))
}
