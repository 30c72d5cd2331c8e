//! How a client socket reconnects: [`Reconnect`] (backoff, jitter, attempts,
//! the offline policy) and the [`Reconnected`] event.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::error::{DisconnectReason, Error, TlsError};
use crate::wire::frame::{CloseReason, LostReason, RejectReason};

/// How a client socket reconnects after losing its connection.
///
/// Client sockets reconnect by default. After a disconnect that may be
/// temporary (the server hung up, restarted, shut down, stopped answering
/// heartbeats, or an I/O error), the socket waits, then dials the same
/// address again; attempt *n* waits `initial_delay × 2ⁿ⁻¹`, at most
/// `max_delay`, minus a random share of up to `jitter` of it, so that many
/// clients of a restarted server do not all come back at the same instant.
///
/// It does not reconnect after [`close`](crate::Socket::close), when the
/// server closed this one connection on purpose
/// ([`CloseReason::Normal`] or
/// [`Application`](CloseReason::Application)), after a protocol error
/// or an oversized frame, or when the server refuses the handshake for good
/// (its middleware refused, or the schema or version differ). Then, or when
/// `max_attempts` have failed, the socket is closed for good:
/// [`closed`](crate::Socket::closed) resolves.
///
/// While it is offline:
/// * a request made while offline has not left, and waits for the next
///   connection within its timeout (as many wait as the offline buffer
///   holds events; past that, or with
///   [`fail_offline`](Reconnect::fail_offline), it fails at once with
///   [`CallError::Disconnected`](crate::CallError::Disconnected)); the ones
///   pending at the disconnect fail with `Disconnected`, as they may have
///   run;
/// * emits are kept in a bounded buffer and sent, in order, as soon as the
///   connection is back, before anything emitted after. A full buffer refuses
///   the emit with [`Error::OfflineBufferFull`]. With
///   [`fail_offline`](Reconnect::fail_offline) emits fail at once with
///   [`Error::Disconnected`] instead;
/// * volatile emits are dropped (and counted);
/// * events still buffered when the socket closes for good are reported to
///   the error hook as [`SocketError::Unsent`](crate::SocketError::Unsent).
///
/// The socket keeps its handlers, data and counters across connections:
/// handlers are registered once and run once per event. Its
/// [`id`](crate::Socket::id) changes: the server gives every connection a
/// new one. Server-side state such as rooms is per connection; rebuild it in
/// [`on_reconnect`](crate::Socket::on_reconnect). With
/// [session recovery](crate::Recovery) a reconnect resumes the session
/// instead: the id, the server-side state and everything in flight are
/// kept.
///
/// ```
/// use netsock::{Events, Reconnect, Socket};
/// use std::time::Duration;
///
/// #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// enum Chat { Say(String) }
///
/// async fn connect(path: &str) -> netsock::Result<Socket<Chat>> {
///     Socket::<Chat>::builder()
///         .reconnect(
///             Reconnect::new()
///                 .initial_delay(Duration::from_millis(50))
///                 .max_delay(Duration::from_secs(2))
///                 .max_attempts(20)
///                 .offline_buffer(256),
///         )
///         .connect(path)
///         .await
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) jitter: f64,
    pub(crate) offline: Option<usize>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: Self::DEFAULT_INITIAL_DELAY,
            max_delay: Self::DEFAULT_MAX_DELAY,
            max_attempts: None,
            jitter: Self::DEFAULT_JITTER,
            offline: Some(Self::DEFAULT_OFFLINE_BUFFER),
        }
    }
}

impl Reconnect {
    /// The default [`initial_delay`](Self::initial_delay): 100 ms.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(netsock::Reconnect::DEFAULT_INITIAL_DELAY, Duration::from_millis(100));
    /// ```
    pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(100);

    /// The default [`max_delay`](Self::max_delay): 5 s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(netsock::Reconnect::DEFAULT_MAX_DELAY, Duration::from_secs(5));
    /// ```
    pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);

    /// The default [`jitter`](Self::jitter): 0.5, up to half of each delay
    /// is random.
    ///
    /// ```
    /// assert_eq!(netsock::Reconnect::DEFAULT_JITTER, 0.5);
    /// ```
    pub const DEFAULT_JITTER: f64 = 0.5;

    /// The default [`offline_buffer`](Self::offline_buffer): 1,024 events.
    ///
    /// ```
    /// assert_eq!(netsock::Reconnect::DEFAULT_OFFLINE_BUFFER, 1024);
    /// ```
    pub const DEFAULT_OFFLINE_BUFFER: usize = 1024;

    /// The defaults: 100 ms first delay, 5 s at most, jitter 0.5, attempts
    /// without limit, an offline buffer of 1,024 events.
    ///
    /// ```
    /// let policy = netsock::Reconnect::new();
    /// assert_eq!(policy, netsock::Reconnect::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before the first attempt
    /// ([`DEFAULT_INITIAL_DELAY`](Self::DEFAULT_INITIAL_DELAY), 100 ms); it
    /// doubles with each failed attempt.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let policy = netsock::Reconnect::new().initial_delay(Duration::from_millis(10));
    /// ```
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest delay between two attempts
    /// ([`DEFAULT_MAX_DELAY`](Self::DEFAULT_MAX_DELAY), 5 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let policy = netsock::Reconnect::new().max_delay(Duration::from_secs(30));
    /// ```
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Gives up after this many failed attempts in a row (default: never).
    ///
    /// ```
    /// let policy = netsock::Reconnect::new().max_attempts(10);
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The share of each delay that is random, from 0 (none) to 1 (anything
    /// from zero to the full delay); default
    /// [`DEFAULT_JITTER`](Self::DEFAULT_JITTER), 0.5.
    ///
    /// ```
    /// let policy = netsock::Reconnect::new().jitter(0.0); // exact delays
    /// ```
    pub fn jitter(mut self, share: f64) -> Self {
        self.jitter = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        self
    }

    /// Emits made while offline are buffered, up to this many events (and
    /// the socket's [`queue_bytes`](crate::SocketBuilder::queue_bytes)), and
    /// sent in order after reconnecting; as many requests made while
    /// offline wait for the connection (each within its timeout). The
    /// default, with
    /// [`DEFAULT_OFFLINE_BUFFER`](Self::DEFAULT_OFFLINE_BUFFER) (1,024)
    /// events.
    ///
    /// ```
    /// let policy = netsock::Reconnect::new().offline_buffer(64);
    /// ```
    pub fn offline_buffer(mut self, events: usize) -> Self {
        self.offline = Some(events);
        self
    }

    /// Emits and requests made while offline fail at once with
    /// [`Error::Disconnected`] (requests with
    /// [`CallError::Disconnected`](crate::CallError::Disconnected)) instead
    /// of being buffered or waiting.
    ///
    /// ```
    /// let policy = netsock::Reconnect::new().fail_offline();
    /// ```
    pub fn fail_offline(mut self) -> Self {
        self.offline = None;
        self
    }

    /// The delay before attempt `attempt` (1 for the first).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = self
            .initial_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        base.mul_f64(1.0 - self.jitter * random_unit())
    }

    /// Whether the attempt count allows another.
    pub(crate) fn may_try(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempt <= max)
    }
}

/// A number in [0, 1), different on every call: enough to spread reconnects
/// out, without a dependency on a random number crate.
fn random_unit() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a connection that ended this way may come back by reconnecting.
pub(crate) fn is_temporary(reason: &DisconnectReason) -> bool {
    match reason {
        DisconnectReason::PeerHungUp
        | DisconnectReason::CutMidFrame { .. }
        | DisconnectReason::Io { .. }
        | DisconnectReason::HeartbeatTimeout { .. }
        | DisconnectReason::WriteTimeout { .. }
        | DisconnectReason::ClosedByPeer(CloseReason::Shutdown(_)) => true,
        DisconnectReason::ClosedLocally
        | DisconnectReason::ClosedByPeer(_)
        | DisconnectReason::Protocol(_)
        | DisconnectReason::FrameTooLarge { .. }
        | DisconnectReason::ReconnectFailed { .. } => false,
    }
}

/// Whether a failed attempt is worth repeating: a refused handshake is not,
/// unless the server was only full or shutting down.
pub(crate) fn is_retryable(err: &Error) -> bool {
    !matches!(
        err,
        Error::SchemaMismatch { .. }
            | Error::VersionMismatch { .. }
            | Error::InvalidAddr { .. }
            | Error::TransportDisabled { .. }
            | Error::Rejected(RejectReason::Refused(_) | RejectReason::BadMagic)
            | Error::TlsConfig { .. }
            | Error::Tls {
                cause: TlsError::UnknownIssuer
                    | TlsError::NameMismatch { .. }
                    | TlsError::ClientCertMissing
                    | TlsError::CertRefused { .. }
                    | TlsError::NotTls
                    | TlsError::TlsRequired,
                ..
            }
    )
}

/// Passed to [`on_reconnect`](crate::Socket::on_reconnect) handlers.
///
/// ```
/// # use netsock::{Events, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Chat { Hi }
/// fn log_reconnects(socket: &Socket<Chat>) {
///     socket.on_reconnect(|r: netsock::Reconnected| async move {
///         println!("back after {} attempts and {:?}; {} buffered events sent",
///             r.attempts, r.offline, r.replayed);
///     });
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconnected {
    /// How many attempts it took (1: the first one worked).
    pub attempts: u32,
    /// How long the socket was offline.
    pub offline: Duration,
    /// How many events emitted while offline were sent on the new connection.
    pub replayed: usize,
    /// Why the previous connection ended.
    pub reason: DisconnectReason,
    /// With [session recovery](crate::Recovery): the session was resumed,
    /// so nothing in flight at the cut was lost or doubled (the socket
    /// also kept its id).
    pub recovered: bool,
    /// With session recovery, when the session could not be resumed: what
    /// may have been lost. `None` when recovered, or without recovery.
    pub lost: Option<SessionLoss>,
}

/// What a client lost with a session it could not resume: part of
/// [`Reconnected`].
///
/// ```
/// use netsock::{frame::LostReason, SessionLoss};
/// fn report(loss: &SessionLoss) {
///     match loss.received {
///         Some(n) => eprintln!("lost {} sent, {n} not received: {}", loss.sent, loss.why),
///         None => eprintln!("lost up to {} sent; what the server sent is unknown: {}", loss.sent, loss.why),
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionLoss {
    /// Why the session was not resumed.
    pub why: LostReason,
    /// Frames (events, requests, replies) this side sent that the server
    /// did not receive: exact when the server still knew the session,
    /// else those it had not acknowledged (some may have arrived).
    pub sent: u64,
    /// Frames the server sent that this side did not receive, when the
    /// server still knew the session (its window had passed); `None` when
    /// it did not (it restarted).
    pub received: Option<u64>,
    /// Requests in flight at the cut, failed with
    /// [`CallError::Disconnected`](crate::CallError::Disconnected) (they
    /// may have run).
    pub calls_failed: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_only_shortens() {
        let exact = Reconnect::new()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1))
            .jitter(0.0);
        let delays: Vec<_> = (1..=6).map(|n| exact.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(exact.delay(u32::MAX), Duration::from_secs(1));

        let jittered = exact.clone().jitter(0.5);
        let samples: Vec<_> = (0..200).map(|_| jittered.delay(3)).collect();
        assert!(samples
            .iter()
            .all(|d| *d > Duration::from_millis(200) && *d <= Duration::from_millis(400)));
        let first = samples[0];
        assert!(samples.iter().any(|d| *d != first), "no jitter at all");
    }

    #[test]
    fn only_temporary_ends_and_failures_are_retried() {
        use std::time::Duration;
        let temporary = [
            DisconnectReason::PeerHungUp,
            DisconnectReason::HeartbeatTimeout {
                after: Duration::from_secs(1),
            },
            DisconnectReason::ClosedByPeer(CloseReason::Shutdown("restart".into())),
            DisconnectReason::Io {
                kind: std::io::ErrorKind::TimedOut,
                message: "timed out".into(),
            },
        ];
        assert!(temporary.iter().all(is_temporary));
        let final_ = [
            DisconnectReason::ClosedLocally,
            DisconnectReason::ClosedByPeer(CloseReason::Normal),
            DisconnectReason::ClosedByPeer(CloseReason::Application("bye".into())),
            DisconnectReason::Protocol("bad".into()),
            DisconnectReason::FrameTooLarge { size: 2, max: 1 },
        ];
        assert!(!final_.iter().any(is_temporary));

        let full = Error::Rejected(RejectReason::Other("the server is full".into()));
        assert!(is_retryable(&full));
        assert!(is_retryable(&Error::HandshakeTimeout {
            addr: "x".into(),
            after: Duration::from_secs(1)
        }));
        assert!(!is_retryable(&Error::Rejected(RejectReason::Refused(
            "no".into()
        ))));
    }

    #[test]
    fn attempts_are_limited_only_when_asked() {
        assert!(Reconnect::new().may_try(u32::MAX));
        let three = Reconnect::new().max_attempts(3);
        assert!(three.may_try(3) && !three.may_try(4));
    }
}
