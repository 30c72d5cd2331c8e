//! Metrics: drive known traffic, read exact counts.

use netsock::{Events, Socket};
use serde::{Deserialize, Serialize};
use tests::api::{client, serve, ApiEmit, SHORT};
use tests::{eventually, on_both_transports, within, Raw, Transport};

#[derive(Events, Serialize, Deserialize, Debug)]
enum Stranger {
    Hello,
}

on_both_transports!(counts_are_exact);

async fn counts_are_exact(t: Transport) {
    let (io, mut seen, _dir) = serve(t).await;
    let socket = within(client(&io)).await;
    let server_side = within(seen.connected.recv()).await.unwrap();
    for i in 0..3 {
        within(socket.sum(vec![i])).await.unwrap();
    }
    within(socket.emit_message("a".into(), 1)).await.unwrap();
    within(socket.emit_message("b".into(), 2)).await.unwrap();
    within(socket.timeout(SHORT).hang()).await.unwrap_err();
    within(seen.hang_dropped.recv()).await.unwrap(); // the cancel arrived
    within(socket.unhandled()).await.unwrap_err();

    let m = socket.metrics();
    assert_eq!(m.traffic.calls_completed, 3);
    assert_eq!(m.traffic.calls_timed_out, 1);
    assert_eq!(m.traffic.calls_failed, 1);
    assert_eq!(m.calls_in_flight, 0);
    // In: 3 replies, 1 failure. Out: 3 sums, 2 events, hang, cancel,
    // unhandled; a write is counted just after it returns, which can be a
    // moment after the reply to it arrived: wait for it.
    assert_eq!(m.traffic.frames_in, 4);
    eventually(|| socket.metrics().traffic.frames_out == 8).await;
    let m = socket.metrics();

    let s = server_side.metrics();
    assert_eq!(s.traffic.frames_in, 8);
    assert_eq!(s.traffic.bytes_in, m.traffic.bytes_out);
    // Counted once the reply is queued, which can be after it arrived.
    eventually(|| server_side.metrics().traffic.requests_served == 4).await;
    // The server's Welcome goes through its queue too: 1 + 3 replies + 1 failure.
    eventually(|| server_side.metrics().traffic.frames_out == 5).await;
    let welcome = netsock::frame::encode(
        &netsock::frame::Header::Welcome {
            id: socket.id().0,
            max_frame: 8 * 1024 * 1024,
        },
        None::<&()>,
        usize::MAX,
    )
    .unwrap();
    assert_eq!(
        server_side.metrics().traffic.bytes_out,
        m.traffic.bytes_in + welcome.len() as u64
    );
    assert_eq!(server_side.metrics().queue_depth, 0);

    // Refused handshakes, by reason.
    within(Socket::<Stranger>::connect(io.local_addr()))
        .await
        .unwrap_err();
    let mut raw = Raw::connect(io.local_addr()).await;
    raw.write(b"garbage!").await;
    while within(raw.recv()).await.is_some() {}

    // Counted right after the reply is written: wait for it.
    eventually(|| io.metrics().rejects.schema == 1 && io.metrics().rejects.bad_handshake == 1)
        .await;
    let total = io.metrics();
    assert_eq!((total.connections_open, total.connections_total), (1, 1));
    assert_eq!(total.traffic.frames_in, 8);
    assert_eq!(total.traffic.requests_served, 4); // already seen on the socket

    within(socket.close()).await;
    within(server_side.closed()).await;
    let after = io.metrics();
    assert_eq!((after.connections_open, after.connections_total), (0, 1));
    io.close().await;
}
