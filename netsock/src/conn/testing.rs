//! Test support for the connection core's unit tests: a tiny event enum, a
//! connection over the in-memory transport with a hand-written raw peer on
//! the other end, and ways to register handlers without a `Socket`.
//!
//! Every test runs on a current-thread runtime with paused time, so the
//! order tasks run in is fixed and timers fire only when every task waits:
//! a `timeout` that elapses there means "nothing more can happen", not "it
//! was slow".

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, FramedRead};

use super::handler_table::{event_fn, Slot};
use super::serve::encode_reply;
use super::{Carry, Data, Handshaken, Shared, SocketId};
use crate::config::Config;
use crate::error::SocketError;
use crate::events::{Events, Variant};
use crate::metrics::Meter;
use crate::sync::write;
use crate::transport::memory::{self, MemoryStream};
use crate::transport::PeerAddr;
use crate::wire::frame::{self, FrameCodec, Header};

/// The test's event enum, implemented by hand: `#[derive(Events)]` names
/// `::netsock`, which does not resolve inside the crate (and is behind the
/// `macros` feature).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) enum Api {
    /// Variant 0: an event.
    Ev(u32),
    /// Variant 1: an event, usually left without a handler.
    Other(u32),
    /// Variant 2: a request.
    Req(u32),
}

pub(crate) const EV: u32 = 0;
pub(crate) const REQ: u32 = 2;

impl Events for Api {
    const VARIANTS: &'static [Variant] = &[
        Variant::event("Ev"),
        Variant::event("Other"),
        Variant::request("Req", "u32"),
    ];
    const SCHEMA: &'static str = "Api{Ev(u32),Other(u32),Req(u32)->u32}";

    fn variant_index(&self) -> u32 {
        match self {
            Api::Ev(_) => 0,
            Api::Other(_) => 1,
            Api::Req(_) => 2,
        }
    }

    fn variant_defs(_: &mut crate::schema::Types) -> Vec<crate::schema::VariantDef> {
        use crate::schema::{Fields, Type, VariantDef};
        vec![
            VariantDef::event("Ev", Fields::Newtype(Type::U32)),
            VariantDef::event("Other", Fields::Newtype(Type::U32)),
            VariantDef::request("Req", Fields::Newtype(Type::U32), Type::U32),
        ]
    }
}

/// How long a test waits for something that must happen before it fails
/// instead of hanging; longer than any timer a test sets.
pub(crate) const GUARD: Duration = Duration::from_secs(600);

/// Awaits `fut`, failing the test if it takes longer than [`GUARD`].
pub(crate) async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .expect("timed out: something the test waits for never happened")
}

/// Whether `fut` is still waiting once every task has run out of work for
/// `d` (under paused time: nothing more happens without the peer).
pub(crate) async fn still_waiting<T>(d: Duration, fut: impl Future<Output = T>) -> bool {
    tokio::time::timeout(d, fut).await.is_err()
}

/// Settings for tests: the defaults without the heartbeat, so that only the
/// heartbeat tests see pings.
pub(crate) fn config() -> Config {
    Config {
        heartbeat: None,
        ..Config::default()
    }
}

/// A connection whose tasks run, and the raw peer at its other end.
pub(crate) struct Conn {
    pub(crate) shared: Arc<Shared<Api>>,
    pub(crate) peer: Peer,
}

/// Starts a connection with `config`, each direction of its stream buffering
/// `buffer` bytes; the peer announced the same frame limit as ours.
pub(crate) fn connect(config: Config, buffer: usize) -> Conn {
    let (ours, theirs) = MemoryStream::pair(buffer);
    let (read, writer) = memory::split(ours);
    let conn = Handshaken {
        id: SocketId(1),
        peer: PeerAddr::Memory("test".into()),
        cred: None,
        cert: None,
        data: Data::default(),
        peer_max_frame: config.max_frame_size,
        reader: FramedRead::new(read, FrameCodec::new(config.max_frame_size)),
        writer,
        session: None,
    };
    let carry = Carry::new(Data::default(), Meter::default(), true);
    Conn {
        shared: Shared::spawn(conn, Arc::new(config), carry, None),
        peer: Peer {
            stream: theirs,
            buf: BytesMut::new(),
            codec: FrameCodec::new(u32::MAX as usize),
        },
    }
}

/// A complete frame.
pub(crate) fn encode(header: Header, payload: Option<&Api>) -> Bytes {
    frame::encode(&header, payload, usize::MAX).unwrap()
}

/// An `Event` frame.
pub(crate) fn event(value: Api) -> Bytes {
    encode(Header::Event, Some(&value))
}

/// A `Request` frame without a deadline.
pub(crate) fn request(id: u64, value: Api) -> Bytes {
    encode(Header::Request { id, timeout_ms: 0 }, Some(&value))
}

/// The hand-written peer: writes raw bytes, reads whole frames.
pub(crate) struct Peer {
    pub(crate) stream: MemoryStream,
    buf: BytesMut,
    codec: FrameCodec,
}

impl Peer {
    /// Writes `bytes`, waiting for room as needed.
    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        within(self.stream.write_all(bytes)).await.unwrap();
    }

    /// Writes one frame.
    pub(crate) async fn send(&mut self, header: Header, payload: Option<&Api>) {
        self.write(&encode(header, payload)).await;
    }

    /// The next frame, or `None` at the end of the stream. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Option<(Header, Bytes)> {
        loop {
            if let Some(body) = self.codec.decode(&mut self.buf).unwrap() {
                return Some(frame::decode(&body).unwrap());
            }
            if self.stream.read_buf(&mut self.buf).await.unwrap() == 0 {
                assert!(self.buf.is_empty(), "the stream ended inside a frame");
                return None;
            }
        }
    }

    /// The next frame, which must come.
    pub(crate) async fn recv(&mut self) -> (Header, Bytes) {
        within(self.next()).await.expect("the stream ended")
    }

    /// The next frame if it is there already, without letting any other
    /// task run.
    pub(crate) fn ready(&mut self) -> Option<(Header, Bytes)> {
        self.next().now_or_never().flatten()
    }

    /// Reads to the end of the stream, which must come, and gives the
    /// frames read on the way.
    pub(crate) async fn until_eof(&mut self) -> Vec<(Header, Bytes)> {
        within(async {
            let mut frames = Vec::new();
            while let Some(frame) = self.next().await {
                frames.push(frame);
            }
            frames
        })
        .await
    }
}

/// Decodes a reply payload.
pub(crate) fn reply<T: serde::de::DeserializeOwned>(payload: &[u8]) -> T {
    postcard::from_bytes(payload).unwrap()
}

/// Registers an event handler for `variant`, as `Socket::on` does.
pub(crate) fn on_event<F, Fut>(shared: &Shared<Api>, variant: u32, handler: F)
where
    F: Fn(Api) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    write(&shared.handlers).slots[variant as usize] = Slot::Event(event_fn(move |value| {
        let done = handler(value);
        async move {
            done.await;
            Ok(())
        }
    }));
}

/// Registers a request handler for `variant`, as `Socket::on_request`
/// does: its value is the reply.
pub(crate) fn on_request<R, F, Fut>(shared: &Shared<Api>, variant: u32, handler: F)
where
    R: Serialize + 'static,
    F: Fn(Api) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    write(&shared.handlers).slots[variant as usize] =
        Slot::Request(Arc::new(move |value, id, max, _upload| {
            let reply = handler(value);
            Box::pin(async move { encode_reply(id, &reply.await, max) })
        }));
}

/// Sends what the error hook sees into a channel.
pub(crate) fn errors(shared: &Shared<Api>) -> mpsc::UnboundedReceiver<SocketError> {
    let (tx, rx) = mpsc::unbounded_channel();
    write(&shared.handlers).error = Some(Arc::new(move |err| {
        let _ = tx.send(err);
    }));
    rx
}

/// Sends a message when dropped: tells a test that a handler's future was
/// dropped (aborted) rather than finished.
pub(crate) struct DropGuard(pub(crate) Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}
