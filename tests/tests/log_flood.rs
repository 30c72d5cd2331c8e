//! A peer cannot flood the log: 1,000 undecodable events and 200 failed
//! handshakes write one warning line of each kind (later ones would carry
//! a `suppressed` count, at most once per 10 s), while the metrics count
//! every case.
//!
//! Its own test binary: the rate limit is per kind for the whole process,
//! so warnings from other tests would share it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use netsock::frame::Header;
use tests::api::{serve, Api};
use tests::{eventually, within, Raw, Transport};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::util::SubscriberInitExt;

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines_with(&self, needle: &str) -> usize {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }
}

#[test]
fn repeated_warnings_are_rate_limited_and_still_counted() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _log = subscriber.set_default();
    // One thread, so the subscriber above sees every task's warnings.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (io, mut seen, _dir) = serve(Transport::Unix).await;
        let mut raw = Raw::connect(io.local_addr()).await;
        within(raw.handshake::<Api>()).await;
        let server_side = within(seen.connected.recv()).await.expect("connected");
        for _ in 0..1_000 {
            raw.send(&Header::Event, Some(&[200])).await;
        }
        eventually(|| server_side.metrics().traffic.events_invalid == 1_000).await;
        for _ in 0..200 {
            let mut stranger = Raw::connect(io.local_addr()).await;
            stranger.write(b"not netsock").await;
            drop(stranger);
        }
        eventually(|| io.metrics().rejects.bad_handshake == 200).await;
        io.close().await;
    });
    assert_eq!(log.lines_with("cannot decode an incoming event"), 1);
    assert_eq!(log.lines_with("handshake failed"), 1);
}
