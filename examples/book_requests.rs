//! The book's Requests and Errors chapters, compiled and run: request
//! variants, replies, timeouts, cancellation, and the errors a caller meets.
//!
//! ```text
//! cargo run --example book_requests
//! ```

use std::time::Duration;

use netsock::{CallError, Error, Events, Server, Socket, SocketError};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: api
/// A calculator: four requests and one event.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Calc {
    /// Adds the numbers.
    #[request(response = i64)]
    Sum(Vec<i64>),
    /// Divides; the service's own error is part of the response type.
    #[request(response = Result<i64, String>)]
    Div { a: i64, b: i64 },
    /// Takes as long as it is told to.
    #[request(response = ())]
    Sleep { millis: u64 },
    /// A request this server does not handle.
    #[request(response = String)]
    Version,
    /// Answered with the caller's connection id: a handler that needs its
    /// socket.
    #[request(response = u64)]
    WhoAmI,
    /// A one-way event: no reply.
    Log(String),
}
// ANCHOR_END: api

/// Another program's enum, to show a schema mismatch.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Other {
    Ping,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // ANCHOR: handlers
    let io = Server::<Calc>::bind(0).await?; // an ephemeral port on 127.0.0.1
    io.on_connection(|socket: Socket<Calc>| async move {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        socket.on_div(|a, b| async move {
            a.checked_div(b)
                .ok_or_else(|| "division by zero".to_owned())
        });
        socket.on_sleep(
            |millis| async move { tokio::time::sleep(Duration::from_millis(millis)).await },
        );
        socket.on_log(|line| async move { println!("log: {line}") });
        // `_with`: the handler gets the socket first, nothing to clone.
        socket.on_who_am_i_with(|socket| async move { socket.id().0 });
        Ok(())
    });
    // ANCHOR_END: handlers
    let addr = io.local_addr().clone();
    let running = io.spawn();

    // ANCHOR: call
    let socket = Socket::<Calc>::connect(&addr).await?;
    let total: i64 = socket.sum(vec![1, 2, 3]).await?; // Result<i64, CallError>
    assert_eq!(total, 6);
    // The outer Result is the transport's, the inner one the service's own.
    assert_eq!(socket.div(7, 2).await?, Ok(3));
    assert_eq!(socket.div(1, 0).await?, Err("division by zero".to_owned()));
    assert_eq!(socket.who_am_i().await?, socket.id().0);
    socket
        .emit_log("one-way: no reply, no waiting for one".into())
        .await?;
    // ANCHOR_END: call

    // ANCHOR: timeout
    // For one call (or every call made through this handle):
    match socket.timeout(Duration::from_millis(50)).sleep(1_000).await {
        Err(CallError::Timeout { after }) => println!("no reply within {after:?}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The default for every call on a connection (10 s unless set):
    let patient = Socket::<Calc>::builder()
        .request_timeout(Duration::from_secs(30))
        .connect(&addr)
        .await?;
    // ANCHOR_END: timeout
    assert_eq!(patient.sum(vec![]).await?, 0);
    patient.close().await;

    // ANCHOR: cancel
    // Dropping the call's future cancels it too: the server stops the handler.
    let gave_up = tokio::time::timeout(Duration::from_millis(20), socket.sleep(60_000)).await;
    assert!(gave_up.is_err());
    // ANCHOR_END: cancel

    // ANCHOR: call_errors
    match socket.version().await {
        Ok(version) => println!("server version {version}"),
        Err(CallError::NoHandler { event }) => println!("the server does not handle {event}"),
        Err(CallError::Timeout { .. } | CallError::Disconnected(_)) => { /* retry later */ }
        Err(other) => return Err(other.into()),
    }
    // ANCHOR_END: call_errors

    // ANCHOR: error_hook
    // What goes wrong that no call returns and that ends no connection: an
    // event without handler, one that cannot be decoded, a panicking event
    // handler...
    socket.on_error(|err| match err {
        SocketError::NoHandler { event } => eprintln!("nobody handles {event} here"),
        err => eprintln!("netsock: {err}"),
    });
    // ANCHOR_END: error_hook

    // ANCHOR: setup_errors
    let dir = std::env::temp_dir().join(format!("netsock-book-{}", std::process::id()));
    match Socket::<Calc>::connect(dir.join("nobody-listens.sock")).await {
        Err(Error::Connect { addr, source }) => println!("cannot connect to {addr}: {source}"),
        other => panic!("expected a connect error, got {other:?}"),
    }
    match Socket::<Calc>::connect("localhost").await {
        Err(err @ Error::InvalidAddr { .. }) => println!("{err}"), // names the input and the fix
        other => panic!("expected an address error, got {other:?}"),
    }
    match Socket::<Other>::connect(&addr).await {
        Err(err @ Error::SchemaMismatch { .. }) => println!("{err}"),
        other => panic!("expected a schema mismatch, got {other:?}"),
    }
    // ANCHOR_END: setup_errors

    socket.close().await;
    running.close().await?;
    Ok(())
}
