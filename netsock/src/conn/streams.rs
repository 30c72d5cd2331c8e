//! Streams: a request answered with many items, or carrying many (an
//! upload), under credit.
//!
//! Both directions work alike, told apart by [`Dir`]. The reading side is
//! an [`ItemStream`]: its items wait in a queue that
//! the reader fills and the consumer empties; each time the consumer has
//! read half the window, it grants that much back with a `Credit` frame,
//! so the queue never holds more than the window (the peer that sends
//! beyond it is cut off: see [`Streams::item`]).
//!
//! The sending side is a *pump* task per stream: it waits for credit,
//! then takes the handler's next item and queues its frame; without credit
//! it does not poll the handler's stream at all, so a consumer that stops
//! reading stops the producer. A `Cancel`, or the end of the connection,
//! aborts the pump, dropping the handler's stream.
//!
//! The wire rules are in [`frame`](crate::frame) (*Streams*).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, Stream, StreamExt};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tracing::Instrument;

use super::Shared;
use crate::error::{CallError, DisconnectReason};
use crate::events::Events;
use crate::handler::{panic_message, StreamItem};
use crate::sync::lock;
use crate::wire::frame::{
    self, Header, RemoteError, PREFIX_LEN, RECEIVE_WINDOW_ITEMS, STREAM_WINDOW_BYTES,
    STREAM_WINDOW_ITEMS,
};

/// A stream as its pump sees it: complete item frames, or why the stream
/// failed.
pub(crate) type ItemFrames = BoxStream<'static, Result<Bytes, RemoteError>>;

/// Which way a stream's items flow, relative to its request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Dir {
    /// From the handler to the caller: a request answered with a stream.
    Answer,
    /// From the caller to the handler: the stream a request carries.
    Upload,
}

impl Dir {
    fn item(self, id: u64) -> Header {
        match self {
            Dir::Answer => Header::StreamItem { id },
            Dir::Upload => Header::UploadItem { id },
        }
    }

    fn end(self, id: u64, error: Option<RemoteError>) -> Header {
        match self {
            Dir::Answer => Header::StreamEnd { id, error },
            Dir::Upload => Header::UploadEnd { id, error },
        }
    }

    fn credit(self, id: u64, items: u32, bytes: u64) -> Header {
        match self {
            Dir::Answer => Header::Credit { id, items, bytes },
            Dir::Upload => Header::UploadCredit { id, items, bytes },
        }
    }
}

/// The streams open on one connection, both ways, by direction and
/// request id (this side's own ids for the answers it reads and the
/// uploads it sends; the peer's for the others).
#[derive(Default)]
pub(crate) struct Streams {
    tables: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    /// Set when the connection ended: no stream opens any more.
    closed: Option<DisconnectReason>,
    /// Streams this side reads.
    incoming: HashMap<(Dir, u64), Arc<Incoming>, Keys>,
    /// Streams this side sends.
    outgoing: HashMap<(Dir, u64), Arc<Outgoing>, Keys>,
}

/// Hashes a stream's key with a multiply per word. Every item looks its
/// stream up, and SipHash took a sixth of reading an item; its defence
/// against chosen keys buys nothing here, where a peer's ids index tables
/// bounded by the limit on open requests and streams.
type Keys = std::hash::BuildHasherDefault<KeyHasher>;

#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|b| self.write_u64(u64::from(*b)));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What frames the connection sends for a stream, without knowing its
/// event types: `Credit` and `Cancel`.
pub(crate) trait Link: Send + Sync + 'static {
    /// Queues a small control frame; when the queue is full, from a task.
    fn send_control(self: Arc<Self>, frame: Bytes);
    fn streams(&self) -> &Streams;
}

impl<In: Events> Link for Shared<In> {
    fn send_control(self: Arc<Self>, frame: Bytes) {
        if let Err(super::QueueError::Full) = self.outbox.try_push(&frame) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = self.queue(&frame).await;
                });
            }
        }
    }

    fn streams(&self) -> &Streams {
        &self.streams
    }
}

/// The caller's side of one stream: the items received and not yet read.
struct Incoming {
    state: Mutex<InState>,
}

struct InState {
    /// Each item's payload, and its frame body's length (what it cost in
    /// credit, and is granted back once read).
    queue: VecDeque<(Bytes, usize)>,
    /// How the stream ended, once it has: given after the queued items.
    end: Option<Result<(), CallError>>,
    waker: Option<Waker>,
    /// What the sender may still send: it may send while both are positive.
    credit_items: i64,
    credit_bytes: i64,
}

impl Incoming {
    fn new() -> Self {
        Incoming {
            state: Mutex::new(InState {
                queue: VecDeque::new(),
                end: None,
                waker: None,
                credit_items: i64::from(STREAM_WINDOW_ITEMS),
                credit_bytes: STREAM_WINDOW_BYTES as i64,
            }),
        }
    }

    /// Widens the stream's item credit from the protocol's initial window
    /// to [`RECEIVE_WINDOW_ITEMS`], telling the sender.
    fn widen(&self, link: &Arc<dyn Link>, dir: Dir, id: u64) {
        let extra = RECEIVE_WINDOW_ITEMS - STREAM_WINDOW_ITEMS;
        {
            let mut s = lock(&self.state);
            if s.end.is_some() {
                return;
            }
            s.credit_items += i64::from(extra);
        }
        if let Ok(frame) = frame::encode(&dir.credit(id, extra, 0), None::<&()>, usize::MAX) {
            link.clone().send_control(frame);
        }
    }

    fn end(&self, end: Result<(), CallError>) {
        let mut s = lock(&self.state);
        if s.end.is_none() {
            s.end = Some(end);
        }
        let waker = s.waker.take();
        drop(s);
        waker.into_iter().for_each(Waker::wake);
    }
}

/// The answering side of one stream: its credit, and how to stop its pump.
struct Outgoing {
    credit: Mutex<(i64, i64)>,
    more: Notify,
    abort: AbortHandle,
}

impl Outgoing {
    /// Waits until the receiver lets us send one more item.
    async fn credit(&self) {
        if self.has_credit() {
            return;
        }
        loop {
            let more = self.more.notified();
            tokio::pin!(more);
            more.as_mut().enable();
            if self.has_credit() {
                return;
            }
            more.await;
        }
    }

    fn has_credit(&self) -> bool {
        let (items, bytes) = *lock(&self.credit);
        items > 0 && bytes > 0
    }

    fn spend(&self, body: usize) {
        let mut c = lock(&self.credit);
        c.0 -= 1;
        c.1 = c.1.saturating_sub(body as i64);
    }
}

/// The most credit a peer can pile up: far beyond any window, and far from
/// overflowing.
const MAX_CREDIT: i64 = 1 << 48;

impl Streams {
    /// Opens the reading side of stream `id`: for an answer, before its
    /// request is sent; for an upload, as its request arrives.
    fn register(&self, dir: Dir, id: u64) -> Result<Arc<Incoming>, CallError> {
        let mut t = lock(&self.tables);
        if let Some(reason) = &t.closed {
            return Err(CallError::Disconnected(reason.clone()));
        }
        let incoming = Arc::new(Incoming::new());
        t.incoming.insert((dir, id), incoming.clone());
        Ok(incoming)
    }

    fn forget(&self, dir: Dir, id: u64) {
        lock(&self.tables).incoming.remove(&(dir, id));
    }

    /// An item of stream `id` arrived, its frame body `body` bytes long.
    /// Gives the `Cancel` frame to send when the peer sent an answer's item
    /// without credit (that stream then fails, and only that one; an
    /// upload sent beyond its credit fails for its handler). An item for no
    /// open stream (one that ended, or that we cancelled) is dropped.
    pub(crate) fn item(&self, dir: Dir, id: u64, body: usize, payload: Bytes) -> Option<Bytes> {
        let Some(incoming) = lock(&self.tables).incoming.get(&(dir, id)).cloned() else {
            tracing::trace!(id, ?dir, "stream item for no open stream, dropped");
            return None;
        };
        let mut s = lock(&incoming.state);
        if s.end.is_some() {
            return None;
        }
        if s.credit_items <= 0 || s.credit_bytes <= 0 {
            drop(s);
            self.forget(dir, id);
            let message = "the peer sent a stream item beyond the credit granted".to_owned();
            tracing::warn!(id, ?dir, "{message}");
            incoming.end(Err(CallError::StreamProtocol { message }));
            return match dir {
                Dir::Answer => frame::encode(&Header::Cancel { id }, None::<&()>, usize::MAX).ok(),
                Dir::Upload => None,
            };
        }
        s.credit_items -= 1;
        s.credit_bytes = s.credit_bytes.saturating_sub(body as i64);
        s.queue.push_back((payload, body));
        let waker = s.waker.take();
        drop(s);
        waker.into_iter().for_each(Waker::wake);
        None
    }

    /// Stream `id` ended, as `error` says.
    pub(crate) fn end(&self, dir: Dir, id: u64, error: Option<RemoteError>) {
        let Some(incoming) = lock(&self.tables).incoming.remove(&(dir, id)) else {
            tracing::trace!(id, ?dir, "end of no open stream, ignored");
            return;
        };
        incoming.end(error.map_or(Ok(()), |e| Err(e.into())));
    }

    /// The peer grants stream `id` more credit.
    pub(crate) fn credit(&self, dir: Dir, id: u64, items: u32, bytes: u64) {
        let Some(outgoing) = lock(&self.tables).outgoing.get(&(dir, id)).cloned() else {
            tracing::trace!(id, ?dir, "credit for no open stream, ignored");
            return;
        };
        let mut c = lock(&outgoing.credit);
        c.0 = (c.0 + i64::from(items)).min(MAX_CREDIT);
        c.1 = (c.1 + bytes.min(MAX_CREDIT as u64) as i64).min(MAX_CREDIT);
        drop(c);
        outgoing.more.notify_one();
    }

    /// The peer cancelled its request `id`: the pump of the stream
    /// answering it stops, dropping the handler's stream, and its upload is
    /// no longer read. False if no answer to it was open.
    pub(crate) fn cancel(&self, id: u64) -> bool {
        let mut t = lock(&self.tables);
        t.incoming.remove(&(Dir::Upload, id));
        let removed = t.outgoing.remove(&(Dir::Answer, id));
        drop(t);
        removed.map(|o| o.abort.abort()).is_some()
    }

    /// Stops sending the upload of this side's request `id` (the request
    /// was answered, or given up).
    pub(crate) fn stop_upload(&self, id: u64) {
        let removed = lock(&self.tables).outgoing.remove(&(Dir::Upload, id));
        if let Some(outgoing) = removed {
            outgoing.abort.abort();
        }
    }

    /// Opens the handler's side of the upload that the peer's request `id`
    /// carries, as the request arrives (before any of its items can).
    /// `None` once the connection has ended.
    pub(crate) fn expect_upload(&self, link: Arc<dyn Link>, id: u64) -> Option<Upload> {
        let incoming = self.register(Dir::Upload, id).ok()?;
        Some(Upload {
            id,
            link,
            incoming,
            armed: true,
        })
    }

    /// The connection ended: every stream we read ends with
    /// `Disconnected`, every pump stops, and none opens any more.
    pub(crate) fn close(&self, reason: &DisconnectReason) {
        let mut t = lock(&self.tables);
        t.closed = Some(reason.clone());
        let incoming: Vec<_> = t.incoming.drain().map(|(_, i)| i).collect();
        let outgoing: Vec<_> = t.outgoing.drain().map(|(_, o)| o).collect();
        drop(t);
        for i in incoming {
            i.end(Err(CallError::Disconnected(reason.clone())));
        }
        for o in outgoing {
            o.abort.abort();
        }
    }

    /// Streams open both ways (for tests).
    #[cfg(test)]
    pub(crate) fn open(&self) -> (usize, usize) {
        let t = lock(&self.tables);
        (t.incoming.len(), t.outgoing.len())
    }
}

/// Starts sending the stream of request `id` in direction `dir`, `items`
/// made by [`item_frames`] for it. Answering a stream request, the pump
/// queues the empty `Response` that accepts it, then the items as credit
/// allows, then `StreamEnd`; sending an upload, the items then
/// `UploadEnd`. Gives the `Failure` frame to send instead when an answer
/// cannot open (too many open, or the connection is ending).
pub(crate) fn start<In: Events>(
    shared: &Arc<Shared<In>>,
    dir: Dir,
    id: u64,
    items: ItemFrames,
) -> Option<Bytes> {
    let (abort, registration) = AbortHandle::new_pair();
    let outgoing = Arc::new(Outgoing {
        credit: Mutex::new((i64::from(STREAM_WINDOW_ITEMS), STREAM_WINDOW_BYTES as i64)),
        more: Notify::new(),
        abort,
    });
    let limit = shared.config.max_concurrent_requests;
    {
        let mut t = lock(&shared.streams.tables);
        if t.closed.is_some() {
            return None;
        }
        let answers = t.outgoing.keys().filter(|k| k.0 == Dir::Answer).count();
        if dir == Dir::Answer && answers >= limit && !t.outgoing.contains_key(&(dir, id)) {
            drop(t);
            let message = format!("too many open streams on this connection (at most {limit})");
            let error = RemoteError::HandlerFailed { message };
            return frame::encode_control(Header::Failure { id, error }, shared.max_out).ok();
        }
        if let Some(earlier) = t.outgoing.insert((dir, id), outgoing.clone()) {
            // A reused id: as for requests, the earlier one stops.
            earlier.abort.abort();
        }
    }
    let task_shared = shared.clone();
    let pump = Abortable::new(
        pump(task_shared, dir, id, outgoing.clone(), items),
        registration,
    );
    let shared = shared.clone();
    tokio::spawn(
        async move {
            let _ = pump.await;
            // Done or aborted: the entry goes, unless it is a newer stream's.
            let mut t = lock(&shared.streams.tables);
            if t.outgoing
                .get(&(dir, id))
                .is_some_and(|o| Arc::ptr_eq(o, &outgoing))
            {
                t.outgoing.remove(&(dir, id));
            }
        }
        .instrument(tracing::debug_span!("stream", id, ?dir)),
    );
    None
}

async fn pump<In: Events>(
    shared: Arc<Shared<In>>,
    dir: Dir,
    id: u64,
    outgoing: Arc<Outgoing>,
    mut items: ItemFrames,
) {
    if dir == Dir::Answer {
        let accepted = frame::encode(&Header::Response { id }, None::<&()>, shared.max_out);
        let Ok(accepted) = accepted else {
            return;
        };
        if shared.queue(&accepted).await.is_err() {
            return;
        }
        shared.meter.add(|c| &c.requests_served, 1);
    }
    let error = loop {
        outgoing.credit().await;
        match std::panic::AssertUnwindSafe(items.next())
            .catch_unwind()
            .await
        {
            Ok(Some(Ok(item))) => {
                outgoing.spend(item.len() - PREFIX_LEN);
                if shared.queue(&item).await.is_err() {
                    return;
                }
            }
            Ok(Some(Err(error))) => break Some(error),
            Ok(None) => break None,
            Err(panic) => {
                let message = panic_message(&*panic);
                tracing::warn!(id, %message, "stream handler panicked");
                break Some(RemoteError::HandlerPanicked { message });
            }
        }
    };
    // The stream is over: drop it before telling the reader.
    drop(items);
    if let Ok(end) = frame::encode_control(dir.end(id, error), shared.max_out) {
        let _ = shared.queue(&end).await;
    }
}

/// The frames of a stream: each item encoded as a `StreamItem` (or, for an
/// upload, an `UploadItem`) of request `id`, within the peer's limit
/// `max`; an item's `Err` ends the stream with its text, as does an item
/// that cannot travel.
pub(crate) fn item_frames<T, M, S>(stream: S, dir: Dir, id: u64, max: usize) -> ItemFrames
where
    T: serde::Serialize,
    M: 'static,
    S: Stream + Send + 'static,
    S::Item: StreamItem<T, M>,
{
    let mut failed = false;
    stream
        .map(move |item| {
            let item = item
                .into_item()
                .map_err(|message| RemoteError::HandlerFailed { message })?;
            frame::encode(&dir.item(id), Some(&item), max).map_err(|e| match e {
                frame::FrameError::TooLarge { size, max } => RemoteError::ResponseTooLarge {
                    size: size as u64,
                    max: max as u64,
                },
                e => RemoteError::Encode {
                    message: e.to_string(),
                },
            })
        })
        // Nothing after the first error.
        .take_while(move |item| {
            let go = !failed;
            failed |= item.is_err();
            std::future::ready(go)
        })
        .boxed()
}

/// What can make a stream request of type `E` and give its items: a
/// [`Socket`](crate::Socket) sending `E`. The stream stubs generated in
/// `{Enum}Emit` call it. Not public API (it is reached through
/// `netsock::__private`); next to [`ItemStream`], so that the traits below
/// the connection need not know it.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot make `{E}` stream requests: only a `Socket` can",
    label = "not a socket"
)]
pub trait CallStream<E: crate::events::Events> {
    /// Sends the stream request variant `event` and gives its items,
    /// decoded as `T`; see [`Socket::request_stream`](crate::Socket::request_stream).
    fn request_stream<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        event: E,
    ) -> impl std::future::Future<Output = Result<ItemStream<T>, crate::error::CallError>> + Send;

    /// Sends the request variant `event` carrying the items of `upload`,
    /// and decodes the reply as `R`; see
    /// [`Socket::request_upload`](crate::Socket::request_upload).
    fn request_upload<R, U, M, S>(
        &self,
        event: E,
        upload: S,
    ) -> impl std::future::Future<Output = Result<R, crate::error::CallError>> + Send
    where
        R: serde::de::DeserializeOwned + Send + 'static,
        U: serde::Serialize + 'static,
        M: 'static,
        S: Stream + Send + 'static,
        S::Item: StreamItem<U, M>;

    /// Sends the request variant `event` carrying the items of `upload`,
    /// and gives the items it answers with; see
    /// [`Socket::request_upload_stream`](crate::Socket::request_upload_stream).
    fn request_upload_stream<T, U, M, S>(
        &self,
        event: E,
        upload: S,
    ) -> impl std::future::Future<Output = Result<ItemStream<T>, crate::error::CallError>> + Send
    where
        T: serde::de::DeserializeOwned + Send + 'static,
        U: serde::Serialize + 'static,
        M: 'static,
        S: Stream + Send + 'static,
        S::Item: StreamItem<U, M>;
}

/// What registers handlers for requests of type `E` that carry an upload:
/// a [`Socket`](crate::Socket) receiving `E`. The `on_*` methods generated
/// for such variants call it, by the variant's index. Not public API (it is
/// reached through `netsock::__private`); next to [`ItemStream`], which its
/// handlers take.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot handle incoming `{E}` requests itself: only a `Socket` has handlers",
    label = "not a socket"
)]
pub trait ReceiveUpload<E: crate::events::Events> {
    /// Registers the handler for the request variant at index `variant`,
    /// which carries an upload of `U`s: it takes the request and the
    /// upload's items, and the value of its future is the reply.
    fn on_upload<U, R, F, Fut>(&self, variant: u32, handler: F)
    where
        R: serde::Serialize + 'static,
        F: Fn(E, ItemStream<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static;

    /// As [`on_upload`](ReceiveUpload::on_upload), for a handler that also
    /// takes the socket.
    fn on_upload_with<U, R, F, Fut>(&self, variant: u32, handler: F)
    where
        Self: Sized,
        R: serde::Serialize + 'static,
        F: Fn(Self, E, ItemStream<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static;

    /// As [`on_upload`](ReceiveUpload::on_upload), for a request that
    /// answers with a stream: the handler's future gives it.
    fn on_upload_stream<U, T, M, S, F, Fut>(&self, variant: u32, handler: F)
    where
        T: serde::Serialize + 'static,
        M: 'static,
        S: Stream + Send + 'static,
        S::Item: StreamItem<T, M>,
        F: Fn(E, ItemStream<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static;

    /// As [`on_upload_stream`](ReceiveUpload::on_upload_stream), for a
    /// handler that also takes the socket.
    fn on_upload_stream_with<U, T, M, S, F, Fut>(&self, variant: u32, handler: F)
    where
        Self: Sized,
        T: serde::Serialize + 'static,
        M: 'static,
        S: Stream + Send + 'static,
        S::Item: StreamItem<T, M>,
        F: Fn(Self, E, ItemStream<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static;
}

/// A stream of items from the peer, the answer to a stream request: a
/// [`Stream`] of `Result<T, CallError>`, ending (`None`) after the last
/// item, or after one `Err` when the stream failed.
///
/// The generated stub (`socket.watch(..)`) gives it once the peer accepted
/// the request. Items arrive under credit: the peer sends at most a window
/// ahead of what was read (8192 items, 256 KiB), so an `ItemStream` that is
/// not read holds at most that much, and holds its producer. The request's
/// timeout applies to the first item too. Dropping it cancels the stream:
/// the handler's stream is dropped on the peer.
///
/// ```
/// use netsock::{Events, Server, Socket};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Events, Serialize, Deserialize, Debug)]
/// enum Api {
///     #[request(stream = u32)]
///     Count(u32),
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = Server::<Api>::bind("memory://").await?;
/// io.on_connection(|socket: Socket<Api>| async move {
///     socket.on_count(|n| async move { futures_util::stream::iter(0..n) });
///     Ok(())
/// });
/// io.spawn();
/// let socket = Socket::<Api>::connect(io.local_addr()).await?;
/// let mut items = socket.count(3).await?;
/// let mut got = Vec::new();
/// while let Some(item) = items.next().await {
///     got.push(item?);
/// }
/// assert_eq!(got, [0, 1, 2]);
/// # io.close().await;
/// # Ok(())
/// # }
/// ```
pub struct ItemStream<T> {
    id: u64,
    dir: Dir,
    link: Arc<dyn Link>,
    incoming: Arc<Incoming>,
    /// When waiting for the next item fails, and the timeout it stands for:
    /// until the first item, the request's; then the idle timeout, if set.
    timer: Option<(Pin<Box<tokio::time::Sleep>>, Duration)>,
    idle: Option<Duration>,
    /// The end was given (or the stream was cancelled): nothing more comes.
    done: bool,
    /// Items taken from the shared queue, not yet read.
    ready: VecDeque<(Bytes, usize)>,
    /// Read since the last grant of credit.
    read_items: u32,
    read_bytes: u64,
    /// The upload this side sends with the same request, if any: it stops
    /// when this stream goes.
    _sending: Option<Sending>,
    item: PhantomData<fn() -> T>,
}

/// The upload this side is sending for its request `id`: dropping it stops
/// the upload's pump (the request was answered, or given up).
pub(crate) struct Sending {
    id: u64,
    link: Arc<dyn Link>,
}

impl Sending {
    /// Starts sending `items` (made by [`item_frames`] for [`Dir::Upload`])
    /// as the upload of request `id`, whose `Request` frame is queued.
    pub(crate) fn start<In: Events>(shared: &Arc<Shared<In>>, id: u64, items: ItemFrames) -> Self {
        start(shared, Dir::Upload, id, items);
        Sending {
            id,
            link: shared.clone(),
        }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.link.streams().stop_upload(self.id);
    }
}

/// The handler's side of an upload, as its request arrives: given to the
/// handler as an [`ItemStream`], or, if no handler takes it, dropped, and
/// then the upload is no longer read.
pub(crate) struct Upload {
    id: u64,
    link: Arc<dyn Link>,
    incoming: Arc<Incoming>,
    armed: bool,
}

impl Upload {
    /// The upload's items, decoded as `T`.
    pub(crate) fn items<T>(mut self) -> ItemStream<T> {
        self.armed = false;
        self.incoming.widen(&self.link, Dir::Upload, self.id);
        ItemStream {
            id: self.id,
            dir: Dir::Upload,
            link: self.link.clone(),
            incoming: self.incoming.clone(),
            timer: None,
            idle: None,
            done: false,
            ready: VecDeque::new(),
            read_items: 0,
            read_bytes: 0,
            _sending: None,
            item: PhantomData,
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.armed {
            self.link.streams().forget(Dir::Upload, self.id);
        }
    }
}

impl<T> std::fmt::Debug for ItemStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemStream")
            .field("id", &self.id)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// The caller's side of a stream request being made: open before the
/// request is sent, so that no item can arrive before it; forgotten if the
/// request fails or its caller gives up.
pub(crate) struct Opening {
    id: u64,
    link: Arc<dyn Link>,
    incoming: Arc<Incoming>,
    armed: bool,
}

impl Opening {
    pub(crate) fn new<In: Events>(shared: &Arc<Shared<In>>, id: u64) -> Result<Self, CallError> {
        let incoming = shared.streams.register(Dir::Answer, id)?;
        Ok(Opening {
            id,
            link: shared.clone(),
            incoming,
            armed: true,
        })
    }

    /// The peer accepted: the items, whose first is due by `deadline`
    /// (`None`: no deadline), `timeout` after the request was made.
    /// With `sending`, the upload the request carries, which goes on
    /// until the stream is dropped.
    pub(crate) fn accepted<T>(
        mut self,
        deadline: Option<tokio::time::Instant>,
        timeout: Duration,
        sending: Option<Sending>,
    ) -> ItemStream<T> {
        self.armed = false;
        self.incoming.widen(&self.link, Dir::Answer, self.id);
        ItemStream {
            id: self.id,
            dir: Dir::Answer,
            link: self.link.clone(),
            incoming: self.incoming.clone(),
            timer: deadline.map(|d| (Box::pin(tokio::time::sleep_until(d)), timeout)),
            idle: None,
            done: false,
            ready: VecDeque::new(),
            read_items: 0,
            read_bytes: 0,
            _sending: sending,
            item: PhantomData,
        }
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        if self.armed {
            self.link.streams().forget(Dir::Answer, self.id);
        }
    }
}

impl<T: DeserializeOwned> ItemStream<T> {
    /// The next item; `None` once the stream has ended. A failed stream
    /// gives one `Err`, then `None`.
    ///
    /// ```
    /// # use netsock::ItemStream;
    /// async fn total(mut prices: ItemStream<f64>) -> Result<f64, netsock::CallError> {
    ///     let mut sum = 0.0;
    ///     while let Some(price) = prices.next().await {
    ///         sum += price?;
    ///     }
    ///     Ok(sum)
    /// }
    /// ```
    pub async fn next(&mut self) -> Option<Result<T, CallError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Fails the stream with [`CallError::Timeout`] (and cancels it) when,
    /// once an item was read, no next item arrives within `idle`. Without
    /// it, only the first item has a deadline (the request's timeout).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use netsock::ItemStream;
    /// fn watchful(prices: ItemStream<f64>) -> ItemStream<f64> {
    ///     prices.idle_timeout(Duration::from_secs(30)) // a feed that stalls is an error
    /// }
    /// ```
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Stops the stream now (as dropping it does): the peer's handler
    /// stream is dropped, and nothing more is read.
    ///
    /// ```
    /// # use netsock::ItemStream;
    /// async fn first(mut prices: ItemStream<f64>) -> Option<f64> {
    ///     let first = prices.next().await?.ok();
    ///     prices.cancel();
    ///     first
    /// }
    /// ```
    pub fn cancel(&mut self) {
        if !self.done {
            self.done = true;
            self.stop();
        }
    }
}

impl<T> ItemStream<T> {
    /// Forgets the stream and, unless the peer ended it already, tells the
    /// peer to stop: an answer's with a `Cancel`; an upload is simply no
    /// longer read (the handler's reply stops it).
    fn stop(&self) {
        self.link.streams().forget(self.dir, self.id);
        let ended = lock(&self.incoming.state).end.is_some();
        if !ended && self.dir == Dir::Answer {
            if let Ok(cancel) =
                frame::encode(&Header::Cancel { id: self.id }, None::<&()>, usize::MAX)
            {
                self.link.clone().send_control(cancel);
            }
        }
    }
}

impl<T> Drop for ItemStream<T> {
    fn drop(&mut self) {
        if !self.done {
            self.stop();
        }
    }
}

impl<T: DeserializeOwned> Stream for ItemStream<T> {
    type Item = Result<T, CallError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.ready.is_empty() {
            // Take every item queued so far at once: the reader and this
            // consumer then meet on the lock once per batch, not per item.
            let mut s = lock(&this.incoming.state);
            std::mem::swap(&mut s.queue, &mut this.ready);
            if this.ready.is_empty() {
                if let Some(end) = s.end.take() {
                    drop(s);
                    this.done = true;
                    return Poll::Ready(end.err().map(Err));
                }
                match &mut s.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(cx.waker().clone()),
                }
                drop(s);
                if let Some((sleep, after)) = &mut this.timer {
                    if sleep.as_mut().poll(cx).is_ready() {
                        let after = *after;
                        this.done = true;
                        this.stop();
                        return Poll::Ready(Some(Err(CallError::Timeout { after })));
                    }
                }
                return Poll::Pending;
            }
        }
        let Some((payload, body)) = this.ready.pop_front() else {
            return Poll::Pending; // not reached: `ready` was filled above
        };
        this.read_items += 1;
        this.read_bytes += body as u64;
        if this.read_items >= STREAM_WINDOW_ITEMS / 2 || this.read_bytes >= STREAM_WINDOW_BYTES / 2
        {
            // Grant back what was read, unless the stream has ended.
            let (items, bytes) = (this.read_items, this.read_bytes);
            this.read_items = 0;
            this.read_bytes = 0;
            let mut s = lock(&this.incoming.state);
            let open = s.end.is_none();
            if open {
                s.credit_items += i64::from(items);
                s.credit_bytes = s.credit_bytes.saturating_add(bytes as i64);
            }
            drop(s);
            let credit = this.dir.credit(this.id, items, bytes);
            if let Some(frame) = open
                .then(|| frame::encode(&credit, None::<&()>, usize::MAX).ok())
                .flatten()
            {
                this.link.clone().send_control(frame);
            }
        }
        this.timer = this.idle.map(|idle| {
            let sleep = tokio::time::sleep_until(tokio::time::Instant::now() + idle);
            (Box::pin(sleep), idle)
        });
        let item = postcard::from_bytes(&payload).map_err(|e| {
            let ty = std::any::type_name::<T>();
            CallError::Codec(format!("cannot decode a stream item as {ty}: {e}"))
        });
        Poll::Ready(Some(item))
    }
}

/// What a `#[netsock::service]` method returns to answer with a stream of
/// `T`: any stream of `T`, or of `Result<T, E>` (an `Err` ends the stream
/// with its error), boxed. The generated client's method gives an
/// [`ItemStream<T>`].
///
/// ```
/// use futures_util::stream;
/// use netsock::{Server, Streaming};
///
/// #[netsock::service]
/// trait Ticker {
///     async fn ticks(&self, n: u32) -> Streaming<u32>;
/// }
///
/// struct Clock;
/// impl Ticker for Clock {
///     async fn ticks(&self, n: u32) -> Streaming<u32> {
///         Streaming::new(stream::iter(1..=n))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = TickerServer::new(Clock).bind("memory://").await?;
/// io.spawn();
/// let client = TickerClient::connect(io.local_addr()).await?;
/// let mut ticks = client.ticks(3).await?;
/// let mut got = Vec::new();
/// while let Some(tick) = ticks.next().await {
///     got.push(tick?);
/// }
/// assert_eq!(got, [1, 2, 3]);
/// # io.close().await;
/// # Ok(())
/// # }
/// ```
pub struct Streaming<T>(BoxStream<'static, Result<T, String>>);

impl<T: Send + 'static> Streaming<T> {
    /// Boxes `stream`, whose items are `T` or `Result<T, E>`.
    ///
    /// ```
    /// use futures_util::stream;
    /// let plain = netsock::Streaming::<u8>::new(stream::iter([1, 2]));
    /// let fallible = netsock::Streaming::<u8>::new(stream::iter([Ok(1), Err("sold out")]));
    /// # drop((plain, fallible));
    /// ```
    pub fn new<S, M: 'static>(stream: S) -> Self
    where
        S: Stream + Send + 'static,
        S::Item: StreamItem<T, M>,
    {
        Streaming(stream.map(StreamItem::into_item).boxed())
    }
}

impl<T> std::fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streaming")
    }
}

impl<T> Stream for Streaming<T> {
    type Item = Result<T, String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that sends past its credit fails that stream alone (and is
    /// told to stop with a `Cancel`); the other streams go on, and frames
    /// for streams that are not open are dropped.
    #[test]
    fn an_item_beyond_the_credit_fails_that_stream_alone() {
        let streams = Streams::default();
        let (a, b) = (
            streams.register(Dir::Answer, 1).unwrap(),
            streams.register(Dir::Answer, 2).unwrap(),
        );
        for _ in 0..STREAM_WINDOW_ITEMS {
            assert!(streams
                .item(Dir::Answer, 1, 10, Bytes::from_static(b"x"))
                .is_none());
        }
        let cancel = streams
            .item(Dir::Answer, 1, 10, Bytes::from_static(b"x"))
            .unwrap();
        let (header, _) = frame::decode(&cancel.slice(PREFIX_LEN..)).unwrap();
        assert_eq!(header, Header::Cancel { id: 1 });
        let end = lock(&a.state).end.clone();
        assert!(
            matches!(end, Some(Err(CallError::StreamProtocol { .. }))),
            "{end:?}"
        );
        assert_eq!(lock(&a.state).queue.len(), STREAM_WINDOW_ITEMS as usize);
        // Stream 2 is untouched, and takes its items.
        assert!(streams
            .item(Dir::Answer, 2, 10, Bytes::from_static(b"y"))
            .is_none());
        assert_eq!(lock(&b.state).queue.len(), 1);
        assert_eq!(streams.open(), (1, 0));
        // Unknown ids: nothing happens.
        assert!(streams.item(Dir::Answer, 9, 10, Bytes::new()).is_none());
        streams.end(Dir::Answer, 9, None);
        streams.credit(Dir::Answer, 9, 1, 1);
        assert!(!streams.cancel(9));
        // The byte window binds too: one item of a whole window uses it up.
        let c = streams.register(Dir::Answer, 3).unwrap();
        let window = STREAM_WINDOW_BYTES as usize;
        assert!(streams.item(Dir::Answer, 3, window, Bytes::new()).is_none());
        assert!(streams.item(Dir::Answer, 3, 1, Bytes::new()).is_some());
        assert!(lock(&c.state).end.is_some());
        // The end of the connection ends the rest.
        streams.close(&DisconnectReason::PeerHungUp);
        let end = lock(&b.state).end.clone();
        assert_eq!(
            end,
            Some(Err(CallError::Disconnected(DisconnectReason::PeerHungUp)))
        );
        assert!(streams.register(Dir::Answer, 4).is_err());
    }
}
