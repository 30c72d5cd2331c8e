//! Streams: a request answered with many items. Order and end, a handler's
//! error, cancelling from either side, disconnects, many streams at once
//! and their fairness, the first item's deadline, credit holding the
//! producer (to the frame, by a hand-driven peer, and in memory, with the
//! producer in another process), and what a hostile peer can send.

use std::sync::atomic::Ordering;
use std::time::Duration;

use netsock::frame::{Header, STREAM_WINDOW_BYTES, STREAM_WINDOW_ITEMS};
use netsock::{CallError, Socket};
use tests::feed::{answer_feed, serve_feed, start_producer, Feed, FeedEmit, FeedHandle};
use tests::{on_both_transports, within, Raw, TempDir, Transport};

on_both_transports!(
    items_arrive_in_order_then_the_end,
    a_handler_error_ends_the_stream_with_it,
    dropping_the_stream_cancels_the_handler,
    a_server_streams_from_its_client_and_cancels_it,
    a_disconnect_ends_every_open_stream,
    many_concurrent_streams_each_get_all_their_items,
    a_fast_stream_starves_neither_other_streams_nor_requests,
    the_first_item_is_due_within_the_timeout,
    the_producer_stops_at_the_window_until_credit_comes,
    items_credits_and_cancels_for_unknown_streams_are_ignored,
    an_item_over_the_callers_limit_ends_that_stream_alone,
    a_stream_variant_is_not_a_plain_request,
    open_streams_are_bounded_per_connection,
);

async fn client(io: &netsock::Server<Feed>) -> Socket<Feed> {
    within(Socket::<Feed>::connect(io.local_addr()))
        .await
        .expect("connect")
}

/// Reads `stream` to its end.
async fn collect<T: serde::de::DeserializeOwned>(
    mut stream: netsock::ItemStream<T>,
) -> Result<Vec<T>, CallError> {
    let mut items = Vec::new();
    while let Some(item) = within(stream.next()).await {
        items.push(item?);
    }
    Ok(items)
}

async fn items_arrive_in_order_then_the_end(t: Transport) {
    let (io, _probe, _dir) = serve_feed(t).await;
    let socket = client(&io).await;
    // Many windows' worth: credit is granted back as the items are read.
    let n = 10 * u64::from(STREAM_WINDOW_ITEMS);
    let items = collect(within(socket.count(n)).await.unwrap()).await;
    assert_eq!(items.unwrap(), (0..n).collect::<Vec<_>>());
    // An empty stream ends at once; the stream after it still works.
    assert!(collect(within(socket.count(0)).await.unwrap())
        .await
        .unwrap()
        .is_empty());
    let mut stream = within(socket.count(2)).await.unwrap();
    assert_eq!(within(stream.next()).await, Some(Ok(0)));
    assert_eq!(within(stream.next()).await, Some(Ok(1)));
    assert_eq!(within(stream.next()).await, None);
    assert_eq!(within(stream.next()).await, None, "ended for good");
    io.close().await;
}

async fn a_handler_error_ends_the_stream_with_it(t: Transport) {
    let (io, _probe, _dir) = serve_feed(t).await;
    let socket = client(&io).await;
    let mut stream = within(socket.fail_after(3)).await.unwrap();
    for i in 0..3 {
        assert_eq!(within(stream.next()).await, Some(Ok(i)));
    }
    let message = "boom".to_owned();
    assert_eq!(
        within(stream.next()).await,
        Some(Err(CallError::HandlerFailed { message }))
    );
    assert_eq!(within(stream.next()).await, None);
    // The connection is unaffected.
    assert_eq!(within(socket.sum(vec![1, 2])).await.unwrap(), 3);
    io.close().await;
}

async fn dropping_the_stream_cancels_the_handler(t: Transport) {
    let (io, mut probe, _dir) = serve_feed(t).await;
    let socket = client(&io).await;
    let mut stream = within(socket.endless()).await.unwrap();
    for i in 0..3 {
        assert_eq!(within(stream.next()).await, Some(Ok(i)));
    }
    drop(stream);
    within(probe.dropped.recv()).await.unwrap();
    // `cancel` does the same, and the stream then ends.
    let mut stream = within(socket.endless()).await.unwrap();
    assert_eq!(within(stream.next()).await, Some(Ok(0)));
    stream.cancel();
    within(probe.dropped.recv()).await.unwrap();
    assert_eq!(within(stream.next()).await, None);
    assert_eq!(within(socket.sum(vec![4])).await.unwrap(), 4);
    io.close().await;
}

/// Streams go both ways: a server asks its client, and the server side
/// cancels.
async fn a_server_streams_from_its_client_and_cancels_it(t: Transport) {
    let (io, mut probe, _dir) = serve_feed(t).await;
    let socket = client(&io).await;
    let (dropped_tx, mut dropped) = tokio::sync::mpsc::unbounded_channel();
    answer_feed(&socket, Default::default(), dropped_tx);
    let server_side = within(probe.connected.recv()).await.unwrap();
    let items = collect(within(server_side.count(100)).await.unwrap()).await;
    assert_eq!(items.unwrap(), (0..100).collect::<Vec<_>>());
    let mut endless = within(server_side.endless()).await.unwrap();
    assert_eq!(within(endless.next()).await, Some(Ok(0)));
    endless.cancel();
    within(dropped.recv()).await.unwrap();
    io.close().await;
}

async fn a_disconnect_ends_every_open_stream(t: Transport) {
    let (io, _probe, _dir) = serve_feed(t).await;
    let socket = Socket::<Feed>::builder()
        .no_reconnect()
        .connect(io.local_addr())
        .await
        .unwrap();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = within(socket.endless()).await.unwrap();
        assert_eq!(within(stream.next()).await, Some(Ok(0)));
        streams.push(stream);
    }
    let mut silent = within(socket.silent()).await.unwrap();
    io.close().await;
    for mut stream in streams {
        // What arrived before the end is still read, then the end.
        let end = loop {
            match within(stream.next()).await {
                Some(Ok(_)) => continue,
                other => break other,
            }
        };
        assert!(
            matches!(end, Some(Err(CallError::Disconnected(_)))),
            "{end:?}"
        );
        assert_eq!(within(stream.next()).await, None);
    }
    let end = within(silent.next()).await;
    assert!(
        matches!(end, Some(Err(CallError::Disconnected(_)))),
        "{end:?}"
    );
    // No stream opens on a closed connection.
    let err = within(socket.count(1)).await.unwrap_err();
    assert!(matches!(err, CallError::Disconnected(_)), "{err:?}");
}

async fn many_concurrent_streams_each_get_all_their_items(t: Transport) {
    let (io, _probe, _dir) = serve_feed(t).await;
    let socket = client(&io).await;
    let streams = (0..50u64).map(|k| {
        let socket = socket.clone();
        async move {
            let n = 100 + k * 7;
            let items = collect(socket.count(n).await?).await?;
            assert_eq!(items, (0..n).collect::<Vec<_>>(), "stream {k}");
            Ok::<_, CallError>(())
        }
    });
    for done in within(futures_util::future::join_all(streams)).await {
        done.unwrap();
    }
    io.close().await;
}

/// An endless stream read as fast as it comes does not hold up another
/// stream, requests or events on the same connection.
async fn a_fast_stream_starves_neither_other_streams_nor_requests(t: Transport) {
    let (io, mut probe, _dir) = serve_feed(t).await;
    let socket = client(&io).await;
    let mut fast = within(socket.endless()).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut read = 0u64;
        while let Some(Ok(_)) = fast.next().await {
            read += 1;
        }
        read
    });
    let (notes_tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let server_side = within(probe.connected.recv()).await.unwrap();
    server_side.on_note(move |n| {
        let _ = notes_tx.send(n);
        async {}
    });
    for round in 0..20 {
        let items = collect(within(socket.count(50)).await.unwrap()).await;
        assert_eq!(items.unwrap().len(), 50, "round {round}");
        assert_eq!(within(socket.sum(vec![round, 1])).await.unwrap(), round + 1);
        within(socket.emit_note(round as u64)).await.unwrap();
        assert_eq!(within(notes.recv()).await, Some(round as u64));
    }
    io.close().await;
    assert!(within(reader).await.unwrap() > 0);
}

async fn the_first_item_is_due_within_the_timeout(t: Transport) {
    let (io, mut probe, _dir) = serve_feed(t).await;
    let socket = client(&io).await;
    let short = Duration::from_millis(200);
    let mut silent = within(socket.timeout(short).silent()).await.unwrap();
    assert_eq!(
        within(silent.next()).await,
        Some(Err(CallError::Timeout { after: short }))
    );
    assert_eq!(within(silent.next()).await, None);
    // The handler's stream was cancelled.
    within(probe.dropped.recv()).await.unwrap();
    // After the first item, no deadline unless asked for: a stream that
    // stalls after its items fails with the idle timeout.
    let mut stalled = within(socket.stall_after(2))
        .await
        .unwrap()
        .idle_timeout(short);
    assert_eq!(within(stalled.next()).await, Some(Ok(0)));
    assert_eq!(within(stalled.next()).await, Some(Ok(1)));
    assert_eq!(
        within(stalled.next()).await,
        Some(Err(CallError::Timeout { after: short }))
    );
    within(probe.dropped.recv()).await.unwrap();
    io.close().await;
}

/// By hand, to the frame: the handler sends a window's worth of items and
/// no more until credit comes, then exactly as many as the credit says.
async fn the_producer_stops_at_the_window_until_credit_comes(t: Transport) {
    let (io, probe, _dir) = serve_feed(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    assert!(matches!(
        raw.handshake::<Feed>().await,
        Header::Welcome { .. }
    ));
    let blobs = Feed::Blobs {
        n: 10 * u64::from(STREAM_WINDOW_ITEMS),
        size: 16,
    };
    let request = postcard::to_stdvec(&blobs).unwrap();
    let id = 7;
    raw.send(&Header::Request { id, timeout_ms: 0 }, Some(&request))
        .await;
    assert_eq!(within(raw.recv()).await.unwrap().0, Header::Response { id });
    // Count the items until a Pong shows nothing else is on the way.
    async fn items_until_pong(raw: &mut Raw, id: u64) -> u32 {
        let mut items = 0;
        loop {
            raw.send(&Header::Ping, None).await;
            let mut pong = false;
            while !pong {
                match within(raw.recv()).await.unwrap().0 {
                    Header::StreamItem { id: got } => {
                        assert_eq!(got, id);
                        items += 1;
                    }
                    Header::Pong => pong = true,
                    other => panic!("{other:?}"),
                }
            }
            // A pump that still had credit would have queued its next item
            // long before our Ping was answered: ask again until nothing
            // new came in a whole round.
            if items >= STREAM_WINDOW_ITEMS {
                return items;
            }
        }
    }
    assert_eq!(items_until_pong(&mut raw, id).await, STREAM_WINDOW_ITEMS);
    // A few more rounds: nothing.
    for _ in 0..3 {
        raw.send(&Header::Ping, None).await;
        assert_eq!(within(raw.recv()).await.unwrap().0, Header::Pong);
    }
    assert_eq!(
        probe.produced.load(Ordering::Relaxed),
        u64::from(STREAM_WINDOW_ITEMS)
    );
    raw.send(
        &Header::Credit {
            id,
            items: 10,
            bytes: STREAM_WINDOW_BYTES,
        },
        None,
    )
    .await;
    let mut more = 0;
    while more < 10 {
        match within(raw.recv()).await.unwrap().0 {
            Header::StreamItem { .. } => more += 1,
            other => panic!("{other:?}"),
        }
    }
    for _ in 0..3 {
        raw.send(&Header::Ping, None).await;
        assert_eq!(within(raw.recv()).await.unwrap().0, Header::Pong);
    }
    assert_eq!(
        probe.produced.load(Ordering::Relaxed),
        u64::from(STREAM_WINDOW_ITEMS) + 10
    );
    // Cancel: nothing more, and no end either.
    raw.send(&Header::Cancel { id }, None).await;
    raw.send(&Header::Ping, None).await;
    assert_eq!(within(raw.recv()).await.unwrap().0, Header::Pong);
    io.close().await;
}

/// Stream frames for ids that name no open stream are ignored, and the
/// connection and its other streams go on.
async fn items_credits_and_cancels_for_unknown_streams_are_ignored(t: Transport) {
    let (io, mut probe, _dir) = serve_feed(t).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    assert!(matches!(
        raw.handshake::<Feed>().await,
        Header::Welcome { .. }
    ));
    raw.send(
        &Header::Credit {
            id: 99,
            items: u32::MAX,
            bytes: u64::MAX,
        },
        None,
    )
    .await;
    raw.send(&Header::StreamItem { id: 98 }, Some(&[1, 2, 3]))
        .await;
    raw.send(
        &Header::StreamEnd {
            id: 97,
            error: None,
        },
        None,
    )
    .await;
    raw.send(&Header::Cancel { id: 96 }, None).await;
    raw.send(&Header::Ping, None).await;
    assert_eq!(within(raw.recv()).await.unwrap().0, Header::Pong);
    // A real stream on the same server, and on this connection, works.
    let socket = client(&io).await;
    let items = collect(within(socket.count(5)).await.unwrap()).await;
    assert_eq!(items.unwrap(), [0, 1, 2, 3, 4]);
    let server_side = within(probe.connected.recv()).await.unwrap();
    assert!(server_side.is_connected());
    let request = postcard::to_stdvec(&Feed::Count(3)).unwrap();
    raw.send(
        &Header::Request {
            id: 5,
            timeout_ms: 0,
        },
        Some(&request),
    )
    .await;
    let mut headers = Vec::new();
    while headers
        .last()
        .is_none_or(|h| !matches!(h, Header::StreamEnd { .. }))
    {
        headers.push(within(raw.recv()).await.unwrap().0);
    }
    assert_eq!(
        headers,
        [
            Header::Response { id: 5 },
            Header::StreamItem { id: 5 },
            Header::StreamItem { id: 5 },
            Header::StreamItem { id: 5 },
            Header::StreamEnd { id: 5, error: None },
        ]
    );
    io.close().await;
}

async fn an_item_over_the_callers_limit_ends_that_stream_alone(t: Transport) {
    let (io, _probe, _dir) = serve_feed(t).await;
    let socket = Socket::<Feed>::builder()
        .max_frame_size(4096)
        .connect(io.local_addr())
        .await
        .unwrap();
    let mut counting = within(socket.count(1000)).await.unwrap();
    assert_eq!(within(counting.next()).await, Some(Ok(0)));
    let mut big = within(socket.blobs(3, 8000)).await.unwrap();
    let end = within(big.next()).await;
    assert!(
        matches!(end, Some(Err(CallError::FrameTooLarge { max: 4096, .. }))),
        "{end:?}"
    );
    assert_eq!(within(big.next()).await, None);
    let rest = collect(counting).await.unwrap();
    assert_eq!(rest, (1..1000).collect::<Vec<_>>());
    io.close().await;
}

async fn a_stream_variant_is_not_a_plain_request(t: Transport) {
    let (io, mut probe, _dir) = serve_feed(t).await;
    let socket = client(&io).await;
    let server_side = within(probe.connected.recv()).await.unwrap();
    server_side.join("all");
    let replies = within(io.to("all").request::<u64>(Feed::Count(3))).await;
    assert_eq!(replies.len(), 1);
    assert!(
        matches!(replies[0].1, Err(CallError::StreamProtocol { .. })),
        "{replies:?}"
    );
    let err = within(socket.request::<u64>(Feed::Count(3)))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::StreamProtocol { .. }), "{err:?}");
    let err = within(socket.request_stream::<i64>(Feed::Sum(vec![1])))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::StreamProtocol { .. }), "{err:?}");
    let err = within(socket.request_stream::<u64>(Feed::Note(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::NotARequest { .. }), "{err:?}");
    io.close().await;
}

/// A peer cannot open streams without bound: past the limit the next is
/// refused, and once one closes another opens.
async fn open_streams_are_bounded_per_connection(t: Transport) {
    let dir = TempDir::new();
    let io = netsock::Server::<Feed>::builder()
        .max_concurrent_requests(2)
        .bind(t.addr(&dir))
        .await
        .unwrap();
    io.on_connection(|socket: Socket<Feed>| {
        let (dropped, _) = tokio::sync::mpsc::unbounded_channel();
        answer_feed(&socket, Default::default(), dropped);
        async { Ok(()) }
    });
    io.spawn();
    let socket = client(&io).await;
    let first = within(socket.endless()).await.unwrap();
    let _second = within(socket.endless()).await.unwrap();
    let err = within(socket.endless()).await.unwrap_err();
    assert!(
        matches!(&err, CallError::HandlerFailed { message } if message.contains("too many open streams")),
        "{err:?}"
    );
    // Requests are not streams: they still go through.
    assert_eq!(within(socket.sum(vec![2, 3])).await.unwrap(), 5);
    drop(first);
    let mut third = within(socket.endless()).await.unwrap();
    assert_eq!(within(third.next()).await, Some(Ok(0)));
    io.close().await;
}

/// A process's resident memory, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// The memory bound: a 1 GiB stream (65 536 items of 16 KiB) from a
/// producer in another process, to a consumer that reads a few items, then
/// sleeps (the behaviour under test, not a synchronisation), then reads on
/// to the end. Neither process grows by more than 64 MiB over its size
/// before the stream; without credit the producer would queue the whole
/// gigabyte while the consumer sleeps.
async fn a_gigabyte_stream_to_a_sleeping_consumer_keeps_both_processes_small(transport: &str) {
    const ITEMS: u64 = 65_536;
    const SIZE: u32 = 16 * 1024;
    const BOUND: u64 = 64 * 1024 * 1024;
    let dir = TempDir::new();
    let path = dir.path().join("producer.sock");
    let (mut child, addr) =
        start_producer(env!("CARGO_BIN_EXE_stream_producer"), transport, &path).await;
    let pid = child.id().expect("pid");
    let socket = within(Socket::<Feed>::connect(&addr)).await.unwrap();
    // Warm both sides up with a small stream, then take the baselines.
    let warm = collect(within(socket.blobs(200, SIZE)).await.unwrap()).await;
    assert_eq!(warm.unwrap().len(), 200);
    let (producer_base, consumer_base) = (rss(pid), rss(std::process::id()));
    let before = within(socket.produced()).await.unwrap();

    let mut stream = within(socket.blobs(ITEMS, SIZE)).await.unwrap();
    for i in 0..5u64 {
        let item = within(stream.next()).await.unwrap().unwrap();
        assert!(item.starts_with(&i.to_string()) && item.len() == SIZE as usize);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let produced = within(socket.produced()).await.unwrap() - before;
    assert!(
        produced <= 5 + u64::from(STREAM_WINDOW_ITEMS),
        "the producer made {produced} items for a consumer that read 5"
    );
    let mut peak = (rss(pid), rss(std::process::id()));
    let mut read = 5u64;
    while let Some(item) = within(stream.next()).await {
        let item = item.unwrap();
        assert_eq!(item.len(), SIZE as usize);
        read += 1;
        if read % 4096 == 0 {
            peak = (peak.0.max(rss(pid)), peak.1.max(rss(std::process::id())));
        }
    }
    assert_eq!(read, ITEMS);
    let mib = |b: u64| b / (1024 * 1024);
    eprintln!(
        "producer RSS {} -> peak {} MiB; consumer {} -> peak {} MiB",
        mib(producer_base),
        mib(peak.0),
        mib(consumer_base),
        mib(peak.1)
    );
    assert!(
        peak.0 < producer_base + BOUND,
        "producer grew to {} MiB",
        mib(peak.0)
    );
    assert!(
        peak.1 < consumer_base + BOUND,
        "consumer grew to {} MiB",
        mib(peak.1)
    );
    socket.close().await;
    drop(child.stdin.take());
    let status = within(child.wait()).await.expect("wait");
    assert!(status.success(), "stream_producer: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_stream_to_a_sleeping_consumer_keeps_both_processes_small_tcp() {
    a_gigabyte_stream_to_a_sleeping_consumer_keeps_both_processes_small("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_stream_to_a_sleeping_consumer_keeps_both_processes_small_unix() {
    a_gigabyte_stream_to_a_sleeping_consumer_keeps_both_processes_small("unix").await;
}
