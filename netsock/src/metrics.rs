//! Counters for operators: cheap atomics bumped on the hot path, read as
//! plain snapshots by [`Socket::metrics`](crate::Socket::metrics) and
//! [`Server::metrics`](crate::Server::metrics).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A connection's counters, and the server's totals it also adds to.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) frames_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) calls_completed: AtomicU64,
    pub(crate) calls_failed: AtomicU64,
    pub(crate) calls_timed_out: AtomicU64,
    pub(crate) requests_served: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
}

/// A connection's counters plus, on a server, the server-wide ones.
#[derive(Clone, Default)]
pub(crate) struct Meter {
    pub(crate) own: Arc<Counters>,
    pub(crate) server: Option<Arc<Counters>>,
}

impl Meter {
    /// Adds `n` to one counter, here and in the server's totals.
    pub(crate) fn add(&self, field: fn(&Counters) -> &AtomicU64, n: u64) {
        field(&self.own).fetch_add(n, Relaxed);
        if let Some(server) = &self.server {
            field(server).fetch_add(n, Relaxed);
        }
    }
}

/// Traffic counters, for one socket or summed over a server's connections
/// since it started. Frames are counted once the handshake is done, except
/// the server's `Welcome`, which it sends through the connection's queue.
///
/// ```
/// use netsock::Traffic;
/// fn summary(t: &Traffic) -> String {
///     format!("{} frames ({} bytes) in, {} frames ({} bytes) out, {} calls timed out",
///         t.frames_in, t.bytes_in, t.frames_out, t.bytes_out, t.calls_timed_out)
/// }
/// assert!(summary(&Traffic::default()).starts_with("0 frames (0 bytes) in"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Frames received.
    pub frames_in: u64,
    /// Bytes received, length prefixes included.
    pub bytes_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes sent, length prefixes included.
    pub bytes_out: u64,
    /// Requests this side made that got their reply.
    pub calls_completed: u64,
    /// Requests this side made that failed other than by timing out.
    pub calls_failed: u64,
    /// Requests this side made that timed out.
    pub calls_timed_out: u64,
    /// Requests from the peer this side answered (reply or error reply).
    pub requests_served: u64,
    /// Broadcast events dropped because a recipient's queue was full.
    pub events_dropped: u64,
}

impl From<&Counters> for Traffic {
    fn from(c: &Counters) -> Self {
        Traffic {
            frames_in: c.frames_in.load(Relaxed),
            bytes_in: c.bytes_in.load(Relaxed),
            frames_out: c.frames_out.load(Relaxed),
            bytes_out: c.bytes_out.load(Relaxed),
            calls_completed: c.calls_completed.load(Relaxed),
            calls_failed: c.calls_failed.load(Relaxed),
            calls_timed_out: c.calls_timed_out.load(Relaxed),
            requests_served: c.requests_served.load(Relaxed),
            events_dropped: c.events_dropped.load(Relaxed),
        }
    }
}

/// A snapshot of one socket's counters.
///
/// ```
/// # use netsock::{Events, Server, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
/// fn overloaded(socket: &Socket<Api>) -> bool {
///     let m = socket.metrics();
///     m.queue_depth > 512 || m.calls_in_flight > 10_000
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketMetrics {
    /// Totals since the connection opened.
    pub traffic: Traffic,
    /// Requests this side made still waiting for their reply.
    pub calls_in_flight: u64,
    /// Frames queued for sending now.
    pub queue_depth: u64,
}

/// Handshakes a server refused, by reason.
#[derive(Debug, Default)]
pub(crate) struct RejectCounters {
    pub(crate) bad_handshake: AtomicU64,
    pub(crate) version: AtomicU64,
    pub(crate) schema: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) shutting_down: AtomicU64,
    pub(crate) full: AtomicU64,
}

/// Handshakes a server refused, by reason.
///
/// ```
/// # use netsock::{Events, Server, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
/// fn refused(io: &Server<Api>) -> u64 {
///     let r = io.metrics().rejects;
///     r.bad_handshake + r.version + r.schema + r.refused + r.timed_out + r.shutting_down
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejects {
    /// Not a netsock handshake (garbage, wrong magic, closed early).
    pub bad_handshake: u64,
    /// Another protocol version.
    pub version: u64,
    /// Another event schema.
    pub schema: u64,
    /// Refused by a middleware.
    pub refused: u64,
    /// No handshake (or middleware verdict) within the handshake timeout.
    pub timed_out: u64,
    /// Arrived while the server was closing.
    pub shutting_down: u64,
    /// Arrived while the server had `max_connections` open.
    pub full: u64,
}

impl From<&RejectCounters> for Rejects {
    fn from(c: &RejectCounters) -> Self {
        Rejects {
            bad_handshake: c.bad_handshake.load(Relaxed),
            version: c.version.load(Relaxed),
            schema: c.schema.load(Relaxed),
            refused: c.refused.load(Relaxed),
            timed_out: c.timed_out.load(Relaxed),
            shutting_down: c.shutting_down.load(Relaxed),
            full: c.full.load(Relaxed),
        }
    }
}

/// A snapshot of a server's counters.
///
/// ```
/// # use netsock::{Events, Server, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> netsock::Result<()> {
/// # let io = Server::<Api>::bind(0).await?;
/// # tokio::spawn({ let io = io.clone(); async move { io.run().await } });
/// # io.on_connection(|s: Socket<Api>| async move {
/// #     s.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
/// #     Ok(())
/// # });
/// let socket = Socket::<Api>::connect(io.local_addr()).await?;
/// assert_eq!(socket.sum(vec![1, 2]).await?, 3);
/// let m = io.metrics();
/// assert_eq!((m.connections_open, m.connections_total), (1, 1));
/// assert!(m.traffic.frames_in >= 1); // at least the request
/// assert_eq!(socket.metrics().traffic.calls_completed, 1);
/// # io.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerMetrics {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted (handshake completed) since the server started.
    pub connections_total: u64,
    /// Handshakes refused, by reason.
    pub rejects: Rejects,
    /// Traffic summed over every connection since the server started.
    pub traffic: Traffic,
    /// Requests the server made to clients still waiting for their reply.
    pub calls_in_flight: u64,
    /// Frames queued for sending now, over all connections.
    pub queue_depth: u64,
}
