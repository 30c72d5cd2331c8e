//! A handshaken connection fed arbitrary frames: well-formed headers of
//! every kind, with valid or random payloads, mixed with raw garbage,
//! truncated frames and oversized length prefixes, sent in arbitrary pieces.
//! Whatever arrives, the server hangs up or answers within a deadline, and
//! what it sends is whole frames within our limit that answer what it was
//! sent: a reply per request at most, with the right value or error, a pong
//! per ping at most, and a `Close` exactly when we broke the protocol. Its
//! connection leaves the server's table, and a real client is still served.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use netsock::frame::{
    self, CloseReason, Header, Hello, RemoteError, MAGIC, PREFIX_LEN, PROTOCOL_VERSION,
};
use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

#[derive(Events, Serialize, Deserialize, Debug, Clone, Arbitrary)]
enum Api {
    /// Answered at once, in the reader.
    #[request(response = i64)]
    Sum(Vec<i64>),
    /// Answered after a yield: from a task of its own, so `Cancel` can stop it.
    #[request(response = String)]
    Echo(String),
    /// An event with a handler; odd lengths yield first (the event task).
    Note(String),
    /// A request without a handler.
    #[request(response = u8)]
    Orphan(u8),
    /// An event without a handler.
    Silent(u32),
}

/// The server's frame limit: small enough that a fuzzed prefix crosses it.
const SERVER_MAX_FRAME: usize = 64 * 1024;
/// How long the server may take to answer and hang up, and to forget the
/// connection, before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(5);

struct Fixture {
    rt: Runtime,
    path: std::path::PathBuf,
    io: Server<Api>,
    /// Kept: its handler stays installed while it lives.
    _sigpipe: std::sync::Mutex<tokio::signal::unix::Signal>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("netsock-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("frame_stream.sock");
        let _ = std::fs::remove_file(&path);
        let (io, sigpipe) = rt.block_on(async {
            // libFuzzer's `main` is not Rust's: SIGPIPE still kills. Catching
            // it makes a write to a closed peer an EPIPE error, as in any
            // Rust program.
            let sigpipe =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe()).unwrap();
            let io = Server::<Api>::builder()
                .max_frame_size(SERVER_MAX_FRAME)
                .bind(&path)
                .await
                .unwrap();
            io.on_connection(|socket: Socket<Api>| async move {
                socket.on_sum(|n| async move { n.iter().fold(0i64, |a, b| a.wrapping_add(*b)) });
                socket.on_echo(|s| async move {
                    tokio::task::yield_now().await;
                    s
                });
                socket.on_note(|s| async move {
                    if s.len() % 2 == 1 {
                        tokio::task::yield_now().await;
                    }
                });
                Ok(())
            });
            io.spawn();
            (io, sigpipe)
        });
        Fixture {
            rt,
            path,
            io,
            _sigpipe: std::sync::Mutex::new(sigpipe),
        }
    })
}

/// One fuzz case: the limit our `Hello` announces, what we send after the
/// `Welcome`, and whether to check a real client afterwards.
#[derive(Arbitrary, Debug)]
struct Input {
    limit: Limit,
    ops: Vec<Op>,
    check_client: bool,
}

/// The `max_frame` of our `Hello`: the default, or small enough that a
/// reply can be over it.
#[derive(Arbitrary, Debug)]
enum Limit {
    Default,
    Small(u16),
}

/// The smallest limit we announce: the protocol's minimum. A `Hello`
/// announcing less is refused (`Reject(FrameLimitTooSmall)`), which the
/// bad-input tests cover; here every case gets its `Welcome`.
const MIN_LIMIT: u32 = frame::MIN_MAX_FRAME_SIZE as u32;

impl Limit {
    fn bytes(&self) -> u32 {
        match self {
            Limit::Default => frame::DEFAULT_MAX_FRAME_SIZE as u32,
            Limit::Small(n) => MIN_LIMIT + u32::from(*n),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Event(Payload),
    Request {
        id: Id,
        timeout_ms: u32,
        payload: Payload,
    },
    Response {
        id: Id,
        payload: Blob,
    },
    Failure {
        id: Id,
        error: Remote,
    },
    Cancel {
        id: Id,
    },
    Ping,
    Pong,
    Close(Reason),
    /// Stream frames, for streams the server never opened (its `Api` has
    /// none): all are ignored.
    StreamItem {
        id: Id,
        payload: Blob,
    },
    StreamEnd {
        id: Id,
        error: Option<String>,
    },
    Credit {
        id: Id,
        items: u32,
        bytes: u64,
    },
    /// A whole frame with an arbitrary body.
    Body(Blob),
    /// A bare length prefix: what follows is its body, or it is too large,
    /// or the stream ends first.
    Prefix(u32),
    /// Raw bytes.
    Raw(Blob),
    /// Send what is buffered, so that the server reads it apart from what
    /// follows.
    Flush,
}

/// Bytes taken as they are, their length from the input's end (a `Vec<u8>`
/// would spend two bytes of input per byte: one says another follows).
struct Blob(Vec<u8>);

impl<'a> Arbitrary<'a> for Blob {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.arbitrary_len::<u8>()?;
        Ok(Blob(u.bytes(len)?.to_vec()))
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x?}", self.0)
    }
}

/// Request ids: mostly a few, so that cancels and duplicates meet.
#[derive(Arbitrary, Debug)]
enum Id {
    Small(u8),
    Any(u64),
}

impl Id {
    fn get(&self) -> u64 {
        match self {
            Id::Small(n) => u64::from(*n),
            Id::Any(n) => *n,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Payload {
    Valid(Api),
    Raw(Blob),
}

#[derive(Arbitrary, Debug)]
enum Remote {
    NoHandler(String),
    NotARequest(String),
    HandlerPanicked(String),
    BadRequest(String),
    ResponseTooLarge(u64, u64),
    Encode(String),
}

#[derive(Arbitrary, Debug)]
enum Reason {
    Normal,
    FrameTooLarge(u64, u64),
    Protocol(String),
    Shutdown(String),
    Application(String),
}

/// A frame: `header`'s encoding, then `payload`, behind their length.
fn frame_of(header: &Header, payload: &[u8]) -> Vec<u8> {
    let head = frame::encode(header, None::<&()>, usize::MAX).unwrap();
    let len = (head.len() - PREFIX_LEN + payload.len()) as u32;
    let mut wire = len.to_be_bytes().to_vec();
    wire.extend_from_slice(&head[PREFIX_LEN..]);
    wire.extend_from_slice(payload);
    wire
}

fn payload_bytes(payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::Valid(api) => postcard::to_allocvec(api).unwrap(),
        Payload::Raw(raw) => raw.0.clone(),
    }
}

/// The bytes of `op`, or `None` for a flush.
fn encode_op(op: &Op) -> Option<Vec<u8>> {
    Some(match op {
        Op::Event(p) => frame_of(&Header::Event, &payload_bytes(p)),
        Op::Request {
            id,
            timeout_ms,
            payload,
        } => frame_of(
            &Header::Request {
                id: id.get(),
                timeout_ms: *timeout_ms,
            },
            &payload_bytes(payload),
        ),
        Op::Response { id, payload } => frame_of(&Header::Response { id: id.get() }, &payload.0),
        Op::Failure { id, error } => {
            let error = match error {
                Remote::NoHandler(event) => RemoteError::NoHandler {
                    event: event.clone(),
                },
                Remote::NotARequest(event) => RemoteError::NotARequest {
                    event: event.clone(),
                },
                Remote::HandlerPanicked(message) => RemoteError::HandlerPanicked {
                    message: message.clone(),
                },
                Remote::BadRequest(message) => RemoteError::BadRequest {
                    message: message.clone(),
                },
                Remote::ResponseTooLarge(size, max) => RemoteError::ResponseTooLarge {
                    size: *size,
                    max: *max,
                },
                Remote::Encode(message) => RemoteError::Encode {
                    message: message.clone(),
                },
            };
            frame_of(
                &Header::Failure {
                    id: id.get(),
                    error,
                },
                &[],
            )
        }
        Op::Cancel { id } => frame_of(&Header::Cancel { id: id.get() }, &[]),
        Op::Ping => frame_of(&Header::Ping, &[]),
        Op::Pong => frame_of(&Header::Pong, &[]),
        Op::Close(reason) => {
            let reason = match reason {
                Reason::Normal => CloseReason::Normal,
                Reason::FrameTooLarge(size, max) => CloseReason::FrameTooLarge {
                    size: *size,
                    max: *max,
                },
                Reason::Protocol(s) => CloseReason::Protocol(s.clone()),
                Reason::Shutdown(s) => CloseReason::Shutdown(s.clone()),
                Reason::Application(s) => CloseReason::Application(s.clone()),
            };
            frame_of(&Header::Close(reason), &[])
        }
        Op::StreamItem { id, payload } => {
            frame_of(&Header::StreamItem { id: id.get() }, &payload.0)
        }
        Op::StreamEnd { id, error } => frame_of(
            &Header::StreamEnd {
                id: id.get(),
                error: error
                    .clone()
                    .map(|message| RemoteError::HandlerFailed { message }),
            },
            &[],
        ),
        Op::Credit { id, items, bytes } => frame_of(
            &Header::Credit {
                id: id.get(),
                items: *items,
                bytes: *bytes,
            },
            &[],
        ),
        Op::Body(body) => {
            let mut wire = (body.0.len() as u32).to_be_bytes().to_vec();
            wire.extend_from_slice(&body.0);
            wire
        }
        Op::Prefix(len) => len.to_be_bytes().to_vec(),
        Op::Raw(raw) => raw.0.clone(),
        Op::Flush => return None,
    })
}

/// How the server's reading of our stream ends.
#[derive(Debug, PartialEq)]
enum End {
    /// Our bytes ran out, between frames or inside one: no `Close` back.
    HungUp,
    /// We sent `Close`: no `Close` back.
    Closed,
    /// A length over the server's limit: `Close(FrameTooLarge)` back.
    TooLarge { size: usize },
    /// An undecodable header or a handshake frame: `Close(Protocol)` back.
    Protocol,
}

/// What the server reads from our stream, frame by frame, as its codec
/// does: the requests (by id, their payloads), the pings, and how it ends.
struct View {
    requests: HashMap<u64, Vec<Bytes>>,
    pings: usize,
    end: End,
}

fn server_view(wire: &[u8]) -> View {
    let mut view = View {
        requests: HashMap::new(),
        pings: 0,
        end: End::HungUp,
    };
    let mut rest = wire;
    while rest.len() >= PREFIX_LEN {
        let len = u32::from_be_bytes(rest[..PREFIX_LEN].try_into().unwrap()) as usize;
        if len > SERVER_MAX_FRAME {
            view.end = End::TooLarge { size: len };
            break;
        }
        let Some(body) = rest.get(PREFIX_LEN..PREFIX_LEN + len) else {
            break;
        };
        rest = &rest[PREFIX_LEN + len..];
        match frame::decode(&Bytes::copy_from_slice(body)) {
            Ok((Header::Request { id, .. }, payload)) => {
                view.requests.entry(id).or_default().push(payload)
            }
            Ok((Header::Ping, _)) => view.pings += 1,
            Ok((Header::Close(_), _)) => {
                view.end = End::Closed;
                break;
            }
            Ok((Header::Hello(_) | Header::Welcome { .. } | Header::Reject(_), _)) | Err(_) => {
                view.end = End::Protocol;
                break;
            }
            Ok(_) => {}
        }
    }
    view
}

/// Checks what the server sent after its `Welcome` against what it read.
fn check_replies(out: &[u8], view: &View, limit: usize) {
    let max_out = limit.min(SERVER_MAX_FRAME);
    let mut replies: HashMap<u64, usize> = HashMap::new();
    let mut pongs = 0;
    let mut close = None;
    let mut rest = out;
    while !rest.is_empty() {
        assert!(close.is_none(), "frames after the server's Close");
        assert!(
            rest.len() >= PREFIX_LEN,
            "the server's output ends inside a length prefix"
        );
        let len = u32::from_be_bytes(rest[..PREFIX_LEN].try_into().unwrap()) as usize;
        // At most the smaller of our limit and its own, as the protocol says.
        assert!(
            len <= max_out,
            "the server sent a {len}-byte frame over the limit of {max_out}"
        );
        let body = rest
            .get(PREFIX_LEN..PREFIX_LEN + len)
            .expect("the server's output ends inside a frame");
        rest = &rest[PREFIX_LEN + len..];
        let (header, payload) = frame::decode(&Bytes::copy_from_slice(body))
            .expect("the server sent an undecodable frame");
        let id = match &header {
            Header::Response { id } | Header::Failure { id, .. } => *id,
            Header::Pong => {
                pongs += 1;
                assert!(pongs <= view.pings, "more pongs than pings");
                continue;
            }
            Header::Ping => continue, // the heartbeat
            Header::Close(reason) => {
                close = Some(reason.clone());
                continue;
            }
            other => panic!("the server sent {other:?}"),
        };
        let asked = view.requests.get(&id).map_or(0, Vec::len);
        let n = replies.entry(id).or_default();
        *n += 1;
        assert!(*n <= asked, "{n} replies to {asked} requests with id {id}");
        if asked != 1 {
            continue; // which reply answers which request is not known
        }
        let request = postcard::from_bytes::<Api>(&view.requests[&id][0]);
        match (&request, &header) {
            (Ok(Api::Sum(n)), Header::Response { .. }) => {
                let sum = n.iter().fold(0i64, |a, b| a.wrapping_add(*b));
                assert_eq!(
                    postcard::from_bytes::<i64>(&payload).ok(),
                    Some(sum),
                    "wrong sum"
                );
            }
            (Ok(Api::Echo(s)), Header::Response { .. }) => {
                assert_eq!(
                    postcard::from_bytes::<String>(&payload).ok().as_ref(),
                    Some(s),
                    "wrong echo"
                );
            }
            (
                Ok(Api::Sum(_) | Api::Echo(_)),
                Header::Failure {
                    error: RemoteError::ResponseTooLarge { size, max },
                    ..
                },
            ) => {
                assert!(
                    *size > *max && *max == max_out as u64,
                    "{size} is not over {max} (ours: {max_out})"
                );
            }
            (
                Ok(Api::Note(_) | Api::Silent(_)),
                Header::Failure {
                    error: RemoteError::NotARequest { .. },
                    ..
                },
            ) => {}
            (
                Ok(Api::Orphan(_)),
                Header::Failure {
                    error: RemoteError::NoHandler { .. },
                    ..
                },
            ) => {}
            (
                Err(_),
                Header::Failure {
                    error: RemoteError::BadRequest { .. },
                    ..
                },
            ) => {}
            _ => panic!("{header:?} answers {request:?}"),
        }
    }
    match (&view.end, &close) {
        (End::HungUp | End::Closed, None) => {}
        (End::Protocol, Some(CloseReason::Protocol(_))) => {}
        (End::TooLarge { size }, Some(CloseReason::FrameTooLarge { size: s, max }))
            if *s == *size as u64 && *max == SERVER_MAX_FRAME as u64 => {}
        (end, close) => panic!("the server's reading ended {end:?}, and it sent {close:?}"),
    }
}

/// Waits, up to the deadline, for the server to forget every connection.
async fn no_connections(io: &Server<Api>) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut polls = 0u32;
    while io.metrics().connections_open != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a connection stays in the server's table"
        );
        // The server's worker usually needs a moment only: spin a little,
        // then poll every millisecond.
        polls += 1;
        if polls < 64 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fuzz_target!(|input: Input| {
    let f = fixture();
    let limit = input.limit.bytes();
    // The server's view of the stream does not depend on how it is cut.
    let mut pieces = vec![Vec::new()];
    for op in &input.ops {
        match encode_op(op) {
            Some(bytes) => pieces.last_mut().unwrap().extend_from_slice(&bytes),
            None => pieces.push(Vec::new()),
        }
    }
    let view = server_view(&pieces.concat());
    f.rt.block_on(async {
        let mut raw = tokio::net::UnixStream::connect(&f.path).await.unwrap();
        let hello = Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            sends: Api::SCHEMA_ID,
            receives: Api::SCHEMA_ID,
            max_frame: limit,
            lenient: false,
            auth: None,
        };
        let hello = frame::encode(&Header::Hello(hello), None::<&()>, usize::MAX).unwrap();
        raw.write_all(&hello).await.unwrap();
        // The Welcome, alone: the server sends nothing else before we do.
        let mut prefix = [0u8; PREFIX_LEN];
        raw.read_exact(&mut prefix).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        raw.read_exact(&mut body).await.unwrap();
        let welcome = frame::decode(&Bytes::from(body)).unwrap().0;
        assert!(
            matches!(welcome, Header::Welcome { .. }),
            "the handshake got {welcome:?}"
        );

        // Write and read at once: a server whose replies we did not read
        // could not read on either.
        let (mut rd, mut wr) = raw.into_split();
        let write = async move {
            for piece in &pieces {
                if wr.write_all(piece).await.is_err() {
                    return wr; // the server hung up
                }
                tokio::task::yield_now().await;
            }
            let _ = wr.shutdown().await;
            wr // half-closed, not dropped: the server may still answer
        };
        let read = async move {
            let mut out = Vec::new();
            loop {
                match rd.read_buf(&mut out).await {
                    Ok(0) | Err(_) => return out, // hung up, or reset after the last bytes
                    Ok(_) => {}
                }
            }
        };
        let both = tokio::time::timeout(DEADLINE, async { tokio::join!(write, read) }).await;
        let (_wr, out) = both.expect("the server neither hung up nor answered within the deadline");
        check_replies(&out, &view, limit as usize);
        no_connections(&f.io).await;

        // Now and then, prove a real client is still served.
        if input.check_client {
            let socket = Socket::<Api>::connect(&f.path).await.unwrap();
            assert_eq!(socket.sum(vec![1, 2]).await.unwrap(), 3);
            assert_eq!(socket.echo("hi".into()).await.unwrap(), "hi");
            socket.close().await;
            no_connections(&f.io).await;
        }
    });
});
