//! Counters for operators: cheap atomics bumped on the hot path, read as
//! plain snapshots by [`Socket::metrics`](crate::Socket::metrics) and
//! [`Server::metrics`](crate::Server::metrics).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Declares a set of counters once: the atomics bumped on the hot path
/// (`$atomics`, crate-private), the public snapshot (`$snapshot`, one `u64`
/// field per counter, documented here), and the conversion between them.
/// Adding a counter is adding one line to a list below.
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $snapshot:ident from $atomics:ident {
            $( $(#[$field_meta:meta])* $field:ident, )*
        }
    ) => {
        #[derive(Debug, Default)]
        pub(crate) struct $atomics {
            $( pub(crate) $field: AtomicU64, )*
        }

        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $snapshot {
            $( $(#[$field_meta])* pub $field: u64, )*
        }

        impl From<&$atomics> for $snapshot {
            fn from(c: &$atomics) -> Self {
                $snapshot { $( $field: c.$field.load(Relaxed), )* }
            }
        }
    };
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

counters! {
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
    pub struct Traffic from Counters {
        /// Frames received.
        frames_in,
        /// Bytes received, length prefixes included.
        bytes_in,
        /// Frames sent.
        frames_out,
        /// Bytes sent, length prefixes included.
        bytes_out,
        /// Requests this side made that got their reply.
        calls_completed,
        /// Requests this side made that failed other than by timing out.
        calls_failed,
        /// Requests this side made that timed out.
        calls_timed_out,
        /// Requests from the peer this side answered (reply or error reply).
        requests_served,
        /// Events this side did not send to this socket: broadcast and
        /// volatile events dropped because its queue was full, or a
        /// broadcast over its peer's frame limit; on a client, also events
        /// dropped or never sent while offline.
        events_dropped,
        /// Incoming events that could not be handled: undecodable, or a
        /// request variant sent as a one-way event.
        events_invalid,
        /// Incoming events with no handler registered for their variant.
        events_unhandled,
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

counters! {
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
    pub struct Rejects from RejectCounters {
        /// Not a netsock handshake (garbage, wrong magic, closed early), or
        /// one announcing a frame limit below the protocol minimum.
        bad_handshake,
        /// Another protocol version.
        version,
        /// Another event schema.
        schema,
        /// Refused by a middleware.
        refused,
        /// No handshake (or middleware verdict) within the handshake timeout.
        timed_out,
        /// Arrived while the server was closing.
        shutting_down,
        /// Arrived while the server had `max_connections` open or in their
        /// handshake.
        full,
        /// Failed its TLS handshake: a plaintext client on a TLS server, a
        /// TLS client on a plaintext one, a client certificate missing,
        /// untrusted or expired (the `tls` feature).
        tls,
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
/// # io.spawn();
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
    /// Connections accepted by the listener and still in their handshake
    /// (at most the server's `max_handshakes`).
    pub handshakes_in_progress: u64,
    /// Times accepting a connection failed (out of file descriptors and the
    /// like) since the server started; the server retries after a pause.
    pub accept_failures: u64,
    /// Handshakes refused, by reason.
    pub rejects: Rejects,
    /// Traffic summed over every connection since the server started.
    pub traffic: Traffic,
    /// Requests the server made to clients still waiting for their reply.
    pub calls_in_flight: u64,
    /// Frames queued for sending now, over all connections.
    pub queue_depth: u64,
    /// Sockets whose client's connection broke, kept for it to resume its
    /// session (see [`Recovery`](crate::Recovery)); they count in
    /// `connections_open`.
    pub sessions_detached: u64,
    /// Sessions resumed since the server started.
    pub sessions_resumed: u64,
    /// Resumes refused since the server started (the session expired, was
    /// unknown, or was not the client's own): those clients got a new
    /// session and lost what was in flight.
    pub sessions_lost: u64,
}
