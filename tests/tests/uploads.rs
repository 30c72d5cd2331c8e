//! Uploads: a request that carries a stream of items to its handler, and,
//! with a stream answer too, both ways at once. Order and end, an error in
//! the caller's source, credit holding the uploader, the upload stopping
//! when the request is answered or given up, a disconnect, the server as
//! the caller, and what a hostile peer can send.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::{stream, StreamExt};
use netsock::frame::{Header, RemoteError, RECEIVE_WINDOW_ITEMS, STREAM_WINDOW_ITEMS};
use netsock::{CallError, Events, ItemStream, Server, Socket};
use serde::{Deserialize, Serialize};
use tests::{on_both_transports, within, Raw, TempDir, Transport};
use tokio::sync::{mpsc, Notify};

/// What a `Tally` handler saw of its upload.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq, Default, netsock::Describe)]
struct Tally {
    count: u64,
    sum: u64,
    in_order: bool,
    /// How the upload ended, if not complete.
    error: Option<String>,
}

#[derive(Events, Serialize, Deserialize, Debug)]
enum Store {
    /// Tallies the numbers uploaded.
    #[request(upload = u64, response = Tally)]
    Tally { label: String },
    /// Reads `n` items of the upload, then answers them, leaving the rest.
    #[request(upload = u64, response = Vec<u64>)]
    Head(u64),
    /// Answers each chunk with its length, as they come.
    #[request(upload = Vec<u8>, stream = u64)]
    Lengths,
    /// As `Tally`, but reads nothing before the test says so.
    #[request(upload = u64, response = Tally)]
    Held,
}

on_both_transports!(
    the_upload_arrives_in_order_then_its_end,
    an_error_in_the_callers_source_reaches_the_handler,
    the_uploader_is_held_at_the_window_and_stops_at_the_reply,
    both_ways_at_once_item_by_item,
    dropping_the_answer_stops_the_upload,
    a_disconnect_ends_the_upload_for_its_handler,
    a_server_uploads_to_its_client,
    an_upload_variant_is_not_a_plain_request,
    a_hostile_uploader_fails_its_own_upload_alone,
);

/// Reads `numbers` to its end.
async fn tally(mut numbers: ItemStream<u64>) -> Tally {
    let mut tally = Tally {
        in_order: true,
        ..Tally::default()
    };
    while let Some(n) = numbers.next().await {
        match n {
            Ok(n) => {
                tally.in_order &= n == tally.count;
                tally.count += 1;
                tally.sum += n;
            }
            Err(e) => tally.error = Some(e.to_string()),
        }
    }
    tally
}

/// Answers `Store` requests on `socket`; `Held` reads once `hold` is
/// notified.
fn answer_store(socket: &Socket<Store>, hold: Arc<Notify>) {
    socket.on_tally(|_label, numbers| tally(numbers));
    socket.on_held(move |numbers| {
        let hold = hold.clone();
        async move {
            hold.notified().await;
            tally(numbers).await
        }
    });
    socket.on_head(|n, mut numbers: ItemStream<u64>| async move {
        let mut head = Vec::new();
        while head.len() < n as usize {
            match numbers.next().await {
                Some(Ok(x)) => head.push(x),
                _ => break,
            }
        }
        head
    });
    socket.on_lengths(|chunks: ItemStream<Vec<u8>>| async move {
        chunks.map(|chunk| chunk.map(|c| c.len() as u64).map_err(|e| e.to_string()))
    });
}

async fn serve(t: Transport) -> (Server<Store>, TempDir, Arc<Notify>) {
    let dir = TempDir::new();
    let io = Server::<Store>::bind(t.addr(&dir)).await.expect("bind");
    let hold = Arc::new(Notify::new());
    let held = hold.clone();
    io.on_connection(move |socket: Socket<Store>| {
        answer_store(&socket, held.clone());
        async { Ok(()) }
    });
    io.spawn();
    (io, dir, hold)
}

async fn client(io: &Server<Store>) -> Socket<Store> {
    within(Socket::<Store>::connect(io.local_addr()))
        .await
        .expect("connect")
}

/// Counts the items a source gives, and says when it is dropped.
struct Source {
    given: Arc<AtomicU64>,
    dropped: mpsc::UnboundedReceiver<()>,
}

/// `0, 1, 2, ..` without end, counted.
fn counted() -> (
    impl futures_util::Stream<Item = u64> + Send + 'static,
    Source,
) {
    let given = Arc::new(AtomicU64::new(0));
    let (tx, dropped) = mpsc::unbounded_channel();
    let guard = DropSignal(tx);
    let counter = given.clone();
    let numbers = stream::iter(0u64..).map(move |n| {
        let _ = &guard;
        counter.fetch_add(1, Ordering::SeqCst);
        n
    });
    (numbers, Source { given, dropped })
}

struct DropSignal(mpsc::UnboundedSender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

async fn the_upload_arrives_in_order_then_its_end(t: Transport) {
    let (io, _dir, _) = serve(t).await;
    let socket = client(&io).await;
    // Many windows' worth: credit is granted back as the handler reads.
    let n = 10 * u64::from(STREAM_WINDOW_ITEMS);
    let tally = within(socket.tally("big".into(), stream::iter(0..n)))
        .await
        .expect("tally");
    let expected = Tally {
        count: n,
        sum: n * (n - 1) / 2,
        in_order: true,
        error: None,
    };
    assert_eq!(tally, expected);
    // An empty upload ends at once; the connection goes on.
    let empty = within(socket.tally("none".into(), stream::iter(Vec::<u64>::new())))
        .await
        .expect("tally");
    assert_eq!((empty.count, empty.error), (0, None));
    io.close().await;
}

async fn an_error_in_the_callers_source_reaches_the_handler(t: Transport) {
    let (io, _dir, _) = serve(t).await;
    let socket = client(&io).await;
    let source = stream::iter([Ok(0u64), Ok(1), Err("the disk is full"), Ok(3)]);
    let tally = within(socket.tally("broken".into(), source))
        .await
        .expect("tally");
    // The items before the error, then the error; nothing after it.
    assert_eq!((tally.count, tally.sum), (2, 1));
    let error = tally.error.expect("the handler saw the error");
    assert!(error.contains("the disk is full"), "{error}");
    io.close().await;
}

async fn the_uploader_is_held_at_the_window_and_stops_at_the_reply(t: Transport) {
    let (io, _dir, _) = serve(t).await;
    let socket = client(&io).await;
    let (numbers, mut source) = counted();
    // The handler reads 3,000 items of an endless upload, then answers.
    let head = within(socket.head(3000, numbers)).await.expect("head");
    assert_eq!(head, (0..3000).collect::<Vec<_>>());
    // The reply stops the upload: its source is dropped...
    within(source.dropped.recv()).await;
    // ...having given at most what was read plus one window: credit held
    // the rest back.
    let given = source.given.load(Ordering::SeqCst);
    let bound = 3000 + u64::from(RECEIVE_WINDOW_ITEMS);
    assert!(
        given <= bound,
        "the source gave {given} items, over {bound}"
    );
    io.close().await;
}

async fn both_ways_at_once_item_by_item(t: Transport) {
    let (io, _dir, _) = serve(t).await;
    let socket = client(&io).await;
    // Each chunk goes out only after the length of the one before came
    // back: the two streams really flow at once.
    let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let upload = tokio_stream_of(rx);
    tx.send(vec![0; 1]).unwrap();
    let mut lengths = within(socket.lengths(upload)).await.expect("accepted");
    for k in 1..=50u64 {
        assert_eq!(within(lengths.next()).await.transpose().unwrap(), Some(k));
        tx.send(vec![7; k as usize + 1]).unwrap();
    }
    drop(tx);
    assert_eq!(within(lengths.next()).await.transpose().unwrap(), Some(51));
    // The upload ended, so does the answer.
    assert!(within(lengths.next()).await.is_none());
    io.close().await;
}

/// A stream of what `rx` receives, ending when every sender is gone.
fn tokio_stream_of<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

async fn dropping_the_answer_stops_the_upload(t: Transport) {
    let (io, _dir, _) = serve(t).await;
    let socket = client(&io).await;
    let given = Arc::new(AtomicU64::new(0));
    let (tx, mut dropped) = mpsc::unbounded_channel();
    let guard = DropSignal(tx);
    let counter = given.clone();
    let chunks = stream::iter(0u64..).map(move |_| {
        let _ = &guard;
        counter.fetch_add(1, Ordering::SeqCst);
        vec![1u8; 3]
    });
    let mut lengths = within(socket.lengths(chunks)).await.expect("accepted");
    assert_eq!(within(lengths.next()).await.transpose().unwrap(), Some(3));
    drop(lengths);
    within(dropped.recv()).await;
    // The connection goes on.
    let tally = within(socket.tally("after".into(), stream::iter(0..3u64)))
        .await
        .unwrap();
    assert_eq!(tally.count, 3);
    io.close().await;
}

async fn a_disconnect_ends_the_upload_for_its_handler(t: Transport) {
    let dir = TempDir::new();
    let io = Server::<Store>::bind(t.addr(&dir)).await.expect("bind");
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let (gone_tx, mut gone) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Store>| {
        let (seen_tx, gone_tx) = (seen_tx.clone(), gone_tx.clone());
        async move {
            socket.on_tally(move |_, mut numbers: ItemStream<u64>| {
                let seen_tx = seen_tx.clone();
                let gone = DropSignal(gone_tx.clone());
                async move {
                    let _gone = gone;
                    let mut last = None;
                    while let Some(n) = numbers.next().await {
                        last = Some(n.map(|_| ()));
                    }
                    let _ = seen_tx.send(last);
                    Tally::default()
                }
            });
            Ok(())
        }
    });
    io.spawn();
    let socket = within(Socket::<Store>::connect(io.local_addr()))
        .await
        .unwrap();
    let (numbers, mut source) = counted();
    let call = tokio::spawn({
        let socket = socket.clone();
        async move { socket.tally("cut".into(), numbers).await }
    });
    // Once the window is in flight, the client goes away.
    tests::eventually(|| source.given.load(Ordering::SeqCst) >= 10).await;
    socket.close().await;
    // The handler is stopped with its connection; if it saw the end of the
    // upload first, that end was `Disconnected`.
    within(gone.recv()).await;
    if let Ok(last) = seen.try_recv() {
        assert!(
            matches!(last, Some(Err(CallError::Disconnected(_)))),
            "{last:?}"
        );
    }
    assert!(matches!(
        within(call).await.unwrap(),
        Err(CallError::Disconnected(_))
    ));
    within(source.dropped.recv()).await;
    io.close().await;
}

async fn a_server_uploads_to_its_client(t: Transport) {
    let dir = TempDir::new();
    let io = Server::<Store>::bind(t.addr(&dir)).await.expect("bind");
    let (tx, mut connected) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Store>| {
        let _ = tx.send(socket);
        async { Ok(()) }
    });
    io.spawn();
    let socket = client(&io).await;
    answer_store(&socket, Arc::new(Notify::new()));
    let server_side = within(connected.recv()).await.unwrap();
    let tally = within(server_side.tally("down".into(), stream::iter(0..5000u64)))
        .await
        .unwrap();
    assert_eq!((tally.count, tally.in_order), (5000, true));
    io.close().await;
}

async fn an_upload_variant_is_not_a_plain_request(t: Transport) {
    let (io, _dir, _) = serve(t).await;
    let socket = client(&io).await;
    let err = within(socket.request::<Tally>(Store::Tally { label: "x".into() }))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::StreamProtocol { message } if message.contains("carries an upload")),
        "{err:?}"
    );
    let err = within(socket.request_stream::<u64>(Store::Lengths))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::StreamProtocol { message } if message.contains("request_upload_stream")),
        "{err:?}"
    );
    io.close().await;
}

/// A hand-driven peer: uploads past its credit, and sends upload frames
/// for requests that do not exist. Only its own upload fails.
async fn a_hostile_uploader_fails_its_own_upload_alone(t: Transport) {
    let (io, _dir, hold) = serve(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    assert!(matches!(
        within(raw.handshake::<Store>()).await,
        Header::Welcome { .. }
    ));
    // Frames for no open upload are ignored.
    raw.send(&Header::UploadItem { id: 77 }, Some(&[5])).await;
    let end = Header::UploadEnd {
        id: 77,
        error: Some(RemoteError::HandlerFailed {
            message: "x".into(),
        }),
    };
    raw.send(&end, None).await;
    let credit = Header::UploadCredit {
        id: 78,
        items: 9,
        bytes: 9,
    };
    raw.send(&credit, None).await;
    // A `Held` request, then a window and one more item, without credit,
    // while its handler reads nothing.
    let request = postcard::to_stdvec(&Store::Held).unwrap();
    let request_frame = Header::Request {
        id: 1,
        timeout_ms: 10_000,
    };
    raw.send(&request_frame, Some(&request)).await;
    for n in 0..=u64::from(RECEIVE_WINDOW_ITEMS) {
        let item = postcard::to_stdvec(&n).unwrap();
        raw.send(&Header::UploadItem { id: 1 }, Some(&item)).await;
    }
    // The Pong says the server read all of it (after the credit that
    // widened the window to RECEIVE_WINDOW_ITEMS); then the handler reads.
    raw.send(&Header::Ping, None).await;
    let widened = Header::UploadCredit {
        id: 1,
        items: RECEIVE_WINDOW_ITEMS - STREAM_WINDOW_ITEMS,
        bytes: 0,
    };
    assert_eq!(within(raw.recv()).await.map(|f| f.0), Some(widened));
    assert!(matches!(within(raw.recv()).await, Some((Header::Pong, _))));
    hold.notify_one();
    // It got the window, then its upload failed with a protocol error: it
    // answers, and the connection goes on.
    let tally = match within(raw.recv()).await.expect("a reply") {
        (Header::Response { id: 1 }, payload) => postcard::from_bytes::<Tally>(&payload).unwrap(),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(tally.count, u64::from(RECEIVE_WINDOW_ITEMS));
    assert!(tally.in_order);
    let error = tally.error.expect("the upload failed");
    assert!(error.contains("beyond the credit"), "{error}");
    raw.send(&Header::Ping, None).await;
    assert!(matches!(within(raw.recv()).await, Some((Header::Pong, _))));
    // Others are served meanwhile.
    let socket = client(&io).await;
    let tally = within(socket.tally("ok".into(), stream::iter(0..10u64)))
        .await
        .unwrap();
    assert_eq!(tally.count, 10);
    io.close().await;
}

/// A service method taking an `ItemStream` last carries an upload; one
/// that also returns a `Streaming` answers with a stream.
#[netsock::service]
trait Archive {
    /// Stores the chunks under `name`; gives how many bytes.
    async fn store(&self, name: String, chunks: ItemStream<Vec<u8>>) -> u64;
    /// Gives each number doubled, as they come.
    async fn double(&self, numbers: ItemStream<i64>) -> netsock::Streaming<i64>;
}

struct Disk;

impl Archive for Disk {
    async fn store(&self, _name: String, mut chunks: ItemStream<Vec<u8>>) -> u64 {
        let mut bytes = 0;
        while let Some(Ok(chunk)) = chunks.next().await {
            bytes += chunk.len() as u64;
        }
        bytes
    }

    async fn double(&self, numbers: ItemStream<i64>) -> netsock::Streaming<i64> {
        netsock::Streaming::new(numbers.map(|n| n.map(|n| 2 * n).map_err(|e| e.to_string())))
    }
}

on_both_transports!(a_service_method_takes_an_upload);

async fn a_service_method_takes_an_upload(t: Transport) {
    let dir = TempDir::new();
    let io = ArchiveServer::new(Disk).bind(t.addr(&dir)).await.unwrap();
    io.spawn();
    let client = within(ArchiveClient::connect(io.local_addr()))
        .await
        .unwrap();
    let chunks = stream::iter((0..100).map(|k| vec![0u8; k]));
    let stored = within(client.store("a.bin".into(), chunks)).await.unwrap();
    assert_eq!(stored, (0..100u64).sum::<u64>());
    let doubled = within(client.double(stream::iter([1i64, -2, 3])))
        .await
        .unwrap();
    let doubled: Vec<i64> = within(doubled.map(Result::unwrap).collect()).await;
    assert_eq!(doubled, [2, -4, 6]);
    io.close().await;
}

on_both_transports!(an_upload_carries_on_across_cuts);

/// With session recovery, an upload goes on across cuts (the proxy cuts
/// the connection every 5–60 KB, mid-frame included): every item reaches
/// the handler once, in order, and the reply comes.
async fn an_upload_carries_on_across_cuts(t: Transport) {
    use std::time::Duration;
    let (io, dir, _) = serve(t).await;
    let proxy = tests::proxy::Proxy::start(t, &dir, io.local_addr().clone()).await;
    proxy.chaos(5_000, 60_000);
    let reconnect = netsock::Reconnect::new()
        .initial_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(20));
    let socket = within(
        Socket::<Store>::builder()
            .recovery(netsock::Recovery::DEFAULT)
            .reconnect(reconnect)
            .connect(proxy.addr()),
    )
    .await
    .unwrap();
    let n = 100_000u64;
    let tally = tokio::time::timeout(
        Duration::from_secs(60),
        socket
            .timeout(Duration::from_secs(60))
            .tally("cut".into(), stream::iter(0..n)),
    )
    .await
    .expect("the upload finished")
    .unwrap();
    assert_eq!(
        tally,
        Tally {
            count: n,
            sum: n * (n - 1) / 2,
            in_order: true,
            error: None
        }
    );
    let cuts = proxy.chaos_cuts();
    assert!(cuts >= 3, "only {cuts} cuts");
    socket.close().await;
    io.close().await;
}
