//! The wire format: length-prefixed frames carrying postcard-encoded envelopes.
//!
//! # Framing
//!
//! Every frame is a 4-byte **big-endian** unsigned length `N`, then `N` bytes of
//! body. `N` never exceeds the receiver's maximum frame size (default
//! [`DEFAULT_MAX_FRAME_SIZE`], 8 MiB). Both sides announce theirs in the
//! handshake, and each sends at most the smaller of the peer's limit and its
//! own. After the handshake, a receiver that reads a larger length sends a
//! `Close(FrameTooLarge)` frame and closes the connection without reading the
//! body; an oversized *first* frame is taken for a stranger and answered
//! `Reject(BadMagic)`.
//!
//! # Body
//!
//! The body is a postcard-encoded [`Header`] (a varint kind tag, then the
//! kind's fields), followed, for the kinds that carry one, by the **payload**:
//! the postcard encoding of the user's value, running to the end of the frame.
//! Postcard encodes an enum as the varint variant index followed by its
//! fields, so an event payload starts with the variant index.
//!
//! | tag | kind         | fields (postcard)                                         | payload        |
//! |-----|--------------|-----------------------------------------------------------|----------------|
//! | 0   | `Hello`      | magic `[u8; 4]` = `NSCK`, version `u16`, sends `u64`, receives `u64`, max_frame `u32`, lenient `bool`, auth `Option<bytes>` | – |
//! | 1   | `Welcome`    | connection id `u64`, max_frame `u32`                       | –              |
//! | 2   | `Reject`     | [`RejectReason`]                                          | –              |
//! | 3   | `Event`      | –                                                         | the event enum |
//! | 4   | `Request`    | id `u64`, timeout_ms `u32` (0 = none)                     | the event enum |
//! | 5   | `Response`   | id `u64`                                                  | the reply value |
//! | 6   | `Failure`    | id `u64`, [`RemoteError`]                                 | –              |
//! | 7   | `Cancel`     | id `u64`                                                  | –              |
//! | 8   | `Ping`       | –                                                         | –              |
//! | 9   | `Pong`       | –                                                         | –              |
//! | 10  | `Close`      | [`CloseReason`]                                           | –              |
//! | 11  | `StreamItem` | id `u64`                                                  | the item value |
//! | 12  | `StreamEnd`  | id `u64`, error `Option<`[`RemoteError`]`>`                | –              |
//! | 13  | `Credit`     | id `u64`, items `u32`, bytes `u64`                        | –              |
//! | 14  | `Ack`        | received `u64`                                            | –              |
//! | 15  | `Volatile`   | –                                                         | the event enum |
//! | 16  | `UploadItem` | id `u64`                                                  | the item value |
//! | 17  | `UploadEnd`  | id `u64`, error `Option<`[`RemoteError`]`>`                | –              |
//! | 18  | `UploadCredit` | id `u64`, items `u32`, bytes `u64`                      | –              |
//!
//! Integers other than the length prefix and magic are postcard varints
//! (LEB128; `u16`/`u32`/`u64` as unsigned varints). `Option` is a `0`/`1` byte
//! then the value; bytes and strings are a varint length then the bytes. The
//! book's Wire protocol chapter has the encoding of every type a payload may
//! hold, the `auth` bytes, flow control and reply order, and test vectors as
//! JSON (`book/src/wire-vectors.json`).
//!
//! # Handshake
//!
//! The connecting side sends `Hello` as its first frame. `sends` and
//! `receives` are the [`SchemaId`]s of the event enums it
//! sends and receives. The server answers `Welcome` (then both sides may send
//! anything) or `Reject` (then closes). It rejects a wrong version, and
//! schemas that do not match its own (the client's `sends` must equal the
//! server's `receives` and vice versa) unless either side asked to be lenient.
//!
//! # Requests
//!
//! Request ids are chosen by the caller, unique among its pending requests.
//! The peer answers each `Request` with exactly one `Response` or `Failure`
//! carrying the same id; a `Cancel` tells it the caller gave up, and it then
//! stops the handler and sends nothing. `timeout_ms` tells the peer how long
//! the caller will wait; this implementation hands it to the handler
//! ([`deadline`](crate::deadline())) and leaves cancelling to the caller's
//! own timer, which sends the `Cancel`.
//!
//! # Streams
//!
//! A stream is a `Request` whose variant is declared as a stream (its
//! schema text has `=>` where a request's has `->`). The peer accepts it
//! with an empty `Response` (or refuses it with a `Failure`, as any
//! request), then sends `StreamItem` frames carrying the request's id, one
//! item each, and finally one `StreamEnd`: `None` when the stream is
//! complete, else why it failed. A `Cancel` from the caller, at any time,
//! stops the stream: nothing more is sent for it.
//!
//! **Credit.** The sender may send an item only while it holds credit for
//! at least one item and one byte. Each stream starts with
//! [`STREAM_WINDOW_ITEMS`] items and [`STREAM_WINDOW_BYTES`] bytes; each
//! item sent uses one item and its frame body's length in bytes (the byte
//! credit may go below zero by the last item's size); a `Credit` frame
//! from the receiver adds to both. This implementation widens the item
//! credit to [`RECEIVE_WINDOW_ITEMS`] as a stream opens (one `Credit` with
//! no bytes), then grants back what its consumer has read, each time that
//! reaches half the initial window, so a consumer that stops reading holds
//! the sender at the window. A receiver
//! that gets an item without credit ends that stream with an error and
//! sends `Cancel`. Items and credits for an id that has no open stream
//! (one that just ended or was cancelled) are ignored.
//!
//! **Uploads.** A request whose variant is declared with an upload (its
//! schema text has `<=` and the item type after its fields) carries a
//! stream the other way, from the caller to the handler, by the same rules
//! with the kinds `UploadItem`, `UploadEnd` and `UploadCredit`: right after
//! its `Request` the caller sends `UploadItem` frames carrying its own
//! request id, then one `UploadEnd` (`None`: complete; else why its source
//! failed); the handler's side grants credit with `UploadCredit`. The
//! caller stops sending once the request is answered (`Response`,
//! `Failure`, or, for a request that also answers with a stream, its
//! `StreamEnd`) or cancelled. A handler that stops reading the upload
//! early simply grants no more: items beyond what it read are dropped.
//! Both directions of one request (an upload and a stream answer) are
//! independent streams under their own credit.
//!
//! # Sessions
//!
//! A client may ask for a *recoverable session* by putting a
//! [`SessionAsk`] in the `Hello`'s payload (empty until now, and ignored
//! by servers that do not know sessions: they answer a plain `Welcome`, and
//! the connection goes on without one). A server that grants it puts a
//! [`SessionGrant`] in the `Welcome`'s payload: a secret token to resume
//! with, and how long it keeps the session after a cut. A peer that asks
//! for nothing pays nothing, and sees none of the frames below.
//!
//! On a session, each side counts the **numbered** frames it sends and
//! receives (see [`Header::is_numbered`]: events, requests, replies, stream
//! frames, cancels), from 1 for the session's first. The receiver sends
//! `Ack { received }`, its count so far, every 64 numbered frames and
//! 200 ms after a frame it has not acknowledged; the sender keeps each
//! numbered frame until an `Ack` covers it. A volatile event is sent as
//! `Volatile` instead of `Event`: not numbered, never sent again.
//!
//! After a cut, the client connects again and asks
//! `SessionAsk::Resume { token, received }`. The server answers
//! `Resumption::Resumed { received }`, the same connection id, and a new
//! token; then each side first sends again, in order, the numbered frames
//! after the count the other gave, then goes on. So, within the window,
//! every numbered frame arrives exactly once and in order. A session that
//! cannot be resumed is answered `Resumption::Lost(reason)` with a new
//! session and a new connection id: what was in flight is lost, and the
//! client says how much.
//!
//! # Closing
//!
//! The side that closes sends `Close(reason)` after the frames it had queued,
//! stops writing, and keeps reading (and delivering) what the peer still
//! sends for up to 2 s or until the peer hangs up. The side that receives
//! `Close` does not answer it: it stops and closes its end.
//!
//! Ids, the header layout, and every enum's variant order are part of protocol
//! version [`PROTOCOL_VERSION`]; new variants are only ever appended.
//!
//! # Example
//!
//! An event frame, byte by byte:
//!
//! ```
//! use netsock::frame::{self, Header};
//!
//! #[derive(serde::Serialize)]
//! enum Chat { Message(String) }
//!
//! let bytes = frame::encode(&Header::Event, Some(&Chat::Message("hi".into())), 1024)?;
//! assert_eq!(&bytes[..], &[
//!     0, 0, 0, 5, // length prefix (big-endian): 5 bytes of body
//!     3,          // header tag: Event
//!     0,          // payload: variant index 0 (Message)...
//!     2, b'h', b'i', // ...and its String field
//! ]);
//! # Ok::<(), netsock::Error>(())
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

use super::codec::CodecError;
use crate::events::SchemaId;

/// The magic bytes that open every `Hello`.
///
/// ```
/// assert_eq!(&netsock::frame::MAGIC, b"NSCK");
/// ```
pub const MAGIC: [u8; 4] = *b"NSCK";
/// The wire protocol version this crate speaks.
///
/// ```
/// assert_eq!(netsock::frame::PROTOCOL_VERSION, 1);
/// ```
pub const PROTOCOL_VERSION: u16 = 1;
/// Default maximum frame body size: 8 MiB.
///
/// ```
/// assert_eq!(netsock::frame::DEFAULT_MAX_FRAME_SIZE, 8 * 1024 * 1024);
/// ```
pub const DEFAULT_MAX_FRAME_SIZE: usize = 8 * 1024 * 1024;
/// The smallest maximum frame size a side may announce, so that error
/// replies always fit: a `Hello` announcing less is refused with
/// [`RejectReason::FrameLimitTooSmall`], and a smaller `max_frame_size`
/// setting is taken as this.
///
/// ```
/// assert_eq!(netsock::frame::MIN_MAX_FRAME_SIZE, 1024);
/// ```
pub const MIN_MAX_FRAME_SIZE: usize = 1024;
/// The credit in items each stream starts with: the sender may send this
/// many items before the receiver grants more (see *Streams* above).
///
/// ```
/// assert_eq!(netsock::frame::STREAM_WINDOW_ITEMS, 1024);
/// ```
pub const STREAM_WINDOW_ITEMS: u32 = 1024;
/// The credit in bytes (of item payloads) each stream starts with.
///
/// ```
/// assert_eq!(netsock::frame::STREAM_WINDOW_BYTES, 256 * 1024);
/// ```
pub const STREAM_WINDOW_BYTES: u64 = 256 * 1024;
/// How many items ahead of its reader netsock lets a stream's sender be:
/// as a stream opens, its receiver grants this less
/// [`STREAM_WINDOW_ITEMS`] more items of credit (no more bytes), then
/// grants back what is read. A policy of this implementation, not of the
/// protocol: a window of 1024 small items left the sender waiting for
/// credit a third of the time on a 2-CPU machine. The byte credit stays at
/// [`STREAM_WINDOW_BYTES`], which bounds the memory a stream holds.
///
/// ```
/// assert_eq!(netsock::frame::RECEIVE_WINDOW_ITEMS, 8192);
/// ```
pub const RECEIVE_WINDOW_ITEMS: u32 = 8192;
/// At most this much buffer is reserved ahead of bytes actually received.
const RESERVE_AHEAD: usize = 64 * 1024;

/// Room kept for each read on a busy connection.
const READ_CHUNK: usize = 8 * 1024;

/// Room kept for each read on a quiet one.
pub(crate) const READ_MIN: usize = 1024;

/// Whether `buf` starts with a whole frame.
pub(crate) fn has_frame(buf: &[u8]) -> bool {
    announced(buf).is_some_and(|len| buf.len() - PREFIX_LEN >= len)
}

/// The body of the whole frame at the start of `buf`, when one is there and
/// its body is at most `max` bytes: what [`FrameCodec`] would decode next,
/// without splitting it off the buffer.
pub(crate) fn peek_body(buf: &[u8], max: usize) -> Option<&[u8]> {
    let len = announced(buf).filter(|&len| len <= max)?;
    buf.get(PREFIX_LEN..PREFIX_LEN + len)
}

/// How many whole frames (bodies of at most `max` bytes) `buf` starts with,
/// and their bytes, length prefixes included.
pub(crate) fn whole_frames(mut buf: &[u8], max: usize) -> (u64, u64) {
    let (mut frames, mut bytes) = (0, 0);
    while let Some(body) = peek_body(buf, max) {
        let len = PREFIX_LEN + body.len();
        frames += 1;
        bytes += len as u64;
        buf = &buf[len..];
    }
    (frames, bytes)
}

/// The body length the prefix at the start of `buf` announces, once the
/// prefix is all there.
fn announced(buf: &[u8]) -> Option<usize> {
    let prefix = buf.get(..PREFIX_LEN)?;
    Some(u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize)
}

/// Size of the length prefix.
///
/// ```
/// use netsock::frame::{encode, Header, PREFIX_LEN};
/// let ping = encode(&Header::Ping, None::<&()>, 1024)?;
/// assert_eq!(ping.len(), PREFIX_LEN + 1); // the prefix, then the tag 8
/// # Ok::<(), netsock::Error>(())
/// ```
pub const PREFIX_LEN: usize = 4;

/// The envelope at the start of every frame body.
///
/// ```
/// use netsock::frame::{decode, encode, Header};
/// let header = Header::Request { id: 7, timeout_ms: 500 };
/// let frame = encode(&header, Some(&"payload"), 1024)?;
/// // Body: tag 4, id 7, timeout 500 as a varint (244, 3), then the payload.
/// assert_eq!(&frame[4..8], &[4, 7, 244, 3]);
/// let (decoded, payload) = decode(&frame.slice(4..))?;
/// assert_eq!(decoded, header);
/// assert_eq!(postcard::from_bytes::<&str>(&payload).unwrap(), "payload");
/// # Ok::<(), netsock::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Header {
    /// First frame from the connecting side.
    Hello(Hello),
    /// The server accepts the connection.
    Welcome {
        /// The connection's id on the server.
        id: u64,
        /// The server's maximum frame size.
        max_frame: u32,
    },
    /// The server refuses the connection.
    Reject(RejectReason),
    /// A one-way event; the payload is the event.
    Event,
    /// A request; the payload is the event (a request variant).
    Request {
        /// Caller-chosen id.
        id: u64,
        /// How long the caller will wait, in milliseconds (0: no deadline).
        timeout_ms: u32,
    },
    /// A successful reply; the payload is the reply value.
    Response {
        /// The request's id.
        id: u64,
    },
    /// A failed request.
    Failure {
        /// The request's id.
        id: u64,
        /// What went wrong.
        error: RemoteError,
    },
    /// The caller gave up on a request.
    Cancel {
        /// The request's id.
        id: u64,
    },
    /// Liveness probe.
    Ping,
    /// Answer to `Ping`.
    Pong,
    /// The sender is closing the connection.
    Close(CloseReason),
    /// One item of a stream; the payload is the item.
    StreamItem {
        /// The stream request's id.
        id: u64,
    },
    /// The stream ended: complete (`None`) or failed.
    StreamEnd {
        /// The stream request's id.
        id: u64,
        /// Why the stream failed, if it did.
        error: Option<RemoteError>,
    },
    /// The receiver of a stream lets its sender send more.
    Credit {
        /// The stream request's id.
        id: u64,
        /// How many more items the sender may send.
        items: u32,
        /// How many more bytes of item payload the sender may send.
        bytes: u64,
    },
    /// On a recoverable session: how many numbered frames the sender has
    /// received from the peer since the session began (see *Sessions*).
    Ack {
        /// Numbered frames received, in all.
        received: u64,
    },
    /// On a recoverable session: a one-way event the sender will not send
    /// again after a cut (a volatile emit); the payload is the event. Not
    /// numbered.
    Volatile,
    /// One item of the stream a request carries (an upload), from its
    /// caller; the payload is the item.
    UploadItem {
        /// The caller's request id.
        id: u64,
    },
    /// The caller's upload ended: complete (`None`) or its source failed.
    UploadEnd {
        /// The caller's request id.
        id: u64,
        /// Why the upload failed, if it did.
        error: Option<RemoteError>,
    },
    /// The handler's side lets the caller send more upload items.
    UploadCredit {
        /// The caller's request id.
        id: u64,
        /// How many more items the caller may send.
        items: u32,
        /// How many more bytes of item payload the caller may send.
        bytes: u64,
    },
}

impl Header {
    /// Whether this kind is *numbered* on a recoverable session: counted by
    /// both sides, kept by the sender until acknowledged, and sent again
    /// after a cut. Everything but the handshake, `Ping`, `Pong`, `Close`,
    /// `Ack` and `Volatile`: streams' items, ends and credits included, so
    /// that a stream resumes with its session.
    ///
    /// ```
    /// use netsock::frame::Header;
    /// assert!(Header::Event.is_numbered());
    /// assert!(!Header::Ping.is_numbered());
    /// assert!(!Header::Volatile.is_numbered());
    /// ```
    pub fn is_numbered(&self) -> bool {
        matches!(
            self,
            Header::Event
                | Header::Request { .. }
                | Header::Response { .. }
                | Header::Failure { .. }
                | Header::Cancel { .. }
                | Header::StreamItem { .. }
                | Header::StreamEnd { .. }
                | Header::Credit { .. }
                | Header::UploadItem { .. }
                | Header::UploadEnd { .. }
                | Header::UploadCredit { .. }
        )
    }
}

/// Whether the frame kind with this tag is numbered (see
/// [`Header::is_numbered`]), from the first body byte of an encoded frame
/// (every tag is below 128, so one varint byte).
pub(crate) fn numbered_tag(tag: u8) -> bool {
    matches!(tag, 3..=7 | 11..=13 | 16..=18)
}

/// The tag of [`Header::Event`] and of [`Header::Volatile`], the one body
/// byte in which the two frames of the same event differ.
pub(crate) const EVENT_TAG: u8 = 3;
pub(crate) const VOLATILE_TAG: u8 = 15;
/// The tag of [`Header::StreamItem`], the frame a stream sends most.
pub(crate) const STREAM_ITEM_TAG: u8 = 11;

/// A recoverable session's secret: 16 random bytes the server gives the
/// client in the `Welcome`, which the client shows to resume the session
/// after a cut. A new one comes with every `Welcome`; the one before it is
/// then worthless.
///
/// ```
/// use netsock::frame::SessionToken;
/// let token = SessionToken([7; 16]);
/// assert_eq!(postcard::to_stdvec(&token).unwrap().len(), 16); // no length prefix
/// assert_eq!(format!("{token:?}"), "SessionToken(..)"); // never logged
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionToken(pub [u8; 16]);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

/// What a client asks for in the payload of its `Hello` (a peer that
/// sends no payload asks for nothing, and gets no session).
///
/// ```
/// use netsock::frame::{SessionAsk, SessionToken};
/// assert_eq!(postcard::to_stdvec(&SessionAsk::New).unwrap(), [0]);
/// let resume = SessionAsk::Resume { token: SessionToken([1; 16]), received: 300 };
/// assert_eq!(postcard::to_stdvec(&resume).unwrap()[17..], [172, 2]); // 300 as a varint
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SessionAsk {
    /// A new recoverable session.
    New,
    /// Resume the session `token` names, of which `received` numbered
    /// frames had arrived here.
    Resume {
        /// The token of the last `Welcome`.
        token: SessionToken,
        /// Numbered frames this side received from the server.
        received: u64,
    },
}

/// The server's answer to a [`SessionAsk`], in the payload of its
/// `Welcome`.
///
/// ```
/// use netsock::frame::{Resumption, SessionGrant, SessionToken};
/// let grant = SessionGrant {
///     token: SessionToken([2; 16]),
///     window_ms: 120_000,
///     resumption: Resumption::Resumed { received: 5 },
/// };
/// let bytes = postcard::to_stdvec(&grant).unwrap();
/// assert_eq!(bytes[16..], [192, 169, 7, 1, 5]); // window, then Resumed (1) and 5
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionGrant {
    /// The token to resume with after the next cut.
    pub token: SessionToken,
    /// How long the server keeps the session after a cut, in milliseconds.
    pub window_ms: u64,
    /// Whether the session asked for was resumed.
    pub resumption: Resumption,
}

/// Whether a session was resumed: part of a [`SessionGrant`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Resumption {
    /// A new session, as asked.
    New,
    /// The session resumed: the server had received `received` numbered
    /// frames of it. Both sides now send again, in order, what the other
    /// did not receive.
    Resumed {
        /// Numbered frames the server received from the client.
        received: u64,
    },
    /// The session could not be resumed; this is a new one.
    Lost(LostReason),
}

/// Why a session could not be resumed.
///
/// ```
/// use netsock::frame::LostReason;
/// assert_eq!(
///     LostReason::Unknown.to_string(),
///     "the server does not know the session (it restarted, or the session expired)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum LostReason {
    /// No session has this token: it expired, the server restarted, or
    /// the token is not (or no longer) valid.
    #[error("the server does not know the session (it restarted, or the session expired)")]
    Unknown,
    /// The token was shown with other credentials (`auth`) than the
    /// session was opened with.
    #[error("the session belongs to another client")]
    NotYours,
    /// One side had dropped frames the other had not received, to stay
    /// within its replay bounds.
    #[error("frames the other side had not received were no longer kept")]
    Overflowed,
    /// The session ended before the client came back (its window passed):
    /// the server had received `received` numbered frames of it, and sent
    /// `sent`.
    #[error("the session ended before it was resumed (its window passed)")]
    Expired {
        /// Numbered frames the server received from the client.
        received: u64,
        /// Numbered frames the server sent.
        sent: u64,
    },
}

/// The handshake opening a connection.
///
/// ```
/// use netsock::frame::{encode, Header, Hello, MAGIC, PROTOCOL_VERSION};
/// use netsock::SchemaId;
///
/// let hello = Hello {
///     magic: MAGIC,
///     version: PROTOCOL_VERSION,
///     sends: SchemaId::of("A{}"),
///     receives: SchemaId::of("B{}"),
///     max_frame: 1024,
///     lenient: false,
///     auth: None,
/// };
/// let frame = encode(&Header::Hello(hello), None::<&()>, 1024)?;
/// assert_eq!(&frame[4..9], b"\0NSCK"); // tag 0, then the magic as is
/// # Ok::<(), netsock::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u16,
    /// Schema of the enum the sender sends.
    pub sends: SchemaId,
    /// Schema of the enum the sender receives.
    pub receives: SchemaId,
    /// The sender's maximum incoming frame size.
    pub max_frame: u32,
    /// Whether the sender accepts a schema mismatch.
    pub lenient: bool,
    /// Optional authentication bytes for the server.
    pub auth: Option<Vec<u8>>,
}

/// Why a server refused a connection.
///
/// ```
/// use netsock::RejectReason;
/// let reason = RejectReason::Refused("a valid token is required".into());
/// assert_eq!(reason.to_string(), "refused: a valid token is required");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The first frame was not a netsock `Hello`.
    #[error("the first frame is not a netsock handshake")]
    BadMagic,
    /// Different protocol versions.
    #[error("the server speaks protocol version {server}, the client {client}")]
    VersionMismatch {
        /// Server's version.
        server: u16,
        /// Client's version.
        client: u16,
    },
    /// Different event enums.
    #[error("schema mismatch")]
    SchemaMismatch {
        /// The server's (sends, receives).
        server: (SchemaId, SchemaId),
        /// The client's (sends, receives).
        client: (SchemaId, SchemaId),
    },
    /// Any other reason, in words.
    #[error("{0}")]
    Other(String),
    /// The server's connection middleware refused the client, saying why.
    #[error("refused: {0}")]
    Refused(String),
    /// No whole `Hello` arrived within the server's handshake timeout.
    #[error("no handshake within {after_ms} ms")]
    HandshakeTimeout {
        /// The server's handshake timeout, in milliseconds.
        after_ms: u64,
    },
    /// The `Hello` announced a frame limit below the protocol's minimum.
    #[error(
        "the client's frame limit of {max_frame} bytes is below the protocol minimum of {min}"
    )]
    FrameLimitTooSmall {
        /// The limit the client announced.
        max_frame: u32,
        /// The smallest limit a peer may announce.
        min: u32,
    },
    /// Different event enums, with the server's schema texts, so that the
    /// client can say which variants differ. Sent instead of
    /// `SchemaMismatch` when it fits the client's frame limit.
    #[error("schema mismatch")]
    SchemaDiffers {
        /// The server's (sends, receives).
        server: (SchemaId, SchemaId),
        /// The client's (sends, receives).
        client: (SchemaId, SchemaId),
        /// The server's schema texts, (sends, receives).
        server_schema: (String, String),
    },
}

/// Why a request failed on the peer, as sent in a `Failure` frame.
///
/// ```
/// use netsock::frame::RemoteError;
/// use netsock::CallError;
///
/// // The caller sees a `Failure` as the matching `CallError`.
/// let err = CallError::from(RemoteError::NoHandler { event: "Sum".into() });
/// assert_eq!(err, CallError::NoHandler { event: "Sum".into() });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RemoteError {
    /// No handler for this request variant.
    NoHandler {
        /// Variant name.
        event: String,
    },
    /// The variant is an event, not a request.
    NotARequest {
        /// Variant name.
        event: String,
    },
    /// The handler panicked.
    HandlerPanicked {
        /// Panic message.
        message: String,
    },
    /// The request payload could not be decoded.
    BadRequest {
        /// Decoder error.
        message: String,
    },
    /// The reply is over the caller's frame limit.
    ResponseTooLarge {
        /// Reply size.
        size: u64,
        /// Caller's limit.
        max: u64,
    },
    /// The reply could not be encoded.
    Encode {
        /// Encoder error.
        message: String,
    },
    /// A stream's handler failed (its stream gave an `Err`), saying why.
    HandlerFailed {
        /// The error, in words.
        message: String,
    },
    /// The peer broke a stream's rules (an item without credit).
    StreamProtocol {
        /// What went wrong.
        message: String,
    },
}

/// Why a peer closed the connection, as sent in a `Close` frame.
///
/// ```
/// use netsock::CloseReason;
/// assert_eq!(CloseReason::Normal.to_string(), "closed normally");
/// let shutdown = CloseReason::Shutdown("the server closed".into());
/// assert_eq!(shutdown.to_string(), "server shutting down: the server closed");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// An orderly close.
    #[error("closed normally")]
    Normal,
    /// We sent a frame over its limit.
    #[error("a frame of {size} bytes exceeded the peer's limit of {max} bytes")]
    FrameTooLarge {
        /// Frame size.
        size: u64,
        /// The peer's limit.
        max: u64,
    },
    /// We broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server is shutting down.
    #[error("server shutting down: {0}")]
    Shutdown(String),
    /// The application closed the connection, e.g. its connection handler
    /// failed.
    #[error("closed by the application: {0}")]
    Application(String),
}

/// Why a frame could not be made or read. It converts into
/// [`netsock::Error`](crate::Error) (`TooLarge` as `FrameTooLarge`,
/// `Header` as `Protocol`), so `?` works in functions returning
/// [`netsock::Result`](crate::Result).
///
/// ```
/// use netsock::frame::{encode, FrameError, Header};
/// let err = encode(&Header::Event, Some(&"x".repeat(100)), 50).unwrap_err();
/// assert!(matches!(err, FrameError::TooLarge { size: 102, max: 50 }));
/// assert!(matches!(netsock::Error::from(err), netsock::Error::FrameTooLarge { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame's body is over the limit.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes (see max_frame_size)")]
    TooLarge {
        /// Size of the frame body in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A header or payload could not be serialized.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: CodecError,
    },
    /// The frame's header could not be decoded.
    #[error("undecodable frame header: {0}")]
    Header(String),
    /// Reading or writing the stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended in the middle of a frame: the peer (or the network
    /// between) cut the connection while a frame was on its way.
    #[error(
        "the stream ended in the middle of a frame: {received} of its {expected} bytes had arrived"
    )]
    Truncated {
        /// Bytes of the frame (length prefix included) that arrived.
        received: usize,
        /// Bytes the frame would have had (just the 4-byte prefix when the
        /// cut fell inside it).
        expected: usize,
    },
}

/// Encodes and decodes length-prefixed frames.
///
/// The decoder yields frame bodies as [`Bytes`] (no copy) and fails with
/// [`FrameError::TooLarge`] as soon as it reads an oversized length, before
/// buffering the body. The encoder writes frames built by [`encode`], which
/// already carry their prefix, into the write buffer, so that many frames go
/// out in one write.
///
/// ```
/// use bytes::BytesMut;
/// use netsock::frame::{encode, FrameCodec, Header};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = FrameCodec::new(1024);
/// let frame = encode(&Header::Ping, None::<&()>, 1024)?;
/// let mut wire = BytesMut::new();
/// codec.encode(frame, &mut wire)?;
/// assert_eq!(&wire[..], &[0, 0, 0, 1, 8]);
/// let body = codec.decode(&mut wire)?.unwrap();
/// assert_eq!(netsock::frame::decode(&body)?.0, Header::Ping);
/// # Ok::<(), netsock::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FrameCodec {
    max: usize,
    /// Set once a read filled the buffer: from then on the decoder keeps
    /// room for a sizeable read. Idle connections keep their small buffer.
    busy: bool,
    /// The buffer ran out of whole frames: the next one comes from a new
    /// read.
    drained: bool,
}

impl FrameCodec {
    /// A codec that accepts frame bodies of at most `max` bytes.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use netsock::frame::FrameCodec;
    /// use tokio_util::codec::Decoder;
    ///
    /// let mut codec = FrameCodec::new(16);
    /// let mut wire = BytesMut::from(&[0u8, 0, 0, 17][..]); // announces 17 bytes
    /// assert!(matches!(codec.decode(&mut wire), Err(netsock::frame::FrameError::TooLarge { size: 17, max: 16 })));
    /// ```
    pub fn new(max: usize) -> Self {
        FrameCodec {
            max,
            busy: false,
            drained: true,
        }
    }

    /// Whether the frame just decoded is the first of a new read (and
    /// clears that): the reader reads the clock once per read, not per
    /// frame.
    pub(crate) fn fresh_read(&mut self) -> bool {
        std::mem::take(&mut self.drained)
    }

    /// Accepts frame bodies of at most `max` bytes from now on.
    pub(crate) fn set_max_frame_size(&mut self, max: usize) {
        self.max = max;
    }

    /// The largest frame body this codec accepts.
    ///
    /// ```
    /// let codec = netsock::frame::FrameCodec::new(4096);
    /// assert_eq!(codec.max_frame_size(), 4096);
    /// ```
    pub fn max_frame_size(&self) -> usize {
        self.max
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if !self.busy && !src.is_empty() && src.len() == src.capacity() {
            self.busy = true;
        }
        // Room for the next read: a message in one read when idle, many
        // when busy. (With less, a frame arriving alone can take two reads.)
        let room = if self.busy { READ_CHUNK } else { READ_MIN };
        if src.capacity() - src.len() < room / 2 {
            src.reserve(room);
        }
        let Some(len) = announced(src) else {
            self.drained = true;
            return Ok(None);
        };
        if len > self.max {
            return Err(FrameError::TooLarge {
                size: len,
                max: self.max,
            });
        }
        if src.len() < PREFIX_LEN + len {
            // Grow toward the frame as its bytes arrive, not on the peer's
            // word: a length alone must not make us allocate 8 MiB.
            src.reserve((PREFIX_LEN + len - src.len()).min(RESERVE_AHEAD));
            self.drained = true;
            return Ok(None);
        }
        src.advance(PREFIX_LEN);
        Ok(Some(src.split_to(len).freeze()))
    }

    /// At the end of the stream, a partial frame is
    /// [`FrameError::Truncated`] (tokio-util's default would be a bare
    /// "bytes remaining on stream").
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                received: src.len(),
                expected: announced(src).map_or(PREFIX_LEN, |len| PREFIX_LEN + len),
            }),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        let body = frame.len().saturating_sub(PREFIX_LEN);
        if body > self.max {
            return Err(FrameError::TooLarge {
                size: body,
                max: self.max,
            });
        }
        dst.extend_from_slice(&frame);
        Ok(())
    }
}

/// A postcard flavor that appends to a `BytesMut`, so payloads are encoded
/// straight into the frame buffer. Inlined into the serializer: postcard
/// pushes most values a byte or a varint at a time.
struct Append<'a>(&'a mut BytesMut);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() <= 10 {
            // A varint, mostly: byte by byte beats a call to `memcpy`.
            self.0.reserve(data.len());
            for &byte in data {
                self.0.put_u8(byte);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.put_u8(data);
        Ok(())
    }

    #[inline]
    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Builds one complete frame (prefix, header, payload) in a single buffer.
///
/// Fails with [`FrameError::TooLarge`] when the body would exceed `max`, and
/// with [`FrameError::Encode`] when the payload cannot be serialized.
/// [`encode_into`] appends the frame to a buffer of the caller's instead,
/// without allocating.
///
/// ```
/// use netsock::frame::{encode, FrameError, Header};
///
/// let frame = encode(&Header::Event, Some(&"hi"), 1024)?;
/// assert_eq!(&frame[..], &[0, 0, 0, 4, 3, 2, b'h', b'i']);
/// let err = encode(&Header::Event, Some(&"x".repeat(100)), 50).unwrap_err();
/// assert!(matches!(err, FrameError::TooLarge { max: 50, .. }));
/// # Ok::<(), netsock::Error>(())
/// ```
pub fn encode<T: Serialize + ?Sized>(
    header: &Header,
    payload: Option<&T>,
    max: usize,
) -> Result<Bytes, FrameError> {
    with_scratch(|buf| {
        encode_into(buf, header, payload, max)?;
        Ok(Bytes::copy_from_slice(buf))
    })
}

/// Appends one complete frame (prefix, header, payload) to `dst`, and
/// gives its length: many frames can be built into one reused buffer (a
/// write buffer, say) with no allocation of their own.
///
/// Fails as [`encode`] does; `dst` is then left as it was, and so it is if
/// the payload's `Serialize` panics.
///
/// ```
/// use bytes::BytesMut;
/// use netsock::frame::{encode, encode_into, Header};
///
/// let mut wire = BytesMut::new();
/// for id in 0..3 {
///     let header = Header::Request { id, timeout_ms: 0 };
///     let len = encode_into(&mut wire, &header, Some(&"sum"), 1024)?;
///     assert_eq!(len, encode(&header, Some(&"sum"), 1024)?.len());
/// }
/// assert_eq!(wire.len(), 3 * 11);
/// // Too large: nothing is appended.
/// assert!(encode_into(&mut wire, &Header::Event, Some(&"x".repeat(100)), 50).is_err());
/// assert_eq!(wire.len(), 3 * 11);
/// # Ok::<(), netsock::Error>(())
/// ```
pub fn encode_into<T: Serialize + ?Sized>(
    dst: &mut BytesMut,
    header: &Header,
    payload: Option<&T>,
    max: usize,
) -> Result<usize, FrameError> {
    let frame = Open::start(dst, header)?;
    if let Some(payload) = payload {
        postcard::serialize_with_flavor(payload, Append(&mut *frame.buf)).map_err(|source| {
            FrameError::Encode {
                what: "the payload",
                source: CodecError::new(source),
            }
        })?;
    }
    frame.finish(max)
}

/// Builds one frame from a header and a payload encoded earlier (with
/// `postcard`), e.g. once for many recipients.
///
/// ```
/// use netsock::frame::{encode, encode_with_payload, Header};
///
/// let payload = postcard::to_stdvec(&"hi").unwrap(); // encoded once...
/// let frame = encode_with_payload(&Header::Event, &payload, 1024)?; // ...framed for each
/// assert_eq!(frame, encode(&Header::Event, Some(&"hi"), 1024)?);
/// # Ok::<(), netsock::Error>(())
/// ```
pub fn encode_with_payload(
    header: &Header,
    payload: &[u8],
    max: usize,
) -> Result<Bytes, FrameError> {
    with_scratch(|buf| {
        let frame = Open::start(buf, header)?;
        frame.buf.extend_from_slice(payload);
        frame.finish(max)?;
        Ok(Bytes::copy_from_slice(buf))
    })
}

/// Runs `f` with an empty buffer, this thread's own when it is free, so
/// that building a frame allocates only the frame it gives.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut BytesMut) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
    }
    /// A scratch buffer grown past this is dropped after use, so that one
    /// large frame does not pin its memory for the life of the thread.
    const KEEP: usize = 64 * 1024;
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let out = f(&mut buf);
            if buf.capacity() > KEEP {
                *buf = BytesMut::new();
            }
            out
        }
        // In use further up this thread's stack (a payload's `Serialize`
        // building a frame of its own).
        Err(_) => f(&mut BytesMut::with_capacity(64)),
    })
}

/// A frame being appended to a buffer: a placeholder prefix and the
/// encoded header so far. Dropped unfinished (an error, a panicking
/// payload), it takes its bytes back out of the buffer.
struct Open<'a> {
    buf: &'a mut BytesMut,
    at: usize,
    done: bool,
}

impl<'a> Open<'a> {
    fn start(buf: &'a mut BytesMut, header: &Header) -> Result<Self, FrameError> {
        let at = buf.len();
        if let Header::Event = header {
            // The placeholder prefix and the tag, the most frequent frame's.
            buf.extend_from_slice(&[0, 0, 0, 0, EVENT_TAG]);
            return Ok(Open {
                buf,
                at,
                done: false,
            });
        }
        // The placeholder prefix, and the header when it is written by hand:
        // one copy into the buffer.
        let mut head = [0; PREFIX_LEN + MAX_HAND_HEADER];
        let written = put_header(&mut head[PREFIX_LEN..], header);
        buf.extend_from_slice(&head[..PREFIX_LEN + written.unwrap_or(0)]);
        let frame = Open {
            buf,
            at,
            done: false,
        };
        if written.is_none() {
            postcard::serialize_with_flavor(header, Append(&mut *frame.buf)).map_err(|source| {
                FrameError::Encode {
                    what: "a frame header",
                    source: CodecError::new(source),
                }
            })?;
        }
        Ok(frame)
    }

    /// Checks the size and writes the prefix; gives the frame's length.
    fn finish(mut self, max: usize) -> Result<usize, FrameError> {
        let len = self.buf.len() - self.at;
        let size = len - PREFIX_LEN;
        if size > max {
            return Err(FrameError::TooLarge { size, max });
        }
        // `size <= max`, and every limit is a `u32` on the wire.
        let prefix = u32::try_from(size).map_err(|_| FrameError::TooLarge { size, max })?;
        self.buf[self.at..self.at + PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
        self.done = true;
        Ok(len)
    }
}

/// The longest header [`put_header`] writes: a tag and two varints.
const MAX_HAND_HEADER: usize = 1 + 2 * 10;

/// Writes the headers of the frames sent most (an event, a request and
/// its reply, a stream's item...) into `out` (room for
/// [`MAX_HAND_HEADER`] bytes) as postcard would, without
/// going through serde: a tag, then varints. Gives their length; `None`
/// for the other kinds, which serde writes.
fn put_header(out: &mut [u8], header: &Header) -> Option<usize> {
    let (tag, fields): (u8, [Option<u64>; 2]) = match header {
        Header::Event => (EVENT_TAG, [None, None]),
        Header::Volatile => (VOLATILE_TAG, [None, None]),
        Header::Request { id, timeout_ms } => (4, [Some(*id), Some(u64::from(*timeout_ms))]),
        Header::Response { id } => (5, [Some(*id), None]),
        Header::Cancel { id } => (7, [Some(*id), None]),
        Header::Ping => (8, [None, None]),
        Header::Pong => (9, [None, None]),
        Header::StreamItem { id } => (STREAM_ITEM_TAG, [Some(*id), None]),
        Header::Ack { received } => (14, [Some(*received), None]),
        _ => return None,
    };
    out[0] = tag;
    let mut len = 1;
    for mut value in fields.into_iter().flatten() {
        while value >= 0x80 {
            out[len] = value as u8 | 0x80;
            value >>= 7;
            len += 1;
        }
        out[len] = value as u8;
        len += 1;
    }
    Some(len)
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.buf.truncate(self.at);
        }
    }
}

/// Builds a frame that carries no payload (a `Failure`, `Close`, `Reject`,
/// ...) within `max`, shortening its text (an error message, a reason) when
/// it would not fit: the peer never gets a frame over the limit it
/// announced, error frames included.
pub(crate) fn encode_control(mut header: Header, max: usize) -> Result<Bytes, FrameError> {
    loop {
        match encode(&header, None::<&()>, max) {
            Err(FrameError::TooLarge { size, max }) => {
                let Some(text) = header.text_mut().filter(|t| !t.is_empty()) else {
                    return Err(FrameError::TooLarge { size, max });
                };
                // Cut the excess and room for the ellipsis, at a char boundary.
                let mut keep = text.len().saturating_sub(size - max + '…'.len_utf8());
                while !text.is_char_boundary(keep) {
                    keep -= 1;
                }
                text.truncate(keep);
                if keep > 0 {
                    text.push('…');
                }
            }
            done => return done,
        }
    }
}

impl Header {
    /// The free text this header carries, if any.
    fn text_mut(&mut self) -> Option<&mut String> {
        match self {
            Header::Failure { error, .. }
            | Header::StreamEnd {
                error: Some(error), ..
            }
            | Header::UploadEnd {
                error: Some(error), ..
            } => match error {
                RemoteError::NoHandler { event } | RemoteError::NotARequest { event } => {
                    Some(event)
                }
                RemoteError::HandlerPanicked { message }
                | RemoteError::BadRequest { message }
                | RemoteError::Encode { message }
                | RemoteError::HandlerFailed { message }
                | RemoteError::StreamProtocol { message } => Some(message),
                RemoteError::ResponseTooLarge { .. } => None,
            },
            Header::Close(
                CloseReason::Protocol(text)
                | CloseReason::Shutdown(text)
                | CloseReason::Application(text),
            )
            | Header::Reject(RejectReason::Other(text) | RejectReason::Refused(text)) => Some(text),
            _ => None,
        }
    }
}

/// Splits a frame body into its header and payload (a zero-copy slice).
///
/// ```
/// use netsock::frame::{decode, encode, Header};
///
/// let frame = encode(&Header::Response { id: 3 }, Some(&42i64), 1024)?;
/// let body = frame.slice(netsock::frame::PREFIX_LEN..);
/// let (header, payload) = decode(&body)?;
/// assert_eq!(header, Header::Response { id: 3 });
/// assert_eq!(postcard::from_bytes::<i64>(&payload).unwrap(), 42);
/// # Ok::<(), netsock::Error>(())
/// ```
pub fn decode(body: &Bytes) -> Result<(Header, Bytes), FrameError> {
    if let Some((header, len)) = take_header(body) {
        return Ok((header, body.slice(len..)));
    }
    let (header, rest) =
        postcard::take_from_bytes::<Header>(body).map_err(|e| FrameError::Header(e.to_string()))?;
    let payload = body.slice(body.len() - rest.len()..);
    Ok((header, payload))
}

/// [`decode`], taking the body: the payload is the body's own bytes (no
/// new reference to count).
#[inline]
pub(crate) fn decode_body(mut body: Bytes) -> Result<(Header, Bytes), FrameError> {
    if body.first() == Some(&EVENT_TAG) {
        // The most frequent frame, a tag alone.
        body.advance(1);
        return Ok((Header::Event, body));
    }
    let (header, len) = match take_header(&body) {
        Some(read) => read,
        None => {
            let (header, rest) = postcard::take_from_bytes::<Header>(&body)
                .map_err(|e| FrameError::Header(e.to_string()))?;
            (header, body.len() - rest.len())
        }
    };
    body.advance(len);
    Ok((header, body))
}

/// Reads the headers [`put_header`] writes by hand, as postcard would,
/// without going through serde; gives the header and its length. `None`
/// for anything else (other kinds, and whatever postcard would refuse),
/// which postcard then reads.
fn take_header(body: &[u8]) -> Option<(Header, usize)> {
    let u64 = |at: &mut usize| varint(body, at, 10, 0x01);
    let u32 = |at: &mut usize| varint(body, at, 5, 0x0f).map(|v| v as u32);
    let mut at = 1;
    let header = match *body.first()? {
        EVENT_TAG => Header::Event,
        VOLATILE_TAG => Header::Volatile,
        4 => Header::Request {
            id: u64(&mut at)?,
            timeout_ms: u32(&mut at)?,
        },
        5 => Header::Response { id: u64(&mut at)? },
        7 => Header::Cancel { id: u64(&mut at)? },
        8 => Header::Ping,
        9 => Header::Pong,
        STREAM_ITEM_TAG => Header::StreamItem { id: u64(&mut at)? },
        14 => Header::Ack {
            received: u64(&mut at)?,
        },
        _ => return None,
    };
    Some((header, at))
}

/// A postcard varint of at most `max_len` bytes whose last byte is at most
/// `last_max`, from `at` on.
fn varint(body: &[u8], at: &mut usize, max_len: usize, last_max: u8) -> Option<u64> {
    let mut value = 0;
    for i in 0..max_len {
        let byte = *body.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (i + 1 < max_len || byte <= last_max).then_some(value);
        }
    }
    None
}

/// The stream id of a `StreamItem` frame's body and the length of its
/// header, read as [`decode_body`] reads them; `None` for other frames.
pub(crate) fn stream_item_head(body: &[u8]) -> Option<(u64, usize)> {
    if body.first() != Some(&STREAM_ITEM_TAG) {
        return None;
    }
    let mut at = 1;
    let id = varint(body, &mut at, 10, 0x01)?;
    Some((id, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_frame_needs_the_whole_body() {
        assert!(!has_frame(&[]));
        assert!(!has_frame(&[0, 0, 0]));
        assert!(has_frame(&[0, 0, 0, 0]));
        assert!(!has_frame(&[0, 0, 0, 2, 9]));
        assert!(has_frame(&[0, 0, 0, 2, 9, 9, 1]));
        // A huge promised length is not a frame yet.
        assert!(!has_frame(&[255, 255, 255, 255, 1, 2, 3]));
    }

    /// `peek_body` sees what the decoder would give next, within the
    /// limit; `whole_frames` counts the frames a buffer starts with,
    /// stopping at a partial or oversized one.
    #[test]
    fn whole_frames_are_counted_up_to_a_partial_or_oversized_one() {
        assert_eq!(peek_body(&[0, 0, 0, 2, 9, 8, 7], 16), Some(&[9, 8][..]));
        assert_eq!(peek_body(&[0, 0, 0, 2, 9], 16), None);
        assert_eq!(peek_body(&[0, 0, 0, 2, 9, 8], 1), None);
        let mut buf = vec![0, 0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3];
        assert_eq!(whole_frames(&buf, 16), (3, 16));
        assert_eq!(whole_frames(&buf, 2), (2, 9));
        buf.extend_from_slice(&[0, 0, 0, 5, 1]);
        assert_eq!(whole_frames(&buf, 16), (3, 16));
        assert_eq!(whole_frames(&[], 16), (0, 0));
    }

    /// `stream_item_head` reads a `StreamItem`'s id and header length as
    /// the decoder does, and nothing from other or broken bodies.
    #[test]
    fn stream_item_heads_read_as_the_decoder_reads_them() {
        for id in [0, 1, 127, 128, 300, u64::MAX] {
            let frame = encode(&Header::StreamItem { id }, Some(&7u8), 1024).unwrap();
            let body = frame.slice(PREFIX_LEN..);
            let (header, payload) = decode(&body).unwrap();
            assert_eq!(header, Header::StreamItem { id });
            assert_eq!(
                stream_item_head(&body),
                Some((id, body.len() - payload.len()))
            );
        }
        assert_eq!(stream_item_head(&[]), None);
        assert_eq!(stream_item_head(&[EVENT_TAG, 1]), None);
        assert_eq!(stream_item_head(&[STREAM_ITEM_TAG]), None);
        assert_eq!(stream_item_head(&[STREAM_ITEM_TAG, 0x80]), None);
        assert_eq!(
            stream_item_head(&[
                STREAM_ITEM_TAG,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0x02
            ]),
            None
        );
    }

    #[test]
    fn round_trips_header_and_payload() {
        let frame = encode(
            &Header::Request {
                id: 7,
                timeout_ms: 100,
            },
            Some(&vec![1i64, 2]),
            64,
        )
        .unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        let body = FrameCodec::new(64).decode(&mut buf).unwrap().unwrap();
        let (header, payload) = decode(&body).unwrap();
        assert_eq!(
            header,
            Header::Request {
                id: 7,
                timeout_ms: 100
            }
        );
        assert_eq!(
            postcard::from_bytes::<Vec<i64>>(&payload).unwrap(),
            vec![1, 2]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_oversized_both_ways() {
        let err = encode(&Header::Event, Some(&vec![0u8; 100]), 50).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { size: 102, max: 50 }),
            "{err}"
        );
        let mut buf = BytesMut::from(&[0u8, 0, 1, 0][..]);
        let err = FrameCodec::new(255).decode(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::TooLarge {
                    size: 256,
                    max: 255
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn waits_for_truncated_frames() {
        let mut codec = FrameCodec::new(64);
        let mut buf = BytesMut::from(&[0u8, 0][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&[0, 3, 8]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&[9, 8]);
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], &[8, 9, 8]);
    }

    /// The headers written by hand are postcard's bytes.
    #[test]
    fn hand_written_headers_are_postcards() {
        let ids = [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let mut headers = vec![Header::Event, Header::Volatile, Header::Ping, Header::Pong];
        for &id in &ids {
            headers.extend([
                Header::Request {
                    id,
                    timeout_ms: id as u32,
                },
                Header::Response { id },
                Header::Cancel { id },
                Header::StreamItem { id },
                Header::Ack { received: id },
            ]);
        }
        for header in headers {
            let mut out = [0; MAX_HAND_HEADER];
            let len = put_header(&mut out, &header).unwrap();
            assert_eq!(
                out[..len],
                postcard::to_stdvec(&header).unwrap()[..],
                "{header:?}"
            );
        }
        let mut out = [0; MAX_HAND_HEADER];
        assert_eq!(
            put_header(&mut out, &Header::Close(CloseReason::Normal)),
            None
        );
    }

    /// The headers read by hand are read as postcard reads them, and
    /// whatever postcard refuses is left to it: every short body made of
    /// a hand-read tag and bytes around the varints' edges.
    #[test]
    fn hand_read_headers_are_postcards() {
        let tags = [3u8, 4, 5, 7, 8, 9, 11, 14, 15];
        let bytes = [0u8, 1, 2, 0x0f, 0x10, 0x7f, 0x80, 0x81, 0xff];
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for &tag in &tags {
            bodies.push(vec![tag]);
            for &a in &bytes {
                bodies.push(vec![tag, a]);
                for &b in &bytes {
                    bodies.push(vec![tag, a, b]);
                    for &c in &bytes {
                        bodies.push(vec![tag, a, b, c]);
                    }
                }
            }
            // Long varints: 4 to 11 continuation bytes, then each last byte.
            for run in 4..=11 {
                for &last in &bytes {
                    for second in [None, Some(0u8), Some(0x10)] {
                        let mut body = vec![tag];
                        body.extend(std::iter::repeat_n(0xff, run));
                        body.push(last);
                        body.extend(second);
                        bodies.push(body.clone());
                        // The same as the second field of a request.
                        let mut request = vec![tag, 1];
                        request.extend_from_slice(&body[1..]);
                        bodies.push(request);
                    }
                }
            }
        }
        for body in bodies {
            let theirs = postcard::take_from_bytes::<Header>(&body)
                .ok()
                .map(|(header, rest)| (header, body.len() - rest.len()));
            match take_header(&body) {
                Some(ours) => assert_eq!(Some(ours), theirs, "{body:?}"),
                None => assert!(!tags.contains(&body[0]) || theirs.is_none(), "{body:?}"),
            }
        }
    }

    /// A frame that fails to build leaves the buffer as it was, even when
    /// the payload panics.
    #[test]
    fn encode_into_appends_whole_frames_or_nothing() {
        struct Panics;
        impl Serialize for Panics {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u64(u64::MAX)?;
                panic!("in the middle")
            }
        }
        let mut buf = BytesMut::new();
        let ping = encode_into(&mut buf, &Header::Ping, None::<&()>, 16).unwrap();
        assert_eq!(ping, 5);
        assert!(encode_into(&mut buf, &Header::Event, Some(&[0u8; 32]), 16).is_err());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            encode_into(&mut buf, &Header::Event, Some(&Panics), 1024)
        }));
        assert!(caught.is_err());
        assert_eq!(&buf[..], &[0, 0, 0, 1, 8]);
        // The scratch buffer of `encode` is fine after a panic too.
        let caught = std::panic::catch_unwind(|| encode(&Header::Event, Some(&Panics), 1024));
        assert!(caught.is_err());
        assert_eq!(
            &encode(&Header::Event, Some(&"hi"), 1024).unwrap()[..],
            &[0, 0, 0, 4, 3, 2, b'h', b'i']
        );
    }

    #[test]
    fn control_frames_are_shortened_to_fit() {
        let long = "é".repeat(2000); // 4000 bytes, 2 per char
        let failure = Header::Failure {
            id: 1,
            error: RemoteError::HandlerPanicked {
                message: long.clone(),
            },
        };
        let frame = encode_control(failure, 1024).unwrap();
        assert_eq!(frame.len() - PREFIX_LEN, 1024);
        let (Header::Failure { error, .. }, _) = decode(&frame.slice(PREFIX_LEN..)).unwrap() else {
            panic!("not a failure")
        };
        let RemoteError::HandlerPanicked { message } = error else {
            panic!("{error:?}")
        };
        assert!(message.ends_with('…') && long.starts_with(message.trim_end_matches('…')));
        for header in [
            Header::Close(CloseReason::Protocol(long.clone())),
            Header::Reject(RejectReason::Refused(long.clone())),
        ] {
            let frame = encode_control(header, 1024).unwrap();
            assert!(frame.len() - PREFIX_LEN <= 1024);
        }
        // What fits is left alone.
        let ping = encode_control(Header::Ping, 1024).unwrap();
        assert_eq!(&ping[..], &[0, 0, 0, 1, 8]);
        assert!(encode_control(Header::Cancel { id: u64::MAX }, 2).is_err());
    }

    #[test]
    fn garbage_headers_are_errors_not_panics() {
        for body in [
            &[][..],
            &[200][..],
            &[0, 1, 2][..],
            &[255, 255, 255, 255, 255][..],
        ] {
            assert!(decode(&Bytes::copy_from_slice(body)).is_err());
        }
    }
}
