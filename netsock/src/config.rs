//! Settings shared by servers and client sockets: the typed options
//! ([`Heartbeat`], [`SchemaCheck`], [`SocketMode`]), their defaults, and the
//! builder setters.
//!
//! Each default lives with its option: on the option's type
//! ([`Heartbeat::DEFAULT`], [`SchemaCheck::DEFAULT`], [`SocketMode::DEFAULT`],
//! [`frame::DEFAULT_MAX_FRAME_SIZE`](crate::frame::DEFAULT_MAX_FRAME_SIZE)),
//! or as an associated constant of the builders that have the setter
//! (`ServerBuilder::DEFAULT_REQUEST_TIMEOUT`, ...).

use std::fmt;
use std::time::Duration;

use crate::wire::frame::{DEFAULT_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE};

/// The defaults of the builders' settings without a type of their own; the
/// builders publish each as an associated constant next to its setter.
pub(crate) mod defaults {
    use std::time::Duration;

    pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    pub(crate) const QUEUE_CAPACITY: usize = 1024;
    pub(crate) const MAX_CONCURRENT_REQUESTS: usize = 1024;
    pub(crate) const QUEUE_BYTES: usize = 16 * 1024 * 1024;
    pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
    pub(crate) const MAX_CONNECTIONS: usize = 10_000;
    pub(crate) const MAX_HANDSHAKES: usize = 256;
    /// 4 KiB: a `Hello` (about 30 bytes) with room for a token.
    pub(crate) const MAX_HANDSHAKE_SIZE: usize = 4 * 1024;
}

/// How a connection notices a peer that went silent, for
/// [`ServerBuilder::heartbeat`](crate::ServerBuilder::heartbeat) and
/// [`SocketBuilder::heartbeat`](crate::SocketBuilder::heartbeat).
///
/// When nothing arrives from the peer for the *interval*, this side sends
/// it a ping; when still nothing arrives within the *timeout* after that, it
/// drops the connection with
/// [`DisconnectReason::HeartbeatTimeout`](crate::DisconnectReason::HeartbeatTimeout).
/// A silent peer is so noticed within interval + timeout. Any frame counts
/// as a sign of life, so a busy connection sends no pings.
///
/// A value rather than two `Duration` arguments, so that the interval and
/// the timeout cannot be swapped unnoticed, each one left out keeps its
/// default, and "off" is a value like any other (handy when the setting
/// comes from a configuration file).
///
/// ```
/// use netsock::Heartbeat;
/// use std::time::Duration;
///
/// // The default, as socket.io: a ping after 25 s of silence, 20 s to answer.
/// assert_eq!(
///     Heartbeat::DEFAULT,
///     Heartbeat::every(Duration::from_secs(25)).timeout(Duration::from_secs(20)),
/// );
/// assert_eq!(Heartbeat::default(), Heartbeat::DEFAULT);
/// // A quicker check; the timeout keeps its default of 20 s.
/// let quick = Heartbeat::every(Duration::from_secs(5));
/// assert_eq!(quick, Heartbeat::every(Duration::from_secs(5)).timeout(Duration::from_secs(20)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// The interval and the timeout; `None`: off.
    pub(crate) beat: Option<(Duration, Duration)>,
}

impl Heartbeat {
    const DEFAULT_INTERVAL: Duration = Duration::from_secs(25);
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

    /// The default: a ping after 25 s without a frame from the peer, and
    /// 20 s for any frame to arrive after it, as socket.io.
    ///
    /// ```
    /// use netsock::Heartbeat;
    /// use std::time::Duration;
    /// let default = Heartbeat::every(Duration::from_secs(25)).timeout(Duration::from_secs(20));
    /// assert_eq!(Heartbeat::DEFAULT, default);
    /// ```
    pub const DEFAULT: Heartbeat = Heartbeat {
        beat: Some((Self::DEFAULT_INTERVAL, Self::DEFAULT_TIMEOUT)),
    };

    /// No heartbeat: a peer that goes silent is then only noticed when the
    /// operating system reports the connection broken, which over TCP may
    /// take hours. The builders' `no_heartbeat()` is the same.
    ///
    /// ```
    /// # use netsock::{Events, Heartbeat, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// let beat = std::env::var_os("NO_HEARTBEAT").map_or(Heartbeat::DEFAULT, |_| Heartbeat::OFF);
    /// let client = Socket::<Api>::builder().heartbeat(beat);
    /// ```
    pub const OFF: Heartbeat = Heartbeat { beat: None };

    /// A ping after `interval` without a frame from the peer, with the
    /// default timeout (20 s) unless [`timeout`](Self::timeout) sets
    /// another.
    ///
    /// ```
    /// use netsock::Heartbeat;
    /// use std::time::Duration;
    /// let beat = Heartbeat::every(Duration::from_secs(5));
    /// assert_eq!(beat, Heartbeat::every(Duration::from_secs(5)).timeout(Duration::from_secs(20)));
    /// ```
    pub const fn every(interval: Duration) -> Self {
        Heartbeat {
            beat: Some((interval, Self::DEFAULT_TIMEOUT)),
        }
    }

    /// How long to wait for any frame after a ping before giving the peer
    /// up. On [`OFF`](Self::OFF) it turns the heartbeat on, with the
    /// default interval (25 s).
    ///
    /// ```
    /// use netsock::Heartbeat;
    /// use std::time::Duration;
    /// // Ping after 10 s of silence; drop the peer 3 s later.
    /// let beat = Heartbeat::every(Duration::from_secs(10)).timeout(Duration::from_secs(3));
    /// // The default interval, a shorter timeout.
    /// let beat = Heartbeat::DEFAULT.timeout(Duration::from_secs(5));
    /// assert_eq!(beat, Heartbeat::every(Duration::from_secs(25)).timeout(Duration::from_secs(5)));
    /// ```
    pub const fn timeout(self, timeout: Duration) -> Self {
        let interval = match self.beat {
            Some((interval, _)) => interval,
            None => Self::DEFAULT_INTERVAL,
        };
        Heartbeat {
            beat: Some((interval, timeout)),
        }
    }
}

impl Default for Heartbeat {
    /// [`Heartbeat::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.beat {
            Some((interval, timeout)) => f
                .debug_struct("Heartbeat")
                .field("interval", &interval)
                .field("timeout", &timeout)
                .finish(),
            None => f.write_str("Heartbeat::OFF"),
        }
    }
}

/// Whether a peer built from other event enums is accepted, for
/// [`ServerBuilder::schema_check`](crate::ServerBuilder::schema_check) and
/// [`SocketBuilder::schema_check`](crate::SocketBuilder::schema_check).
///
/// The handshake compares the [schema ids](crate::SchemaId) of both sides'
/// event enums. A named choice rather than a `bool`, so that a call site
/// says which way it goes.
///
/// ```
/// use netsock::SchemaCheck;
/// assert_eq!(SchemaCheck::DEFAULT, SchemaCheck::Strict);
/// assert_eq!(SchemaCheck::default(), SchemaCheck::Strict);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemaCheck {
    /// Refuse a peer whose schemas differ from this side's, with
    /// [`Error::SchemaMismatch`](crate::Error::SchemaMismatch) (the
    /// default).
    #[default]
    Strict,
    /// Accept it anyway, for rolling upgrades: append variants only, never
    /// reorder them, since variants travel as indexes. Events the other side
    /// does not know are reported to its error hook and the connection stays
    /// open. Either side asking for it is enough.
    Lenient,
}

impl SchemaCheck {
    /// The default: [`Strict`](Self::Strict).
    ///
    /// ```
    /// assert_eq!(netsock::SchemaCheck::DEFAULT, netsock::SchemaCheck::Strict);
    /// ```
    pub const DEFAULT: SchemaCheck = SchemaCheck::Strict;
}

/// Who may connect to a server's Unix socket: the permissions its file is
/// created with, for
/// [`ServerBuilder::socket_mode`](crate::ServerBuilder::socket_mode).
///
/// Connecting to a Unix socket takes write permission on its file, so the
/// named modes say whom they let in: [`OWNER`](Self::OWNER) (`0o600`, the
/// default), [`OWNER_AND_GROUP`](Self::OWNER_AND_GROUP) (`0o660`) and
/// [`EVERYONE`](Self::EVERYONE) (`0o666`). A type rather than a bare
/// `u32`, so that a mode written in decimal by mistake (`660` is `0o1224`)
/// cannot slip through: [`from_bits`](Self::from_bits) takes any other
/// mode, and refuses anything but permission bits.
///
/// ```
/// use netsock::SocketMode;
/// assert_eq!(SocketMode::DEFAULT, SocketMode::OWNER);
/// assert_eq!(SocketMode::default().bits(), 0o600);
/// assert_eq!(SocketMode::OWNER_AND_GROUP.bits(), 0o660);
/// assert_eq!(SocketMode::from_bits(0o640).map(SocketMode::bits), Some(0o640));
/// assert_eq!(SocketMode::from_bits(660), None); // decimal: 0o1224
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketMode(u32);

impl SocketMode {
    /// `0o600`: only processes of the server's user may connect (and
    /// root).
    ///
    /// ```
    /// assert_eq!(netsock::SocketMode::OWNER.bits(), 0o600);
    /// ```
    pub const OWNER: SocketMode = SocketMode(0o600);

    /// `0o660`: processes of the server's user, or of the socket file's
    /// group.
    ///
    /// ```
    /// assert_eq!(netsock::SocketMode::OWNER_AND_GROUP.bits(), 0o660);
    /// ```
    pub const OWNER_AND_GROUP: SocketMode = SocketMode(0o660);

    /// `0o666`: any process that can reach the file (its directory's
    /// permissions still apply).
    ///
    /// ```
    /// assert_eq!(netsock::SocketMode::EVERYONE.bits(), 0o666);
    /// ```
    pub const EVERYONE: SocketMode = SocketMode(0o666);

    /// The default: [`OWNER`](Self::OWNER).
    ///
    /// ```
    /// assert_eq!(netsock::SocketMode::DEFAULT, netsock::SocketMode::OWNER);
    /// ```
    pub const DEFAULT: SocketMode = Self::OWNER;

    /// Any other mode, from its bits (read `0o4`, write `0o2` and execute
    /// `0o1`, for the owner, the group and others). `None` when `bits` has
    /// anything beyond the permission bits `0o777` (set-id and sticky bits,
    /// or a mode written in decimal).
    ///
    /// ```
    /// use netsock::SocketMode;
    /// // The owner reads and writes, the group only reads: only the owner can connect.
    /// let mode = SocketMode::from_bits(0o640).expect("permission bits only");
    /// assert_eq!(mode.bits(), 0o640);
    /// assert_eq!(SocketMode::from_bits(0o4600), None); // set-user-id
    /// assert_eq!(SocketMode::from_bits(600), None); // decimal, not octal
    /// ```
    pub const fn from_bits(bits: u32) -> Option<SocketMode> {
        if bits & !0o777 == 0 {
            Some(SocketMode(bits))
        } else {
            None
        }
    }

    /// The permission bits.
    ///
    /// ```
    /// assert_eq!(netsock::SocketMode::EVERYONE.bits(), 0o666);
    /// ```
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl Default for SocketMode {
    /// [`SocketMode::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Debug for SocketMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketMode({:#o})", self.0)
    }
}

/// Session recovery: a short cut in the network is invisible to the
/// application. For [`SocketBuilder::recovery`](crate::SocketBuilder::recovery)
/// and [`ServerBuilder::recovery`](crate::ServerBuilder::recovery).
///
/// A client with recovery asks its server for a *session*. When the
/// connection breaks for a reason that may be temporary, neither side ends
/// the socket: the server keeps it, with its id, rooms, data and handlers,
/// for the *window*; the client reconnects and resumes it, and both sides
/// send again, in order, the frames the other had not received. Within the
/// window every event, request and reply is delivered exactly once and in
/// order; calls in flight complete after the resume (within their
/// timeout). Each side keeps the frames the other has not acknowledged, at
/// most `max_frames` and `max_bytes` of them; a session past a bound, or
/// past its window, is not resumed: the client gets a new one and
/// [`Reconnected`](crate::Reconnected) says what was lost. Volatile emits
/// are never sent again. See the book's Reliability chapter.
///
/// Servers grant sessions by default (a client that does not ask pays
/// nothing); clients ask only when given a `Recovery`.
///
/// ```
/// use netsock::{Events, Recovery, Socket};
/// use std::time::Duration;
///
/// #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// enum Api { Tick(u64) }
///
/// assert_eq!(Recovery::DEFAULT.window(), Duration::from_secs(120));
/// let builder = Socket::<Api>::builder().recovery(Recovery::DEFAULT);
/// let picky = Recovery::DEFAULT.with_window(Duration::from_secs(30)).with_max_frames(4096);
/// assert_eq!(picky.max_frames(), 4096);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Recovery {
    window: Duration,
    max_frames: usize,
    max_bytes: usize,
}

impl Recovery {
    /// Two minutes (socket.io's `maxDisconnectionDuration`), 1,048,576 frames
    /// and 16 MiB kept for the peer.
    pub const DEFAULT: Recovery = Recovery {
        window: Duration::from_secs(120),
        max_frames: 1 << 20,
        max_bytes: 16 * 1024 * 1024,
    };

    /// How long the server keeps a session after a cut.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// With another window (a server's decides).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let r = netsock::Recovery::DEFAULT.with_window(Duration::from_secs(5));
    /// assert_eq!(r.window(), Duration::from_secs(5));
    /// ```
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Most frames kept until the peer acknowledges them.
    pub fn max_frames(&self) -> usize {
        self.max_frames
    }

    /// With another frame bound (at least 1).
    ///
    /// ```
    /// assert_eq!(netsock::Recovery::DEFAULT.with_max_frames(0).max_frames(), 1);
    /// ```
    pub fn with_max_frames(mut self, frames: usize) -> Self {
        self.max_frames = frames.max(1);
        self
    }

    /// Most bytes kept until the peer acknowledges them.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// With another byte bound (at least 1).
    ///
    /// ```
    /// let r = netsock::Recovery::DEFAULT.with_max_bytes(1 << 20);
    /// assert_eq!(r.max_bytes(), 1 << 20);
    /// ```
    pub fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }
}

impl Default for Recovery {
    /// [`Recovery::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Client: the session to ask for; server: the sessions it grants.
    pub(crate) recovery: Option<Recovery>,
    pub(crate) request_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_frame_size: usize,
    /// [`SchemaCheck::Lenient`], as the `Hello` carries it.
    pub(crate) lenient: bool,
    pub(crate) queue_capacity: usize,
    pub(crate) max_concurrent_requests: usize,
    pub(crate) socket_mode: u32,
    /// [`Heartbeat`]: the interval and the timeout, `None` when off.
    pub(crate) heartbeat: Option<(Duration, Duration)>,
    pub(crate) max_connections: usize,
    pub(crate) queue_bytes: usize,
    /// How long a write may wait for the peer to take any byte.
    pub(crate) write_timeout: Duration,
    /// Server: connections in their handshake at once.
    pub(crate) max_handshakes: usize,
    /// Server: the largest frame a peer may send before its handshake is done.
    pub(crate) max_handshake_size: usize,
    /// Server: the certificates it presents, and how it checks clients'.
    #[cfg(feature = "tls")]
    pub(crate) server_tls: Option<crate::tls::ServerTls>,
    /// Client: the roots it trusts and its own certificate; kept for
    /// reconnects, as the whole `Config` is.
    #[cfg(feature = "tls")]
    pub(crate) client_tls: Option<crate::tls::ClientTls>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            recovery: None,
            request_timeout: defaults::REQUEST_TIMEOUT,
            handshake_timeout: defaults::HANDSHAKE_TIMEOUT,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            lenient: SchemaCheck::DEFAULT == SchemaCheck::Lenient,
            queue_capacity: defaults::QUEUE_CAPACITY,
            max_concurrent_requests: defaults::MAX_CONCURRENT_REQUESTS,
            socket_mode: SocketMode::DEFAULT.bits(),
            heartbeat: Heartbeat::DEFAULT.beat,
            max_connections: defaults::MAX_CONNECTIONS,
            queue_bytes: defaults::QUEUE_BYTES,
            write_timeout: defaults::WRITE_TIMEOUT,
            max_handshakes: defaults::MAX_HANDSHAKES,
            max_handshake_size: defaults::MAX_HANDSHAKE_SIZE,
            #[cfg(feature = "tls")]
            server_tls: None,
            #[cfg(feature = "tls")]
            client_tls: None,
        }
    }
}

impl Config {
    pub(crate) fn set_max_frame_size(&mut self, bytes: usize) {
        self.max_frame_size = bytes.clamp(MIN_MAX_FRAME_SIZE, u32::MAX as usize);
    }
}

/// Builder methods shared by [`ServerBuilder`](crate::ServerBuilder) and
/// [`SocketBuilder`](crate::SocketBuilder), each with its default next to it.
macro_rules! config_setters {
    () => {
        /// The default [`request_timeout`](Self::request_timeout): 10 s.
        ///
        /// ```
        /// # use netsock::{Events, ServerBuilder, SocketBuilder};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// use std::time::Duration;
        /// assert_eq!(ServerBuilder::<Api>::DEFAULT_REQUEST_TIMEOUT, Duration::from_secs(10));
        /// assert_eq!(SocketBuilder::<Api>::DEFAULT_REQUEST_TIMEOUT, Duration::from_secs(10));
        /// ```
        pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration =
            crate::config::defaults::REQUEST_TIMEOUT;

        /// Default time a request waits for its reply
        /// ([`DEFAULT_REQUEST_TIMEOUT`](Self::DEFAULT_REQUEST_TIMEOUT),
        /// 10 s); override per call with
        /// [`Socket::timeout`](crate::Socket::timeout).
        ///
        /// ```
        /// # use netsock::{Events, Server, Socket};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// use std::time::Duration;
        /// // A request that gets no reply within 500 ms fails with `CallError::Timeout`.
        /// let client = Socket::<Api>::builder().request_timeout(Duration::from_millis(500));
        /// let server = Server::<Api>::builder().request_timeout(Duration::from_secs(30));
        /// ```
        pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.config.request_timeout = timeout;
            self
        }

        /// The default [`handshake_timeout`](Self::handshake_timeout): 10 s.
        ///
        /// ```
        /// # use netsock::{Events, ServerBuilder, SocketBuilder};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// use std::time::Duration;
        /// assert_eq!(ServerBuilder::<Api>::DEFAULT_HANDSHAKE_TIMEOUT, Duration::from_secs(10));
        /// assert_eq!(SocketBuilder::<Api>::DEFAULT_HANDSHAKE_TIMEOUT, Duration::from_secs(10));
        /// ```
        pub const DEFAULT_HANDSHAKE_TIMEOUT: std::time::Duration =
            crate::config::defaults::HANDSHAKE_TIMEOUT;

        /// Time allowed for the handshake
        /// ([`DEFAULT_HANDSHAKE_TIMEOUT`](Self::DEFAULT_HANDSHAKE_TIMEOUT),
        /// 10 s).
        ///
        /// ```
        /// # use netsock::{Events, Server, Socket};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// use std::time::Duration;
        /// let server = Server::<Api>::builder().handshake_timeout(Duration::from_secs(2));
        /// let client = Socket::<Api>::builder().handshake_timeout(Duration::from_secs(2));
        /// ```
        pub fn handshake_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.config.handshake_timeout = timeout;
            self
        }

        /// Largest frame body this side accepts, in bytes (default
        /// [`frame::DEFAULT_MAX_FRAME_SIZE`](crate::frame::DEFAULT_MAX_FRAME_SIZE),
        /// 8 MiB; at least
        /// [`frame::MIN_MAX_FRAME_SIZE`](crate::frame::MIN_MAX_FRAME_SIZE),
        /// 1 KiB: less is taken as that). The peer learns it in the
        /// handshake and never sends more; sending more than the peer's limit
        /// fails locally with a `FrameTooLarge` error.
        ///
        /// ```
        /// # use netsock::{Events, Server, Socket};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// assert_eq!(netsock::frame::DEFAULT_MAX_FRAME_SIZE, 8 * 1024 * 1024);
        /// assert_eq!(netsock::frame::MIN_MAX_FRAME_SIZE, 1024);
        /// // Clients of this server fail locally with `Error::FrameTooLarge` when
        /// // they emit more than 64 KiB at once.
        /// let server = Server::<Api>::builder().max_frame_size(64 * 1024);
        /// let client = Socket::<Api>::builder().max_frame_size(1024 * 1024);
        /// ```
        pub fn max_frame_size(mut self, bytes: usize) -> Self {
            self.config.set_max_frame_size(bytes);
            self
        }

        /// Whether to accept a peer built from different event enums
        /// (default [`SchemaCheck::Strict`](crate::SchemaCheck::Strict): no).
        /// [`SchemaCheck::Lenient`](crate::SchemaCheck::Lenient) on either
        /// side accepts it, for rolling upgrades: append variants only,
        /// never reorder them. Events the other side does not know are
        /// reported to the error hook and the connection stays open.
        ///
        /// ```
        /// # use netsock::{Events, Server, Socket};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// use netsock::SchemaCheck;
        /// // A new server version that still talks to clients built from the old enum.
        /// let server = Server::<Api>::builder().schema_check(SchemaCheck::Lenient);
        /// let client = Socket::<Api>::builder().schema_check(SchemaCheck::Lenient);
        /// ```
        pub fn schema_check(mut self, check: crate::config::SchemaCheck) -> Self {
            self.config.lenient = match check {
                crate::config::SchemaCheck::Strict => false,
                crate::config::SchemaCheck::Lenient => true,
            };
            self
        }

        /// The default [`queue_capacity`](Self::queue_capacity): 1024 frames.
        ///
        /// ```
        /// # use netsock::{Events, ServerBuilder, SocketBuilder};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// assert_eq!(ServerBuilder::<Api>::DEFAULT_QUEUE_CAPACITY, 1024);
        /// assert_eq!(SocketBuilder::<Api>::DEFAULT_QUEUE_CAPACITY, 1024);
        /// ```
        pub const DEFAULT_QUEUE_CAPACITY: usize = crate::config::defaults::QUEUE_CAPACITY;

        /// Capacity of each connection's outgoing queue, in frames
        /// ([`DEFAULT_QUEUE_CAPACITY`](Self::DEFAULT_QUEUE_CAPACITY), 1024;
        /// at least 1). `emit` waits while the queue is full.
        ///
        /// ```
        /// # use netsock::{Events, Server, Socket};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// let server = Server::<Api>::builder().queue_capacity(64);
        /// let client = Socket::<Api>::builder().queue_capacity(64);
        /// ```
        pub fn queue_capacity(mut self, frames: usize) -> Self {
            self.config.queue_capacity = frames.max(1);
            self
        }

        /// The default [`max_concurrent_requests`](Self::max_concurrent_requests):
        /// 1024.
        ///
        /// ```
        /// # use netsock::{Events, ServerBuilder, SocketBuilder};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// assert_eq!(ServerBuilder::<Api>::DEFAULT_MAX_CONCURRENT_REQUESTS, 1024);
        /// assert_eq!(SocketBuilder::<Api>::DEFAULT_MAX_CONCURRENT_REQUESTS, 1024);
        /// ```
        pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize =
            crate::config::defaults::MAX_CONCURRENT_REQUESTS;

        /// How many requests from one peer may run at once
        /// ([`DEFAULT_MAX_CONCURRENT_REQUESTS`](Self::DEFAULT_MAX_CONCURRENT_REQUESTS),
        /// 1024; at least 1); beyond that, the connection stops reading
        /// until one finishes.
        ///
        /// ```
        /// # use netsock::{Events, Server, Socket};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// let server = Server::<Api>::builder().max_concurrent_requests(16);
        /// let client = Socket::<Api>::builder().max_concurrent_requests(16);
        /// ```
        pub fn max_concurrent_requests(mut self, requests: usize) -> Self {
            self.config.max_concurrent_requests = requests.max(1);
            self
        }

        /// The default [`queue_bytes`](Self::queue_bytes): 16 MiB.
        ///
        /// ```
        /// # use netsock::{Events, ServerBuilder, SocketBuilder};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// assert_eq!(ServerBuilder::<Api>::DEFAULT_QUEUE_BYTES, 16 * 1024 * 1024);
        /// assert_eq!(SocketBuilder::<Api>::DEFAULT_QUEUE_BYTES, 16 * 1024 * 1024);
        /// ```
        pub const DEFAULT_QUEUE_BYTES: usize = crate::config::defaults::QUEUE_BYTES;

        /// How many bytes may wait in each connection's outgoing queue
        /// ([`DEFAULT_QUEUE_BYTES`](Self::DEFAULT_QUEUE_BYTES), 16 MiB),
        /// besides the frame count of
        /// [`queue_capacity`](Self::queue_capacity). `emit` waits while
        /// either is reached; `try_emit` fails with `QueueFull`; broadcasts
        /// and volatile emits drop the event for that socket. A single frame
        /// larger than the budget still goes, alone.
        ///
        /// ```
        /// # use netsock::{Events, Server};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// let builder = Server::<Api>::builder().queue_bytes(1024 * 1024);
        /// ```
        pub fn queue_bytes(mut self, bytes: usize) -> Self {
            self.config.queue_bytes = bytes.clamp(1, u32::MAX as usize >> 1);
            self
        }

        /// The heartbeat, which notices a peer that went silent (default
        /// [`Heartbeat::DEFAULT`](crate::Heartbeat::DEFAULT): a ping after
        /// 25 s of silence, 20 s to answer, as socket.io). When nothing
        /// arrives from the peer for the interval, send it a ping; when
        /// still nothing arrives within the timeout after it, drop the
        /// connection with
        /// [`DisconnectReason::HeartbeatTimeout`](crate::DisconnectReason::HeartbeatTimeout).
        /// Both ends run their own.
        ///
        /// ```
        /// # use netsock::{Events, Server, Socket};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// use netsock::Heartbeat;
        /// use std::time::Duration;
        /// let beat = Heartbeat::every(Duration::from_secs(5)).timeout(Duration::from_secs(5));
        /// let server = Server::<Api>::builder().heartbeat(beat);
        /// let client = Socket::<Api>::builder().heartbeat(beat);
        /// ```
        pub fn heartbeat(mut self, heartbeat: crate::config::Heartbeat) -> Self {
            self.config.heartbeat = heartbeat.beat;
            self
        }

        /// Turns the heartbeat off, as
        /// [`heartbeat(Heartbeat::OFF)`](crate::Heartbeat::OFF): a peer that
        /// goes silent is then only noticed when the OS reports the
        /// connection broken.
        ///
        /// ```
        /// # use netsock::{Events, Socket};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// let client = Socket::<Api>::builder().no_heartbeat();
        /// ```
        pub fn no_heartbeat(self) -> Self {
            self.heartbeat(crate::config::Heartbeat::OFF)
        }

        /// The default [`write_timeout`](Self::write_timeout): 30 s.
        ///
        /// ```
        /// # use netsock::{Events, ServerBuilder, SocketBuilder};
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// use std::time::Duration;
        /// assert_eq!(ServerBuilder::<Api>::DEFAULT_WRITE_TIMEOUT, Duration::from_secs(30));
        /// assert_eq!(SocketBuilder::<Api>::DEFAULT_WRITE_TIMEOUT, Duration::from_secs(30));
        /// ```
        pub const DEFAULT_WRITE_TIMEOUT: std::time::Duration =
            crate::config::defaults::WRITE_TIMEOUT;

        /// How long a write may wait for the peer to take any byte
        /// ([`DEFAULT_WRITE_TIMEOUT`](Self::DEFAULT_WRITE_TIMEOUT), 30 s).
        /// A peer that stops reading while this side has frames for
        /// it (a client that pipelines requests and never reads the
        /// replies, say) is dropped after that long with
        /// [`DisconnectReason::WriteTimeout`](crate::DisconnectReason::WriteTimeout),
        /// and everything its connection held is freed. It counts from the
        /// last byte the peer took, so a slow but moving peer is not cut.
        ///
        /// ```
        /// # use netsock::{Events, Server};
        /// # use std::time::Duration;
        /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
        /// let builder = Server::<Api>::builder().write_timeout(Duration::from_secs(5));
        /// ```
        pub fn write_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.config.write_timeout = timeout;
            self
        }
    };
}
pub(crate) use config_setters;
