//! A client that pipelines requests until the server stops reading, never
//! reads a reply, then hangs up (or stays connected and silent): the
//! server frees the connection and everything it held.
//!
//! Its own test binary, one test at a time: it counts this process's open
//! file descriptors, which tests running beside it would change.

use std::time::Duration;

use netsock::frame::Header;
use netsock::{DisconnectReason, Server};
use tests::api::{serve_with, Api};
use tests::{eventually, within, Raw, Stream, Transport};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

/// Open file descriptors of this process.
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Waits until this process has at most `n` descriptors open.
async fn fds_back_to(n: usize) {
    eventually(|| fds() <= n).await;
}

/// A server whose queues fill quickly: 32 replies of 16 KiB.
fn small_queues() -> netsock::ServerBuilder<Api> {
    Server::<Api>::builder()
        .queue_capacity(32)
        .max_concurrent_requests(8)
}

/// Handshakes a raw client and sends requests for 16 KiB replies, never
/// reading one, until the server's queue for it is full and its reader has
/// stopped: the state the leak was found in. The client's writes end up
/// blocked too, so they run in a task that hands the stream back.
async fn flood(
    io: &Server<Api>,
    seen: &mut tests::api::Seen,
) -> (JoinHandle<Box<dyn Stream>>, netsock::Socket<Api>) {
    let mut raw = Raw::connect(io.local_addr()).await;
    assert!(matches!(
        within(raw.handshake::<Api>()).await,
        Header::Welcome { .. }
    ));
    let server_side = within(seen.connected.recv()).await.expect("connected");
    // More than the queue, the handlers' permits and the kernel's buffers
    // hold: 2,000 replies of 16 KiB are 32 MiB.
    let request = postcard::to_stdvec(&Api::Zeros(16 * 1024)).expect("encode");
    let mut requests = Vec::new();
    for id in 0..2_000 {
        let header = Header::Request { id, timeout_ms: 0 };
        let frame = netsock::frame::encode_with_payload(&header, &request, usize::MAX);
        requests.extend_from_slice(&frame.expect("encode"));
    }
    let mut stream = raw.into_stream();
    let writing = tokio::spawn(async move {
        let _ = stream.write_all(&requests).await;
        stream
    });
    // Wait until the queue is full: replies stopped leaving.
    eventually(|| server_side.metrics().queue_depth >= 32).await;
    (writing, server_side)
}

/// Closes the client's stream, whether its writes are done or not.
async fn hang_up(writing: JoinHandle<Box<dyn Stream>>) {
    writing.abort();
    drop(writing.await);
}

async fn hang_up_after_flooding(t: Transport) {
    let (io, mut seen, _dir) = serve_with(t, small_queues()).await;
    let before = fds();
    let (client, server_side) = flood(&io, &mut seen).await;
    hang_up(client).await;
    let reason = within(server_side.closed()).await;
    assert!(
        matches!(
            reason,
            DisconnectReason::PeerHungUp | DisconnectReason::Io { .. }
        ),
        "{reason:?}"
    );
    assert_eq!(io.metrics().connections_open, 0);
    drop(server_side);
    fds_back_to(before).await;
    io.close().await;
}

async fn stay_silent_after_flooding(t: Transport) {
    let builder = small_queues().write_timeout(Duration::from_millis(500));
    let (io, mut seen, _dir) = serve_with(t, builder).await;
    let before = fds();
    let (client, server_side) = flood(&io, &mut seen).await;
    // The client is still there, reading nothing: the write timeout ends it.
    assert_eq!(
        within(server_side.closed()).await,
        DisconnectReason::WriteTimeout {
            after: Duration::from_millis(500)
        }
    );
    assert_eq!(io.metrics().connections_open, 0);
    drop(server_side);
    // Only the client's own descriptor is left.
    fds_back_to(before + 1).await;
    hang_up(client).await;
    fds_back_to(before).await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_freed() {
    for t in [Transport::Tcp, Transport::Unix] {
        hang_up_after_flooding(t).await;
        stay_silent_after_flooding(t).await;
    }
}
