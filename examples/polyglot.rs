//! Apps made of apps, in three languages: a Rust coordinator serves one
//! netsock endpoint; a Python worker (clients/python) classifies texts; a
//! Node front end (clients/node) submits texts and hears every result. Three
//! processes, one enum, typed end to end by its schema JSON.
//!
//! ```text
//! cargo run --example polyglot
//! ```
//!
//! Needs `python3` (3.11 or later) and `node` (20 or later) on `PATH`. The
//! first run builds the TypeScript client (`npm ci && npm run build` in
//! `clients/node`). Each process prints what it does, prefixed with its
//! language; the run ends on its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: api
/// What the three programs say to each other, through the coordinator.
#[derive(Events, Serialize, Deserialize, Debug, Clone)]
enum Polyglot {
    /// A worker is ready to classify (worker to coordinator).
    Ready { worker: String },
    /// Classify this text (coordinator to a worker): the reply is a label.
    #[request(response = String)]
    Classify { text: String },
    /// Please classify this text (front end to coordinator): the reply is
    /// the label a worker gave.
    #[request(response = String)]
    Submit { text: String },
    /// A text was classified (coordinator to everyone).
    Classified {
        text: String,
        label: String,
        by: String,
    },
    /// The work is over (coordinator to workers).
    Stop,
}
// ANCHOR_END: api

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let dir = std::env::temp_dir().join(format!("netsock-polyglot-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&root, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(root: &Path, dir: &Path) -> Result<(), BoxError> {
    // ANCHOR: schema
    // The other languages read the enum from its schema JSON.
    let schema = dir.join("polyglot.json");
    Polyglot::write_schema_json(&schema)?;
    // ANCHOR_END: schema
    let addr = dir.join("polyglot.sock");
    let (io, mut ready) = coordinator(&addr).await?;
    println!("[rust] coordinating on {}", io.local_addr());

    let node_client = node_client(root).await?;
    let mut worker = spawn(
        Command::new("python3")
            .arg(root.join("examples/polyglot/worker.py"))
            .arg(&addr)
            .arg(&schema)
            .env("PYTHONPATH", root.join("clients/python/src")),
    )?;
    let who = tokio::time::timeout(Duration::from_secs(30), ready.recv())
        .await
        .map_err(|_| "the Python worker did not say it was ready within 30 s")?
        .ok_or("the worker never got ready")?;
    println!("[rust] worker {who} is ready");
    let mut front = spawn(
        Command::new("node")
            .arg(root.join("examples/polyglot/frontend.mjs"))
            .arg(&addr)
            .arg(&schema)
            .arg(&node_client),
    )?;
    finished("node front end", &mut front).await?;
    io.emit_stop().await?;
    finished("python worker", &mut worker).await?;
    let served = io.metrics().traffic.requests_served;
    println!("[rust] done: {served} requests served; closing");
    io.close().await;
    Ok(())
}

// ANCHOR: coordinator
/// The coordinator: workers join the room `workers`; a `Submit` is passed
/// on to a worker as `Classify`, and its label told to everyone.
async fn coordinator(
    addr: &Path,
) -> Result<(Server<Polyglot>, mpsc::UnboundedReceiver<String>), BoxError> {
    let io = Server::<Polyglot>::bind(addr).await?;
    let (ready_tx, ready) = mpsc::unbounded_channel();
    let server = io.clone();
    io.on_connection(move |socket: Socket<Polyglot>| {
        let (server, ready_tx) = (server.clone(), ready_tx.clone());
        socket.on_ready_with(move |socket, worker| {
            socket.join("workers");
            let _ = ready_tx.send(worker);
            async {}
        });
        socket.on_submit(move |text| {
            let server = server.clone();
            async move {
                let Some(worker) = server.in_room("workers").into_iter().next() else {
                    return "no worker".to_string();
                };
                let label = match worker.classify(text.clone()).await {
                    Ok(label) => label,
                    Err(e) => format!("error: {e}"),
                };
                println!("[rust] {text:?} -> {label:?}");
                let by = format!("worker {}", worker.id());
                let _ = server.emit_classified(text, label.clone(), by).await;
                label
            }
        });
        async { Ok(()) }
    });
    io.spawn();
    Ok((io, ready))
}
// ANCHOR_END: coordinator

/// `clients/node`'s entry point, built once if it is not yet.
async fn node_client(root: &Path) -> Result<PathBuf, BoxError> {
    let package = root.join("clients/node");
    let entry = package.join("dist/index.js");
    if !entry.exists() {
        println!("[rust] building the TypeScript client once (npm ci && npm run build)");
        for args in [
            &["ci", "--no-audit", "--no-fund"][..],
            &["run", "build"][..],
        ] {
            let status = Command::new("npm")
                .args(args)
                .current_dir(&package)
                .stdout(Stdio::null())
                .status()
                .await?;
            if !status.success() {
                return Err(format!("npm {} failed in clients/node", args.join(" ")).into());
            }
        }
    }
    Ok(entry)
}

fn spawn(command: &mut Command) -> Result<Child, BoxError> {
    Ok(command.stdin(Stdio::null()).kill_on_drop(true).spawn()?)
}

/// Waits (a minute at most) for a child to end well.
async fn finished(what: &str, child: &mut Child) -> Result<(), BoxError> {
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .map_err(|_| format!("the {what} did not finish within a minute"))??;
    if !status.success() {
        return Err(format!("the {what} exited with {status}").into());
    }
    Ok(())
}
