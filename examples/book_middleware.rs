//! The book's Middleware and auth and Operations chapters, compiled and run:
//! connection middleware (auth value, auth bytes, peer address and
//! credentials, accept with data, refuse with a reason, panics, timeouts),
//! per-socket data, on_any, metrics and the socket file's mode.
//!
//! ```text
//! cargo run --example book_middleware
//! ```

use std::time::Duration;

use netsock::{Error, Events, Handshake, Refusal, RejectReason, Server, Socket, SocketMode};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Events, Serialize, Deserialize, Debug)]
enum Api {
    Note {
        text: String,
    },
    #[request(response = String)]
    WhoAmI,
}

// ANCHOR: token
/// What a client sends in its handshake (any serde type).
#[derive(Serialize, Deserialize)]
struct Token {
    user: String,
    secret: String,
}

/// What the middleware attaches to an accepted socket.
struct User {
    name: String,
}
// ANCHOR_END: token

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("netsock-book-mw-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("api.sock");
    // ANCHOR: bind
    let io = Server::<Api>::builder()
        .handshake_timeout(Duration::from_secs(1)) // also the middlewares' budget
        .socket_mode(SocketMode::OWNER) // the default: only this user's processes may connect
        .bind(&path)
        .await?;
    // ANCHOR_END: bind

    // ANCHOR: middleware
    // First: who connects, from where (logged, never refused).
    io.middleware(|hs: Handshake| async move {
        match hs.peer_cred() {
            // On a Unix socket: from the kernel, not from the client.
            Some(cred) => println!("socket {}: uid {} pid {:?}", hs.id(), cred.uid, cred.pid),
            None => println!("socket {} from {}", hs.id(), hs.peer_addr()),
        }
        Ok(hs)
    });
    // Second: a typed token, or a raw API key; attach who it is.
    io.middleware(|mut hs: Handshake| async move {
        let name = if let Some(token) = hs.auth::<Token>() {
            if token.secret != "open sesame" {
                return Err(format!("wrong secret for {}", token.user).into());
            }
            token.user
        } else if hs.auth_bytes() == Some(b"KEY-42") {
            "a script".to_string()
        } else {
            return Err(Refusal::new("send a Token, or an API key"));
        };
        if name == "slowpoke" {
            tokio::time::sleep(Duration::from_secs(60)).await; // over the budget
        }
        if name == "buggy" {
            panic!("the user database is down");
        }
        hs.insert(User { name });
        Ok(hs)
    });
    // ANCHOR_END: middleware

    // ANCHOR: data
    io.on_connection(|socket: Socket<Api>| async move {
        // Set by the middleware; readable in every handler of this socket.
        let name = socket.data::<User>().map_or("?".into(), |u| u.name.clone());
        // Handlers can attach more: one value per type.
        socket.set_data(std::sync::atomic::AtomicU32::new(0));
        // Sees every incoming event and request first, then the handler runs.
        socket.on_any(move |event: &Api| println!("{name} sent {event:?}"));
        let me = socket.clone();
        socket.on_note(move |_text| {
            if let Some(notes) = me.data::<std::sync::atomic::AtomicU32>() {
                notes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            async {}
        });
        let me = socket.clone();
        socket.on_who_am_i(move || {
            let user = me.data::<User>();
            async move { user.map_or("?".into(), |u| u.name.clone()) }
        });
        Ok(())
    });
    // ANCHOR_END: data
    let running = io.spawn();

    // ANCHOR: client
    let token = Token {
        user: "alice".into(),
        secret: "open sesame".into(),
    };
    let alice = Socket::<Api>::builder()
        .auth_value(&token)? // postcard-encoded; the server reads hs.auth::<Token>()
        .connect(&path)
        .await?;
    assert_eq!(alice.who_am_i().await?, "alice");
    let script = Socket::<Api>::builder()
        .auth(b"KEY-42".to_vec()) // bytes as they are; the server reads hs.auth_bytes()
        .connect(&path)
        .await?;
    assert_eq!(script.who_am_i().await?, "a script");
    // ANCHOR_END: client
    alice.emit_note("hello".into()).await?;

    // ANCHOR: refused
    let intruder = Token {
        user: "mallory".into(),
        secret: "guess".into(),
    };
    match Socket::<Api>::builder()
        .auth_value(&intruder)?
        .connect(&path)
        .await
    {
        Err(Error::Rejected(RejectReason::Refused(reason))) => {
            assert_eq!(reason, "wrong secret for mallory");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // ANCHOR_END: refused
    for (user, says) in [
        ("buggy", "the user database is down"),
        ("slowpoke", "the server's checks timed out"),
    ] {
        let token = Token {
            user: user.into(),
            secret: "open sesame".into(),
        };
        let err = Socket::<Api>::builder()
            .auth_value(&token)?
            .connect(&path)
            .await
            .expect_err("refused");
        println!("{user}: {err}");
        assert!(
            matches!(&err, Error::Rejected(RejectReason::Refused(r)) if r.contains(says)),
            "{err:?}"
        );
    }

    // ANCHOR: metrics
    let m = alice.metrics(); // this connection, as the client sees it
    println!(
        "alice: {} frames out, {} in, {} calls completed, {} queued now",
        m.traffic.frames_out, m.traffic.frames_in, m.traffic.calls_completed, m.queue_depth
    );
    let m = io.metrics(); // the whole server
    println!(
        "server: {} open, {} accepted, {} refused by middleware, {} timed out",
        m.connections_open, m.connections_total, m.rejects.refused, m.rejects.timed_out
    );
    println!(
        "server: {} requests served, {} broadcast events dropped",
        m.traffic.requests_served, m.traffic.events_dropped
    );
    // ANCHOR_END: metrics
    assert_eq!(m.connections_open, 2);
    assert_eq!(m.rejects.refused, 2); // mallory, buggy
    assert_eq!(m.rejects.timed_out, 1); // slowpoke
    assert_eq!(m.traffic.requests_served, 2);

    // ANCHOR: mode
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    // Owner only, from the moment the file appears:
    assert_eq!(mode, 0o600);
    // ANCHOR_END: mode

    alice.close().await;
    script.close().await;
    running.close().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
