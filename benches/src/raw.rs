//! The raw tokio baseline: `LengthDelimitedCodec` frames carrying postcard,
//! written by hand, with its own minimal multiplexing by request id.
//!
//! The server answers frames inline: it decodes every frame that is already
//! buffered, appends the replies to one buffer and writes it once. In
//! `fanout` mode each connection instead gets a writer task fed by a channel
//! of pre-encoded `Bytes`, so that one connection's `Fanout` can reach the
//! others.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use crate::api::{put_frame, RawMsg, RawReply, NUMS, SUM, TICK};
use crate::child::Target;
use crate::BoxError;

type Peers = Mutex<Vec<(u64, mpsc::UnboundedSender<Bytes>)>>;

#[derive(Default)]
struct State {
    events: AtomicU64,
    next_id: AtomicU64,
    peers: Peers,
}

/// Connects and splits; `$body` sees the read and write halves by name.
macro_rules! with_halves {
    ($target:expr, |$r:ident, $w:ident| $body:expr) => {
        match $target {
            Target::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let ($r, $w) = stream.into_split();
                $body
            }
            Target::Unix(path) => {
                let stream = UnixStream::connect(path).await?;
                let ($r, $w) = stream.into_split();
                $body
            }
            Target::Tls(..) => return Err("the raw baseline has no TLS".into()),
        }
    };
}

// ---- server ----------------------------------------------------------------

/// Serves until the future is dropped. Prints the ready line.
pub async fn serve(unix: Option<&str>, fanout: bool) -> Result<(), BoxError> {
    let state = Arc::new(State::default());
    if let Some(path) = unix {
        let listener = UnixListener::bind(path)?;
        println!("ready unix {path}");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let (r, w) = stream.into_split();
                    tokio::spawn(connection(r, w, state.clone(), fanout));
                }
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
                    let (r, w) = stream.into_split();
                    tokio::spawn(connection(r, w, state.clone(), fanout));
                }
                Err(e) => accept_error(e).await,
            }
        }
    }
}

async fn accept_error(e: std::io::Error) {
    eprintln!("raw server: accept: {e}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Where a connection's replies go.
enum Sink<W> {
    Inline(W),
    Writer(mpsc::UnboundedSender<Bytes>),
}

async fn connection<R, W>(r: R, w: W, state: Arc<State>, fanout: bool)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let me = state.next_id.fetch_add(1, Ordering::Relaxed);
    let mut sink = if fanout {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(w, rx));
        state.peers.lock().unwrap().push((me, tx.clone()));
        Sink::Writer(tx)
    } else {
        Sink::Inline(w)
    };
    let mut reader = FramedRead::new(r, LengthDelimitedCodec::new());
    let mut out = BytesMut::new();
    while let Some(Ok(frame)) = reader.next().await {
        handle(&frame, &mut out, &state, me);
        while out.len() < 64 * 1024 {
            match reader.next().now_or_never() {
                Some(Some(Ok(frame))) => handle(&frame, &mut out, &state, me),
                _ => break,
            }
        }
        if out.is_empty() {
            continue;
        }
        match &mut sink {
            Sink::Inline(w) => {
                if w.write_all(&out).await.is_err() {
                    break;
                }
                out.clear();
            }
            Sink::Writer(tx) => {
                if tx.send(out.split().freeze()).is_err() {
                    break;
                }
            }
        }
    }
    if fanout {
        state.peers.lock().unwrap().retain(|(id, _)| *id != me);
    }
}

fn handle(frame: &[u8], out: &mut BytesMut, state: &State, me: u64) {
    match postcard::from_bytes::<RawMsg>(frame) {
        Ok(RawMsg::Sum { id, nums }) => put_frame(
            out,
            &RawReply {
                id,
                value: nums.iter().sum(),
            },
        ),
        Ok(RawMsg::Tick(_)) => {
            state.events.fetch_add(1, Ordering::Relaxed);
        }
        Ok(RawMsg::Count { id }) => {
            let value = state.events.load(Ordering::Relaxed) as i64;
            put_frame(out, &RawReply { id, value });
        }
        Ok(RawMsg::Fanout { id, n }) => {
            let mut tick = BytesMut::new();
            put_frame(&mut tick, &RawMsg::Tick(TICK));
            let tick = tick.freeze();
            let peers = state.peers.lock().unwrap().clone();
            for _ in 0..n {
                for (peer, tx) in &peers {
                    if *peer != me {
                        let _ = tx.send(tick.clone());
                    }
                }
            }
            put_frame(
                out,
                &RawReply {
                    id,
                    value: i64::from(n),
                },
            );
        }
        Err(e) => eprintln!("raw server: bad frame: {e}"),
    }
}

/// Drains every ready buffer into one write.
async fn writer<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    let mut batch = BytesMut::new();
    while let Some(first) = rx.recv().await {
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if w.write_all(&batch).await.is_err() {
            return;
        }
        batch.clear();
    }
}

// ---- clients -----------------------------------------------------------------

fn reply(frame: &[u8]) -> Result<RawReply, BoxError> {
    Ok(postcard::from_bytes(frame)?)
}

async fn next_reply<R: AsyncRead + Unpin>(
    reader: &mut FramedRead<R, LengthDelimitedCodec>,
) -> Result<RawReply, BoxError> {
    let frame = reader.next().await.ok_or("the server hung up")??;
    reply(&frame)
}

/// `total` calls with `window` in flight on one connection; seconds taken.
pub async fn inflight(target: &Target, total: u64, window: u64) -> Result<f64, BoxError> {
    with_halves!(target, |r, w| inflight_on(r, w, total, window).await)
}

async fn inflight_on<R, W>(r: R, mut w: W, total: u64, window: u64) -> Result<f64, BoxError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FramedRead::new(r, LengthDelimitedCodec::new());
    let mut out = BytesMut::new();
    // Slot `id % window` holds the id in flight there: the pending table.
    let mut pending = vec![u64::MAX; window as usize];
    let start = Instant::now();
    let mut sent = 0;
    while sent < total.min(window) {
        pending[(sent % window) as usize] = sent;
        put_frame(
            &mut out,
            &RawMsg::Sum {
                id: sent,
                nums: NUMS,
            },
        );
        sent += 1;
    }
    w.write_all(&out).await?;
    out.clear();
    let mut done = 0;
    while done < total {
        let mut frame = Some(reader.next().await.ok_or("the server hung up")??);
        while let Some(f) = frame.take() {
            let RawReply { id, value } = reply(&f)?;
            let slot = &mut pending[(id % window) as usize];
            if *slot != id || value != SUM {
                return Err(format!("unexpected reply {id} = {value}").into());
            }
            *slot = u64::MAX;
            done += 1;
            if sent < total {
                pending[(sent % window) as usize] = sent;
                put_frame(
                    &mut out,
                    &RawMsg::Sum {
                        id: sent,
                        nums: NUMS,
                    },
                );
                sent += 1;
            }
            if let Some(Some(next)) = reader.next().now_or_never() {
                frame = Some(next?);
            }
        }
        if !out.is_empty() {
            w.write_all(&out).await?;
            out.clear();
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// `calls` sequential calls; the p50 of their round trips, in seconds.
pub async fn latency(target: &Target, calls: usize) -> Result<f64, BoxError> {
    with_halves!(target, |r, w| latency_on(r, w, calls).await)
}

async fn latency_on<R, W>(r: R, mut w: W, calls: usize) -> Result<f64, BoxError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FramedRead::new(r, LengthDelimitedCodec::new());
    let mut out = BytesMut::new();
    let mut times = Vec::with_capacity(calls);
    for id in 0..calls as u64 {
        let start = Instant::now();
        put_frame(&mut out, &RawMsg::Sum { id, nums: NUMS });
        w.write_all(&out).await?;
        out.clear();
        let r = next_reply(&mut reader).await?;
        times.push(start.elapsed().as_secs_f64());
        if r.id != id || r.value != SUM {
            return Err("unexpected reply".into());
        }
    }
    Ok(crate::report::percentile(&mut times, 0.5))
}

/// `n` one-way events written 64 per write, then `Count` until the server
/// has them all; seconds taken.
pub async fn events(target: &Target, n: u64) -> Result<f64, BoxError> {
    with_halves!(target, |r, w| events_on(r, w, n).await)
}

async fn count<R, W>(
    reader: &mut FramedRead<R, LengthDelimitedCodec>,
    w: &mut W,
    id: u64,
) -> Result<u64, BoxError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    put_frame(&mut out, &RawMsg::Count { id });
    w.write_all(&out).await?;
    Ok(next_reply(reader).await?.value as u64)
}

async fn events_on<R, W>(r: R, mut w: W, n: u64) -> Result<f64, BoxError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FramedRead::new(r, LengthDelimitedCodec::new());
    let base = count(&mut reader, &mut w, 0).await?;
    let mut out = BytesMut::new();
    let start = Instant::now();
    for i in 0..n {
        put_frame(&mut out, &RawMsg::Tick(TICK));
        if (i + 1) % 64 == 0 {
            w.write_all(&out).await?;
            out.clear();
        }
    }
    w.write_all(&out).await?;
    while count(&mut reader, &mut w, 1).await? < base + n {}
    Ok(start.elapsed().as_secs_f64())
}

/// `conns` connections each making `per` sequential calls at once; seconds
/// taken (connecting excluded).
pub async fn conns(target: &Target, conns: usize, per: u64) -> Result<f64, BoxError> {
    let mut ready = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let task = with_halves!(target, |r, w| tokio::spawn(async move {
            let _ = go_rx.await;
            sequential(r, w, per).await
        }));
        ready.push((go_tx, task));
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(conns);
    for (go, task) in ready {
        let _ = go.send(());
        tasks.push(task);
    }
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

async fn sequential<R, W>(r: R, mut w: W, calls: u64) -> Result<(), BoxError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FramedRead::new(r, LengthDelimitedCodec::new());
    let mut out = BytesMut::new();
    for id in 0..calls {
        put_frame(&mut out, &RawMsg::Sum { id, nums: NUMS });
        w.write_all(&out).await?;
        out.clear();
        let r = next_reply(&mut reader).await?;
        if r.id != id || r.value != SUM {
            return Err("unexpected reply".into());
        }
    }
    Ok(())
}

/// One call on an unsplit stream, reading the reply by hand.
async fn call_once<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Result<(), BoxError> {
    let mut out = BytesMut::new();
    put_frame(&mut out, &RawMsg::Sum { id: 0, nums: NUMS });
    s.write_all(&out).await?;
    let len = s.read_u32().await? as usize;
    let mut body = vec![0; len];
    s.read_exact(&mut body).await?;
    if reply(&body)?.value != SUM {
        return Err("unexpected reply".into());
    }
    Ok(())
}

/// Opens `n` connections, makes one call on each, and holds them until the
/// returned value is dropped.
pub async fn open_idle(target: &Target, n: usize) -> Result<Vec<Box<dyn Send>>, BoxError> {
    let mut held: Vec<Box<dyn Send>> = Vec::with_capacity(n);
    for _ in 0..n {
        match target {
            Target::Tcp(addr) => {
                let mut s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                call_once(&mut s).await?;
                held.push(Box::new(s));
            }
            Target::Unix(path) => {
                let mut s = UnixStream::connect(path).await?;
                call_once(&mut s).await?;
                held.push(Box::new(s));
            }
            Target::Tls(..) => return Err("the raw baseline has no TLS".into()),
        }
    }
    Ok(held)
}

/// Receivers for the broadcast workload: `n` connections, each counting the
/// `Tick` frames it reads into `counter`, waking `done` at `target`.
pub struct Receivers {
    _held: Vec<Box<dyn Send>>,
    counter: Arc<AtomicU64>,
    target: Arc<AtomicU64>,
    done: Arc<tokio::sync::Notify>,
}

/// Connects `n` receivers (each makes one call first, so the server has
/// registered it).
pub async fn receivers(target: &Target, n: usize) -> Result<Receivers, BoxError> {
    let counter = Arc::new(AtomicU64::new(0));
    let goal = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(tokio::sync::Notify::new());
    let mut held: Vec<Box<dyn Send>> = Vec::with_capacity(n);
    for _ in 0..n {
        let (counter, goal, done) = (counter.clone(), goal.clone(), done.clone());
        with_halves!(target, |r, w| {
            let mut w = w;
            let mut out = BytesMut::new();
            put_frame(&mut out, &RawMsg::Sum { id: 0, nums: NUMS });
            w.write_all(&out).await?;
            let mut reader = FramedRead::new(r, LengthDelimitedCodec::new());
            next_reply(&mut reader).await?;
            tokio::spawn(async move {
                while let Some(Ok(frame)) = reader.next().await {
                    if let Ok(RawMsg::Tick(_)) = postcard::from_bytes::<RawMsg>(&frame) {
                        let seen = counter.fetch_add(1, Ordering::Relaxed) + 1;
                        if seen == goal.load(Ordering::Relaxed) {
                            done.notify_one();
                        }
                    }
                }
            });
            held.push(Box::new(w));
        });
    }
    Ok(Receivers {
        _held: held,
        counter,
        target: goal,
        done,
    })
}

/// Asks the server (on a control connection) to send `events` ticks to the
/// `clients` receivers; seconds until all have arrived.
pub async fn broadcast(
    target: &Target,
    rx: &Receivers,
    clients: u64,
    events: u32,
) -> Result<f64, BoxError> {
    let goal = clients * u64::from(events);
    rx.counter.store(0, Ordering::Relaxed);
    rx.target.store(goal, Ordering::Relaxed);
    with_halves!(target, |r, w| {
        let mut w = w;
        let mut reader = FramedRead::new(r, LengthDelimitedCodec::new());
        let mut out = BytesMut::new();
        put_frame(&mut out, &RawMsg::Fanout { id: 0, n: events });
        let start = Instant::now();
        w.write_all(&out).await?;
        next_reply(&mut reader).await?;
        if tokio::time::timeout(Duration::from_secs(60), rx.done.notified())
            .await
            .is_err()
        {
            let got = rx.counter.load(Ordering::Relaxed);
            return Err(format!("raw broadcast: {got} of {goal} deliveries").into());
        }
        Ok(start.elapsed().as_secs_f64())
    })
}
