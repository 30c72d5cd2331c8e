//! The Rust side of the other-language tests: a server and a client that
//! exercise every kind of frame and most of postcard's types, for a Python
//! or TypeScript peer to talk to.
//!
//! ```text
//! cargo run --example interop                  # both halves in one process (a self-check)
//! cargo run --example interop -- serve ADDR    # a server; prints `listening on ADDR`, stops when stdin closes
//! cargo run --example interop -- call ADDR     # a client against another program's server; exits 0 if all went right
//! cargo run --example interop -- schema        # prints the schema JSON of `Interop`
//! ```
//!
//! `ADDR` is a Unix socket path or `tcp://127.0.0.1:PORT` (`tcp://127.0.0.1:0`
//! picks a free port; the line printed names the one chosen).
//!
//! What the server does, so that a peer in another language can be checked
//! against it:
//!
//! * requests: `Sum(v)` answers the sum; `Greet { name }` answers
//!   `"hello, NAME"`; `Mirror(shape)` answers the same `Shape`; `Slow { ms }`
//!   answers `()` after `ms` milliseconds (for timeouts and cancellation);
//!   `Fail` is a request with no handler, answered with the `NoHandler` error.
//! * events: `Note(text)` is emitted back as `Note("echo: TEXT")`;
//!   `Point { x, y }` makes the server *request* `Sum(vec![x, y])` from the
//!   client, then emit `Note("sum from client: N")`.
//!
//! The client (`call`) does the reverse and checks every answer: it answers
//! the server's `Sum` requests, emits `Note` and `Point` and waits for the two
//! notes, calls `Sum`, `Greet`, `Mirror` (with every field filled) and
//! `Slow` with a 100 ms timeout against a 5 s delay (which must time out),
//! then closes.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use netsock::{CallError, Describe, Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: api
/// Everything the interop peers say, both ways.
#[derive(Events, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Interop {
    /// A line of text; the server echoes it back as `Note("echo: TEXT")`.
    Note(String),
    /// A point; the server asks the client for `x + y` with `Sum`.
    Point { x: i32, y: i32 },
    /// Adds the numbers.
    #[request(response = i64)]
    Sum(Vec<i64>),
    /// A greeting.
    #[request(response = String)]
    Greet { name: String },
    /// Sends a value of every kind back unchanged.
    #[request(response = Shape)]
    Mirror(Shape),
    /// Answers after `ms` milliseconds.
    #[request(response = ())]
    Slow { ms: u32 },
    /// A request nobody handles.
    #[request(response = bool)]
    Fail,
}

/// A value of most of postcard's kinds.
#[derive(Describe, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Shape {
    pub small: u8,
    pub signed: i16,
    pub big: u64,
    pub huge: i128,
    pub ratio: f64,
    pub single: f32,
    pub flag: bool,
    pub letter: char,
    pub label: Option<String>,
    pub bytes: Vec<u8>,
    pub counts: BTreeMap<String, u32>,
    pub pair: (i8, u128),
    pub kind: Kind,
    pub kinds: Vec<Kind>,
    pub nothing: (),
}

/// An enum of every variant shape.
#[derive(Describe, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Kind {
    Plain,
    Wrapped(u32),
    Pair(i64, String),
    Named { z: String },
}
// ANCHOR_END: api

/// The `Shape` the client sends: every field set, extremes included.
pub fn sample_shape() -> Shape {
    Shape {
        small: 255,
        signed: -32768,
        big: u64::MAX,
        huge: i128::MIN,
        ratio: -1.5e300,
        single: 3.25,
        flag: true,
        letter: 'é',
        label: Some("grüße 🌍".into()),
        bytes: vec![0, 1, 127, 128, 255],
        counts: BTreeMap::from([("a".into(), 1), ("b".into(), 300)]),
        pair: (-128, u128::MAX),
        kind: Kind::Named { z: "z".into() },
        kinds: vec![Kind::Plain, Kind::Wrapped(7), Kind::Pair(-1, "p".into())],
        nothing: (),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("serve"), Some(addr)) => serve_until_stdin_closes(addr).await,
        (Some("call"), Some(addr)) => {
            call(addr).await?;
            println!("all checks passed");
            Ok(())
        }
        (Some("schema"), None) => {
            print!("{}", Interop::schema_json());
            Ok(())
        }
        (None, _) => self_check().await,
        _ => Err("usage: interop [serve ADDR | call ADDR | schema]".into()),
    }
}

// ANCHOR: server
/// The server's handlers.
pub async fn server(addr: &str) -> netsock::Result<Server<Interop>> {
    let io = Server::<Interop>::bind(addr).await?;
    io.on_connection(|socket: Socket<Interop>| async move {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        socket.on_greet(|name| async move { format!("hello, {name}") });
        socket.on_mirror(|shape| async move { shape });
        socket.on_slow(|ms| async move {
            tokio::time::sleep(Duration::from_millis(ms.into())).await;
        });
        socket.on_note_with(|socket, text| async move {
            let _ = socket.emit_note(format!("echo: {text}")).await;
        });
        socket.on_point_with(|socket, x, y| async move {
            let note = match socket.sum(vec![x.into(), y.into()]).await {
                Ok(sum) => format!("sum from client: {sum}"),
                Err(e) => format!("the client's Sum failed: {e}"),
            };
            let _ = socket.emit_note(note).await;
        });
        Ok(())
    });
    Ok(io)
}
// ANCHOR_END: server

/// `serve ADDR`: prints `listening on ADDR`, serves until stdin closes.
async fn serve_until_stdin_closes(addr: &str) -> Result<(), BoxError> {
    let io = server(addr).await?;
    println!("listening on {}", io.local_addr());
    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    tokio::select! {
        result = io.run() => result?,
        () = stdin_closed => {}
    }
    Ok(())
}

fn check(what: &str, ok: bool) -> Result<(), BoxError> {
    if ok {
        println!("ok: {what}");
        Ok(())
    } else {
        Err(format!("failed: {what}").into())
    }
}

/// `call ADDR`: the client's checks, against whatever serves `ADDR`.
async fn call(addr: &str) -> Result<(), BoxError> {
    let socket = Socket::<Interop>::connect(addr).await?;
    socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
    let mut notes = socket.events();

    socket.emit_note("hi".to_string()).await?;
    let echo = tokio::time::timeout(Duration::from_secs(5), notes.next()).await?;
    check(
        "Note is echoed",
        echo == Some(Interop::Note("echo: hi".into())),
    )?;

    socket.emit_point(2, 40).await?;
    let note = tokio::time::timeout(Duration::from_secs(5), notes.next()).await?;
    check(
        "Point makes the server call the client's Sum",
        note == Some(Interop::Note("sum from client: 42".into())),
    )?;

    check("Sum", socket.sum(vec![1, 2, 3, -4]).await? == 2)?;
    check(
        "Greet",
        socket.greet("ada".to_string()).await? == "hello, ada",
    )?;
    let shape = sample_shape();
    check(
        "Mirror returns every field unchanged",
        socket.mirror(shape.clone()).await? == shape,
    )?;
    let slow = socket.timeout(Duration::from_millis(100)).slow(5_000).await;
    check(
        "Slow times out",
        matches!(slow, Err(CallError::Timeout { .. })),
    )?;
    check("Slow answers", socket.slow(1).await.is_ok())?;
    let fail = socket.fail().await;
    check(
        "a request without handler fails with NoHandler",
        matches!(fail, Err(CallError::NoHandler { .. })),
    )?;
    socket.close().await;
    Ok(())
}

/// No arguments: a child process serves, this one calls.
async fn self_check() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("netsock-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("interop.sock");
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut ready = String::new();
    BufReader::new(stdout).read_line(&mut ready).await?;
    if ready.is_empty() {
        return Err("the server exited before listening".into());
    }
    let result = call(path.to_str().ok_or("path is not UTF-8")?).await;
    drop(child.stdin.take());
    child.wait().await?;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!("all checks passed");
    Ok(())
}
