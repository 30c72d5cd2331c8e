//! netsock's benchmark harness: each workload through a hand-written raw
//! tokio baseline and through netsock, and the request-reply workloads
//! (`inflight`, `latency`, `conns`, `memory`) through tarpc as well, over
//! TCP (127.0.0.1) and Unix sockets, client and server in separate processes
//! (this binary run again as `netsock-bench serve ...`). Prints a Markdown
//! table of medians and min–max over the repetitions, and the ratios
//! netsock/raw and netsock/tarpc.
//!
//! ```text
//! cargo run --release -p netsock-bench -- all            # every workload
//! cargo run --release -p netsock-bench -- inflight events --reps 9
//! cargo run --release -p netsock-bench -- inflight latency conns memory --reps 5
//! cargo run --release -p netsock-bench -- all --quick --json
//! ```
//!
//! The tarpc side (module `tp`) needs the package's `tarpc` feature, on by
//! default; built without it, the tarpc column stays empty.
//!
//! Workloads: `codec`, `inflight`, `latency`, `events`, `stream`, `conns`,
//! `broadcast`, `memory`, `strangers`, `cluster`, `tls` (see `USAGE`).
//! Nothing here asserts on time.

mod api;
mod child;
mod cluster;
mod codec;
mod ns;
mod raw;
mod report;
#[cfg(feature = "tarpc")]
mod tp;

/// Built without the `tarpc` feature: the tarpc side is never run
/// ([`HAVE_TARPC`]), these only keep the workloads' code the same.
#[cfg(not(feature = "tarpc"))]
mod tp {
    use crate::child::Target;
    use crate::BoxError;

    const OFF: &str = "built without the `tarpc` feature";

    pub async fn serve(_: Option<&str>) -> Result<(), BoxError> {
        Err(OFF.into())
    }
    pub async fn inflight(_: &Target, _: u64, _: u64) -> Result<f64, BoxError> {
        Err(OFF.into())
    }
    pub async fn latency(_: &Target, _: usize) -> Result<f64, BoxError> {
        Err(OFF.into())
    }
    pub async fn conns(_: &Target, _: usize, _: u64) -> Result<f64, BoxError> {
        Err(OFF.into())
    }
    pub async fn open_idle(_: &Target, _: usize) -> Result<Vec<()>, BoxError> {
        Err(OFF.into())
    }
}

/// Whether this build has the tarpc side.
const HAVE_TARPC: bool = cfg!(feature = "tarpc");

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use child::Target;
use report::Row;
use tokio::io::AsyncReadExt;

/// Errors of the harness and its children.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
usage: netsock-bench [WORKLOAD...|all] [--reps N] [--quick] [--json] [--only raw|netsock|tarpc]

workloads (raw tokio baseline and netsock, TCP and Unix sockets, separate processes;
those marked + through tarpc too, the \"tarpc\" column):
  codec      encode/decode of one request frame, in process
  inflight + 256 calls in flight on one connection, 2-worker runtimes: calls/s
  latency  + 1 call in flight, current-thread runtimes, both processes on CPU 0: p50
  events     one-way 16-byte events (raw: one write per 64), 2-worker runtimes: events/s
  stream     a stream of 16-byte items, server to client, under credit (raw: the
             one-way events above), 2-worker runtimes: items/s; compare with `events`
  conns    + 100 connections, sequential calls on each, 2-worker runtimes: calls/s
  broadcast  one event to 1,000 connected clients (raw: pre-encoded bytes): deliveries/s
  memory   + server RSS per idle connection, 10,000 connections
  strangers  server RSS per unauthenticated connection, 200 of them, each holding
             a partial 4,000-byte first frame (netsock keeps at most 256 such)
  cluster    through a redis-server of its own (from PATH): a broadcast to 1,000
             clients on 3 server processes against the same on one process, and
             the added p50 of an emit to another node against a raw Redis
             PUBLISH->message round trip
  recovery   netsock clients with session recovery (the \"netsock\" column) against
             clients without (the \"raw\" column), same server: events, inflight
  tls        netsock over TLS (the \"netsock\" column) against netsock over plain TCP
             (the \"raw\" column), same workloads: inflight, latency, conns, and
             opening 100 connections at once with their TLS handshakes
options:
  --reps N   repetitions per figure (default 5), after one warm-up run
  --quick    smaller sizes, for a smoke run
  --json     machine-readable output instead of the table (\"ratio\" is netsock/raw,
             \"ratio_tarpc\" netsock/tarpc)
  --only S   run one side only (raw, netsock or tarpc), e.g. under a profiler";

const ALL: [&str; 12] = [
    "codec",
    "inflight",
    "latency",
    "events",
    "stream",
    "conns",
    "broadcast",
    "memory",
    "strangers",
    "cluster",
    "tls",
    "recovery",
];

pub(crate) struct Opts {
    pub(crate) reps: usize,
    pub(crate) quick: bool,
    json: bool,
    taskset: bool,
    pub(crate) dir: PathBuf,
    /// Run one side only: `raw`, `netsock` or `tarpc`.
    only: Option<String>,
}

/// Which sides of a figure run.
#[derive(Clone, Copy)]
struct Sides {
    raw: bool,
    netsock: bool,
    tarpc: bool,
}

impl Opts {
    /// `full`, or a tenth of it with `--quick`.
    pub(crate) fn size(&self, full: u64) -> u64 {
        if self.quick {
            (full / 10).max(1)
        } else {
            full
        }
    }

    /// The sides to run, after `--only`; tarpc only if built in.
    fn sides(&self) -> Sides {
        let only = self.only.as_deref();
        Sides {
            raw: only.is_none_or(|s| s == "raw"),
            netsock: only.is_none_or(|s| s == "netsock"),
            tarpc: HAVE_TARPC && only.is_none_or(|s| s == "tarpc"),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return match serve(&args[1..]) {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("netsock-bench serve: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netsock-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().expect("a tokio runtime")
}

/// `serve IMPL tcp|unix mt|ct rpc|fanout [PATH]`: serves until stdin closes.
fn serve(args: &[String]) -> Result<(), BoxError> {
    let arg = |i: usize| args.get(i).map(String::as_str);
    let (imp, transport, rt, mode) = (arg(0), arg(1), arg(2), arg(3));
    let unix = match transport {
        Some("unix") => Some(arg(4).ok_or("no socket path")?),
        _ => None,
    };
    let tls = match transport {
        Some("tls") => Some(PathBuf::from(arg(4).ok_or("no certificate directory")?)),
        _ => None,
    };
    runtime(rt == Some("mt")).block_on(async move {
        let stop = async {
            let mut sink = Vec::new();
            let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        };
        let server = async {
            match imp {
                Some("raw") => raw::serve(unix, mode == Some("fanout")).await,
                Some("netsock") => ns::serve(unix, tls.as_deref()).await,
                Some("tarpc") => tp::serve(unix).await,
                Some("cluster") => ns::serve_cluster(unix, mode.ok_or("no Redis URL")?).await,
                _ => Err("serve: IMPL is raw, netsock or tarpc".into()),
            }
        };
        tokio::select! {
            result = server => result,
            () = stop => Ok(()),
        }
    })
}

fn run(args: &[String]) -> Result<(), BoxError> {
    let mut opts = Opts {
        reps: 5,
        quick: false,
        json: false,
        taskset: child::have_taskset(),
        dir: std::env::temp_dir().join(format!("netsock-bench-{}", std::process::id())),
        only: None,
    };
    let mut workloads = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => {
                opts.reps = it.next().ok_or("--reps needs a number")?.parse()?;
                if opts.reps == 0 {
                    return Err("--reps must be at least 1".into());
                }
            }
            "--quick" => opts.quick = true,
            "--only" => match it.next().map(String::as_str) {
                Some(side @ ("raw" | "netsock")) => opts.only = Some(side.to_owned()),
                Some("tarpc") if HAVE_TARPC => opts.only = Some("tarpc".to_owned()),
                Some("tarpc") => {
                    return Err("--only tarpc: built without the `tarpc` feature".into())
                }
                _ => return Err("--only needs raw, netsock or tarpc".into()),
            },
            "--json" => opts.json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "all" => workloads.extend(ALL),
            w if ALL.contains(&w) => workloads.push(ALL[ALL.iter().position(|x| *x == w).unwrap()]),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    if workloads.is_empty() {
        return Err(USAGE.into());
    }
    std::fs::create_dir_all(&opts.dir)?;
    let load_before = loadavg();
    let mut rows = Vec::new();
    for w in workloads {
        eprintln!("== {w}");
        let before = rows.len();
        match w {
            "codec" => codec_rows(&opts, &mut rows),
            "inflight" => inflight(&opts, &mut rows),
            "latency" => latency(&opts, &mut rows),
            "events" => events(&opts, &mut rows),
            "stream" => stream(&opts, &mut rows),
            "conns" => conns(&opts, &mut rows),
            "broadcast" => broadcast(&opts, &mut rows),
            "memory" => memory(&opts, &mut rows),
            "strangers" => strangers(&opts, &mut rows),
            "cluster" => cluster::rows(&opts, &mut rows),
            "tls" => tls(&opts, &mut rows),
            "recovery" => recovery(&opts, &mut rows),
            _ => unreachable!(),
        }
        for row in &rows[before..] {
            eprint!(
                "{}",
                report::table(std::slice::from_ref(row))
                    .lines()
                    .nth(2)
                    .unwrap_or("")
            );
            eprintln!();
        }
    }
    let _ = std::fs::remove_dir_all(&opts.dir);
    let load_after = loadavg();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let pinning = if opts.taskset {
        "latency rows: both processes pinned to CPU 0 with taskset -c 0".to_string()
    } else {
        "latency rows: NOT pinned (taskset is not available here)".to_string()
    };
    let sizes = if opts.quick {
        "--quick: a tenth of the full sizes (memory: 1,000 connections; broadcast: 100 clients)"
    } else {
        "full sizes"
    };
    if opts.json {
        let meta = [
            ("reps", opts.reps.to_string()),
            ("sizes", sizes.to_string()),
            ("cpus", nproc.to_string()),
            ("loadavg_before", load_before),
            ("loadavg_after", load_after),
            ("pinning", pinning),
        ];
        print!("{}", report::json(&rows, &meta));
    } else {
        println!(
            "netsock-bench: {} repetitions per figure after one warm-up; {sizes}; {nproc} CPUs",
            opts.reps
        );
        println!("load average before: {load_before}; after: {load_after}");
        println!("{pinning}");
        println!();
        print!("{}", report::table(&rows));
    }
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

pub(crate) fn row(
    workload: &str,
    transport: &'static str,
    unit: &'static str,
    scale: f64,
    higher: bool,
) -> Row {
    Row {
        workload: workload.to_owned(),
        transport,
        unit,
        scale,
        higher_is_better: higher,
        raw: Vec::new(),
        netsock: Vec::new(),
        tarpc: Vec::new(),
        error: None,
    }
}

const TRANSPORTS: [(&str, bool); 2] = [("TCP", false), ("UDS", true)];

/// How the two servers of a figure run.
struct Setup<'a> {
    unix: bool,
    multi_thread: bool,
    /// The raw server's mode: `rpc` (replies written inline) or `fanout`.
    raw_mode: &'a str,
    /// Under `taskset -c 0`.
    pinned: bool,
}

/// A tarpc side's run, for the workloads that have one.
type TarpcRun<'a> = Option<&'a mut dyn FnMut(&Target) -> Result<f64, BoxError>>;

/// Starts a raw, a netsock and (with `tarpc_run`) a tarpc server, warms
/// each up once, then alternates raw, netsock and tarpc runs `reps` times.
/// Each run returns the figure. `--only` leaves the other servers unstarted.
fn pair(
    opts: &Opts,
    row: &mut Row,
    setup: Setup<'_>,
    mut raw_run: impl FnMut(&Target) -> Result<f64, BoxError>,
    mut ns_run: impl FnMut(&Target) -> Result<f64, BoxError>,
    mut tarpc_run: TarpcRun<'_>,
) {
    let rt = if setup.multi_thread { "mt" } else { "ct" };
    let (unix, pinned) = (setup.unix, setup.pinned);
    let sides = opts.sides();
    let result = (|| -> Result<(), BoxError> {
        let start = |on: bool, imp: &str, mode: &str| -> Result<Option<child::Server>, BoxError> {
            Ok(if on {
                Some(child::spawn(imp, unix, rt, mode, pinned, &opts.dir)?)
            } else {
                None
            })
        };
        let raw_server = start(sides.raw, "raw", setup.raw_mode)?;
        let ns_server = start(sides.netsock, "netsock", "rpc")?;
        let tarpc_server = start(sides.tarpc && tarpc_run.is_some(), "tarpc", "rpc")?;
        for rep in 0..=opts.reps {
            // Repetition 0 is the warm-up.
            if let Some(server) = &raw_server {
                let figure = raw_run(&server.target)?;
                if rep > 0 {
                    row.raw.push(figure);
                }
            }
            if let Some(server) = &ns_server {
                let figure = ns_run(&server.target)?;
                if rep > 0 {
                    row.netsock.push(figure);
                }
            }
            if let (Some(server), Some(run)) = (&tarpc_server, tarpc_run.as_mut()) {
                let figure = run(&server.target)?;
                if rep > 0 {
                    row.tarpc.push(figure);
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        row.error = Some(e.to_string());
    }
}

fn codec_rows(opts: &Opts, rows: &mut Vec<Row>) {
    let n = opts.size(2_000_000);
    let mut enc = row(
        "frame encode: request, 8×i64 (vs postcard into a Vec)",
        "in-process",
        "M frames/s",
        1e-6,
        true,
    );
    let mut dec = row(
        "frame decode: request, 8×i64 (vs LengthDelimitedCodec + postcard)",
        "in-process",
        "M frames/s",
        1e-6,
        true,
    );
    codec::encode(n / 10);
    codec::decode(n / 10);
    for _ in 0..opts.reps {
        let (raw, ns) = codec::encode(n);
        enc.raw.push(n as f64 / raw);
        enc.netsock.push(n as f64 / ns);
        let (raw, ns) = codec::decode(n);
        dec.raw.push(n as f64 / raw);
        dec.netsock.push(n as f64 / ns);
    }
    rows.push(enc);
    rows.push(dec);
}

fn inflight(opts: &Opts, rows: &mut Vec<Row>) {
    let total = opts.size(300_000);
    for (name, unix) in TRANSPORTS {
        let mut r = row(
            "256 calls in flight, one connection, mt",
            name,
            "M calls/s",
            1e-6,
            true,
        );
        let rt = runtime(true);
        pair(
            opts,
            &mut r,
            Setup {
                unix,
                multi_thread: true,
                raw_mode: "rpc",
                pinned: false,
            },
            |t| Ok(total as f64 / rt.block_on(raw::inflight(t, total, 256))?),
            |t| Ok(total as f64 / rt.block_on(ns::inflight(t, total, 256))?),
            Some(&mut |t| Ok(total as f64 / rt.block_on(tp::inflight(t, total, 256))?)),
        );
        rows.push(r);
    }
}

fn latency(opts: &Opts, rows: &mut Vec<Row>) {
    let calls = opts.size(20_000) as usize;
    let restore = if opts.taskset {
        child::affinity()
    } else {
        None
    };
    let pinned = opts.taskset && child::pin_self("0");
    for (name, unix) in TRANSPORTS {
        let label = if pinned {
            "1 call in flight, ct, pinned to CPU 0: p50"
        } else {
            "1 call in flight, ct, NOT pinned: p50"
        };
        let mut r = row(label, name, "µs", 1e6, false);
        let rt = runtime(false);
        pair(
            opts,
            &mut r,
            Setup {
                unix,
                multi_thread: false,
                raw_mode: "rpc",
                pinned,
            },
            |t| rt.block_on(raw::latency(t, calls)),
            |t| rt.block_on(ns::latency(t, calls)),
            Some(&mut |t| rt.block_on(tp::latency(t, calls))),
        );
        rows.push(r);
    }
    if let Some(cpus) = restore {
        child::pin_self(&cpus);
    }
}

fn events(opts: &Opts, rows: &mut Vec<Row>) {
    let n = opts.size(2_000_000);
    for (name, unix) in TRANSPORTS {
        let mut r = row(
            "one-way 16-byte events, flush every 64, mt",
            name,
            "M events/s",
            1e-6,
            true,
        );
        let rt = runtime(true);
        pair(
            opts,
            &mut r,
            Setup {
                unix,
                multi_thread: true,
                raw_mode: "rpc",
                pinned: false,
            },
            |t| Ok(n as f64 / rt.block_on(raw::events(t, n))?),
            |t| Ok(n as f64 / rt.block_on(ns::events(t, n))?),
            None,
        );
        rows.push(r);
    }
}

fn stream(opts: &Opts, rows: &mut Vec<Row>) {
    let n = opts.size(2_000_000);
    for (name, unix) in TRANSPORTS {
        let mut r = row(
            "a stream of 16-byte items (raw: one-way events), mt",
            name,
            "M items/s",
            1e-6,
            true,
        );
        let rt = runtime(true);
        pair(
            opts,
            &mut r,
            Setup {
                unix,
                multi_thread: true,
                raw_mode: "rpc",
                pinned: false,
            },
            |t| Ok(n as f64 / rt.block_on(raw::events(t, n))?),
            |t| Ok(n as f64 / rt.block_on(ns::stream(t, n))?),
            None,
        );
        rows.push(r);
    }
}

fn conns(opts: &Opts, rows: &mut Vec<Row>) {
    let per = opts.size(1_000);
    for (name, unix) in TRANSPORTS {
        let mut r = row(
            "100 connections, sequential calls, mt",
            name,
            "M calls/s",
            1e-6,
            true,
        );
        let rt = runtime(true);
        let total = 100.0 * per as f64;
        pair(
            opts,
            &mut r,
            Setup {
                unix,
                multi_thread: true,
                raw_mode: "rpc",
                pinned: false,
            },
            |t| Ok(total / rt.block_on(raw::conns(t, 100, per))?),
            |t| Ok(total / rt.block_on(ns::conns(t, 100, per))?),
            Some(&mut |t| Ok(total / rt.block_on(tp::conns(t, 100, per))?)),
        );
        rows.push(r);
    }
}

fn broadcast(opts: &Opts, rows: &mut Vec<Row>) {
    let clients = if opts.quick { 100 } else { 1_000 };
    // At most the default queue capacity (1,024 frames) per burst, so that
    // netsock's broadcast, which never waits for a recipient, drops nothing.
    let events = opts.size(200) as u32;
    let label = format!("broadcast 1 event to {clients} clients, mt (raw: pre-encoded bytes)");
    for (name, unix) in TRANSPORTS {
        let mut r = row(&label, name, "M deliveries/s", 1e-6, true);
        let rt = runtime(true);
        let total = clients as f64 * f64::from(events);
        let mut raw_rx = None;
        let mut ns_rx = None;
        pair(
            opts,
            &mut r,
            Setup {
                unix,
                multi_thread: true,
                raw_mode: "fanout",
                pinned: false,
            },
            |t| {
                rt.block_on(async {
                    if raw_rx.is_none() {
                        raw_rx = Some(raw::receivers(t, clients).await?);
                    }
                    let rx = raw_rx.as_ref().expect("connected");
                    Ok(total / raw::broadcast(t, rx, clients as u64, events).await?)
                })
            },
            |t| {
                rt.block_on(async {
                    if ns_rx.is_none() {
                        ns_rx = Some(ns::receivers(std::slice::from_ref(t), clients).await?);
                    }
                    let rx = ns_rx.as_ref().expect("connected");
                    Ok(total / ns::broadcast(t, rx, clients as u64, events).await?)
                })
            },
            None,
        );
        rows.push(r);
        rt.block_on(async { drop((raw_rx, ns_rx)) });
    }
}

/// A fresh server per measurement: RSS before, then `n` connections that
/// each made one call, held idle; the growth divided by `n`.
fn memory(opts: &Opts, rows: &mut Vec<Row>) {
    let n = if opts.quick { 1_000 } else { 10_000 };
    let sides = opts.sides();
    for (name, unix) in TRANSPORTS {
        let label = format!("server memory per idle connection ({n} connections)");
        let mut r = row(&label, name, "KiB", 1.0 / 1024.0, false);
        let result = (|| -> Result<(), BoxError> {
            for rep in 0..=opts.reps {
                if sides.raw {
                    let raw = idle_rss(&opts.dir, "raw", unix, n, |t| {
                        let rt = runtime(true);
                        let held = rt.block_on(raw::open_idle(t, n))?;
                        Ok(Box::new(InRuntime {
                            held: Some(held),
                            rt,
                        }))
                    })?;
                    if rep > 0 {
                        r.raw.push(raw);
                    }
                }
                if sides.netsock {
                    let ns = idle_rss(&opts.dir, "netsock", unix, n, |t| {
                        let rt = runtime(true);
                        let held = rt.block_on(ns::open_idle(t, n))?;
                        Ok(Box::new(InRuntime {
                            held: Some(held),
                            rt,
                        }))
                    })?;
                    if rep > 0 {
                        r.netsock.push(ns);
                    }
                }
                if sides.tarpc {
                    let tarpc = idle_rss(&opts.dir, "tarpc", unix, n, |t| {
                        let rt = runtime(true);
                        let held = rt.block_on(tp::open_idle(t, n))?;
                        Ok(Box::new(InRuntime {
                            held: Some(held),
                            rt,
                        }))
                    })?;
                    if rep > 0 {
                        r.tarpc.push(tarpc);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            r.error = Some(e.to_string());
        }
        rows.push(r);
    }
}

/// A fresh server per measurement: RSS before, then `n` connections that
/// each sent the start of a 4,000-byte first frame and stay silent; the
/// growth divided by `n`. What an unauthenticated peer can pin; netsock
/// holds at most `max_handshakes` (256) of them, so `n` stays below that.
fn strangers(opts: &Opts, rows: &mut Vec<Row>) {
    let n = if opts.quick { 100 } else { 200 };
    for (name, unix) in TRANSPORTS {
        let label = format!("server memory per silent stranger ({n} strangers)");
        let mut r = row(&label, name, "KiB", 1.0 / 1024.0, false);
        let result = (|| -> Result<(), BoxError> {
            for rep in 0..=opts.reps {
                let mut sides = [0.0; 2];
                for (side, imp) in sides.iter_mut().zip(["raw", "netsock"]) {
                    *side = idle_rss(&opts.dir, imp, unix, n, |t| {
                        let rt = runtime(true);
                        let held = rt.block_on(open_strangers(t, n))?;
                        Ok(Box::new(InRuntime {
                            held: Some(held),
                            rt,
                        }))
                    })?;
                }
                if rep > 0 {
                    r.raw.push(sides[0]);
                    r.netsock.push(sides[1]);
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            r.error = Some(e.to_string());
        }
        rows.push(r);
    }
}

/// `n` connections, each having sent a length prefix announcing 4,000
/// bytes and 3,000 of them, then nothing.
async fn open_strangers(target: &Target, n: usize) -> Result<Vec<Box<dyn Send>>, BoxError> {
    use tokio::io::AsyncWriteExt;
    let mut opening = 4_000u32.to_be_bytes().to_vec();
    opening.extend_from_slice(&[0u8; 3_000]);
    let mut held: Vec<Box<dyn Send>> = Vec::with_capacity(n);
    for _ in 0..n {
        match target {
            Target::Tcp(addr) => {
                let mut s = tokio::net::TcpStream::connect(addr).await?;
                s.write_all(&opening).await?;
                held.push(Box::new(s));
            }
            Target::Unix(path) => {
                let mut s = tokio::net::UnixStream::connect(path).await?;
                s.write_all(&opening).await?;
                held.push(Box::new(s));
            }
            Target::Tls(..) => return Err("strangers: not over TLS".into()),
        }
    }
    Ok(held)
}

type Held = Box<dyn std::any::Any>;

/// Client connections, dropped inside their runtime.
struct InRuntime<T> {
    held: Option<T>,
    rt: tokio::runtime::Runtime,
}

impl<T> Drop for InRuntime<T> {
    fn drop(&mut self) {
        let _inside = self.rt.enter();
        self.held.take();
    }
}

fn idle_rss(
    dir: &Path,
    imp: &str,
    unix: bool,
    n: usize,
    open: impl FnOnce(&Target) -> Result<Held, BoxError>,
) -> Result<f64, BoxError> {
    let server = child::spawn(imp, unix, "mt", "rpc", false, dir)?;
    std::thread::sleep(Duration::from_millis(200));
    let before = child::rss_bytes(server.pid())?;
    let held = open(&server.target)?;
    std::thread::sleep(Duration::from_millis(500));
    let after = child::rss_bytes(server.pid())?;
    drop(server);
    drop(held);
    Ok((after as f64 - before as f64) / n as f64)
}

/// Warms up once, then alternates `plain` and `variant` runs `reps` times:
/// `plain` figures in the row's `raw` column, `variant` figures in its
/// `netsock` column.
fn alternate(
    opts: &Opts,
    row: &mut Row,
    mut plain: impl FnMut() -> Result<f64, BoxError>,
    mut variant: impl FnMut() -> Result<f64, BoxError>,
) -> Result<(), BoxError> {
    for rep in 0..=opts.reps {
        let (a, b) = (plain()?, variant()?);
        if rep > 0 {
            row.raw.push(a);
            row.netsock.push(b);
        }
    }
    Ok(())
}

/// A netsock server on plain TCP and one on TLS, [alternated](alternate):
/// TCP in the `raw` column, TLS in the `netsock` column.
fn tls_pair(
    opts: &Opts,
    row: &mut Row,
    multi_thread: bool,
    pinned: bool,
    run: impl FnMut(&Target) -> Result<f64, BoxError>,
) {
    let rt = if multi_thread { "mt" } else { "ct" };
    let run = std::cell::RefCell::new(run);
    let result = (|| -> Result<(), BoxError> {
        let tcp = child::spawn_on("netsock", "tcp", rt, "rpc", pinned, &opts.dir)?;
        let tls = child::spawn_on("netsock", "tls", rt, "rpc", pinned, &opts.dir)?;
        alternate(
            opts,
            row,
            || (run.borrow_mut())(&tcp.target),
            || (run.borrow_mut())(&tls.target),
        )
    })();
    if let Err(e) = result {
        row.error = Some(e.to_string());
    }
}

/// One netsock server, its clients without and with session recovery
/// [alternated](alternate): without in the `raw` column, with in the
/// `netsock` column.
fn recovery_pair(
    opts: &Opts,
    row: &mut Row,
    unix: bool,
    run: impl FnMut(&Target) -> Result<f64, BoxError>,
) {
    let run = std::cell::RefCell::new(run);
    let with = |on: bool, target: &Target| {
        ns::RECOVERY.store(on, std::sync::atomic::Ordering::Relaxed);
        let figure = (run.borrow_mut())(target);
        ns::RECOVERY.store(false, std::sync::atomic::Ordering::Relaxed);
        figure
    };
    let result = (|| -> Result<(), BoxError> {
        let server = child::spawn("netsock", unix, "mt", "rpc", false, &opts.dir)?;
        alternate(
            opts,
            row,
            || with(false, &server.target),
            || with(true, &server.target),
        )
    })();
    if let Err(e) = result {
        row.error = Some(e.to_string());
    }
}

fn recovery(opts: &Opts, rows: &mut Vec<Row>) {
    let n = opts.size(2_000_000);
    let total = opts.size(300_000);
    for (_, unix) in TRANSPORTS {
        let label: &'static str = if unix {
            "recovery on vs off, UDS"
        } else {
            "recovery on vs off, TCP"
        };
        let mut r = row(
            "one-way 16-byte events, mt",
            label,
            "M events/s",
            1e-6,
            true,
        );
        let rt = runtime(true);
        recovery_pair(opts, &mut r, unix, |t| {
            Ok(n as f64 / rt.block_on(ns::events(t, n))?)
        });
        rows.push(r);
        let mut r = row(
            "256 calls in flight, one connection, mt",
            label,
            "M calls/s",
            1e-6,
            true,
        );
        recovery_pair(opts, &mut r, unix, |t| {
            Ok(total as f64 / rt.block_on(ns::inflight(t, total, 256))?)
        });
        rows.push(r);
    }
}

/// Writes a throwaway CA (`ca.pem`) and a server certificate for 127.0.0.1
/// (`cert.pem`, `key.pem`) into `dir`.
fn make_certificates(dir: &Path) -> Result<(), BoxError> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])?
        .signed_by(&key, &ca_cert, &ca_key)?;
    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("cert.pem"), cert.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    Ok(())
}

fn tls(opts: &Opts, rows: &mut Vec<Row>) {
    const LABEL: &str = "TLS vs TCP";
    if let Err(e) = make_certificates(&opts.dir) {
        let mut r = row("TLS certificates", LABEL, "", 1.0, true);
        r.error = Some(e.to_string());
        rows.push(r);
        return;
    }
    let total = opts.size(300_000);
    let mut r = row(
        "256 calls in flight, one connection, mt",
        LABEL,
        "M calls/s",
        1e-6,
        true,
    );
    let rt = runtime(true);
    tls_pair(opts, &mut r, true, false, |t| {
        Ok(total as f64 / rt.block_on(ns::inflight(t, total, 256))?)
    });
    rows.push(r);

    let calls = opts.size(20_000) as usize;
    let restore = if opts.taskset {
        child::affinity()
    } else {
        None
    };
    let pinned = opts.taskset && child::pin_self("0");
    let label = if pinned {
        "1 call in flight, ct, pinned to CPU 0: p50"
    } else {
        "1 call in flight, ct, NOT pinned: p50"
    };
    let mut r = row(label, LABEL, "µs", 1e6, false);
    let rt = runtime(false);
    tls_pair(opts, &mut r, false, pinned, |t| {
        rt.block_on(ns::latency(t, calls))
    });
    rows.push(r);
    if let Some(cpus) = restore {
        child::pin_self(&cpus);
    }

    let per = opts.size(1_000);
    let mut r = row(
        "100 connections, sequential calls, mt",
        LABEL,
        "M calls/s",
        1e-6,
        true,
    );
    let rt = runtime(true);
    tls_pair(opts, &mut r, true, false, |t| {
        Ok(100.0 * per as f64 / rt.block_on(ns::conns(t, 100, per))?)
    });
    rows.push(r);

    let mut r = row(
        "open 100 connections at once (handshakes included), one call each, mt",
        LABEL,
        "connections/s",
        1.0,
        true,
    );
    let rt = runtime(true);
    tls_pair(opts, &mut r, true, false, |t| {
        Ok(100.0 / rt.block_on(ns::connect_many(t, 100))?)
    });
    rows.push(r);
}
