//! Backpressure: a connection's outgoing queue is bounded in frames and in
//! bytes; emit waits, try_emit refuses, volatile emits drop and count, and a
//! server pushing 1 GiB past a client that stopped reading stays bounded in
//! memory while others keep receiving.

use std::fmt;

use netsock::{Error, Events, Server, Socket};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tests::{on_both_transports, within, Raw, TempDir, Transport};
use tokio::sync::mpsc;

/// Bytes that postcard copies in one go (length, then the bytes).
#[derive(Clone, Debug, PartialEq)]
struct Chunk(Vec<u8>);

impl Serialize for Chunk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// Serialized by hand as a byte string, so described by hand too.
impl netsock::Describe for Chunk {
    fn describe(_: &mut netsock::schema::Types) -> netsock::schema::Type {
        netsock::schema::Type::Bytes
    }
}

impl<'de> Deserialize<'de> for Chunk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Chunk;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Chunk, E> {
                Ok(Chunk(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

#[derive(Events, Serialize, Deserialize, Debug)]
enum Feed {
    Data(Chunk),
}

const MIB: usize = 1 << 20;

async fn server(
    t: Transport,
    dir: &TempDir,
    builder: netsock::ServerBuilder<Feed>,
) -> (Server<Feed>, mpsc::UnboundedReceiver<Socket<Feed>>) {
    let io = builder.bind(t.addr(dir)).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Feed>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(socket);
            Ok(())
        }
    });
    io.spawn();
    (io, rx)
}

on_both_transports!(
    emit_waits_try_emit_refuses_volatile_drops,
    a_gibibyte_past_a_stuck_client_stays_bounded
);

async fn emit_waits_try_emit_refuses_volatile_drops(t: Transport) {
    let dir = TempDir::new();
    let builder = Server::<Feed>::builder()
        .queue_capacity(64)
        .queue_bytes(256 * 1024);
    let (io, mut connected) = server(t, &dir, builder).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Feed>()).await;
    let stuck = within(connected.recv()).await.unwrap();
    // Fill the socket buffers and the queue's byte budget with 64 KiB events
    // until an emit has to wait (the writer may still be draining into the
    // kernel when try_emit first says full).
    let chunk = || Chunk(vec![7; 64 * 1024]);
    let mut queued = 0;
    let mut waiting = loop {
        match stuck.try_emit(Feed::Data(chunk())) {
            Ok(()) => queued += 1,
            Err(Error::QueueFull { event: "Data" }) => {
                let mut emit = Box::pin(stuck.emit_data(chunk()));
                // emit waits while the queue is full ...
                if futures_util::FutureExt::now_or_never(emit.as_mut()).is_none() {
                    break emit;
                }
            }
            Err(e) => panic!("{e}"),
        }
        assert!(queued < 100_000, "the queue never filled");
    };
    // ... volatile emits never wait: they drop and count instead. (The
    // writer may still free a little room, so the first few may go out.)
    let before = stuck.dropped_events();
    let mut sent = 0;
    while stuck.dropped_events() == before {
        let volatile = stuck.volatile();
        let emit = volatile.emit_data(chunk());
        tokio::pin!(emit);
        let done = futures_util::FutureExt::now_or_never(emit.as_mut());
        assert!(
            matches!(done, Some(Ok(()))),
            "a volatile emit waited or failed"
        );
        sent += 1;
        assert!(sent < 1_000, "volatile emits were never dropped");
    }
    assert_eq!(stuck.dropped_events(), before + 1);
    // ... and once the client reads, the waiting emit goes through.
    let reading = tokio::spawn(async move { while raw.recv().await.is_some() {} });
    within(waiting.as_mut()).await.unwrap();
    io.close().await;
    within(reading).await.unwrap();
}

async fn a_gibibyte_past_a_stuck_client_stays_bounded(t: Transport) {
    let dir = TempDir::new();
    let (io, mut connected) = server(t, &dir, Server::<Feed>::builder()).await;
    let mut raw = Raw::connect(io.local_addr()).await;
    within(raw.handshake::<Feed>()).await;
    let stuck = within(connected.recv()).await.unwrap();
    let reader = within(Socket::<Feed>::connect(io.local_addr()))
        .await
        .unwrap();
    let (tx, mut received) = mpsc::unbounded_channel();
    reader.on_data(move |chunk| {
        let _ = tx.send(chunk.0.len());
        async {}
    });
    reader.start();
    within(connected.recv()).await.unwrap();
    let before = tests::soak::rss_kib();
    let mut peak = before;
    for _ in 0..1024 {
        within(io.emit_data(Chunk(vec![3; MIB]))).await.unwrap();
        assert_eq!(within(received.recv()).await.unwrap(), MIB);
        peak = peak.max(tests::soak::rss_kib());
    }
    // 1 GiB went out; the stuck client holds at most its queue's byte budget
    // (16 MiB) plus socket buffers.
    assert!(stuck.dropped_events() > 900, "{}", stuck.dropped_events());
    let grown_mib = (peak.saturating_sub(before)) / 1024;
    assert!(grown_mib < 200, "memory grew by {grown_mib} MiB");
    drop(raw);
    io.close().await;
}
