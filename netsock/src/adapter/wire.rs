//! The messages nodes send each other through the driver: a postcard
//! [`Envelope`] (who sent it, what it is), then, for a broadcast, the
//! frame's bytes as the emitting node encoded them, and for a request or a
//! server message, the payload's bytes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::adapter::SocketInfo;
use crate::conn::{NodeId, SocketId};
use crate::error::CallError;
use crate::selector::Selector;

/// The version of these messages; a node ignores (and counts) others.
pub(crate) const VERSION: u8 = 2;

/// What a node sends, as it is decoded (the bytes after it are the
/// payload).
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) version: u8,
    pub(crate) from: NodeId,
    pub(crate) lane: Lane,
    pub(crate) body: Body,
}

/// Which of the sender's numbered streams a message is on, and its number
/// there: the messages a node sends on the channel every node hears, and
/// those it sends to one node, are each numbered from 1 without gaps, so a
/// receiver counts what it never got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Lane {
    /// To one node (its own channel), or to all.
    pub(crate) direct: bool,
    pub(crate) seq: u64,
}

/// The same, as it is encoded (borrowing the body).
#[derive(Serialize)]
pub(crate) struct EnvelopeRef<'a> {
    pub(crate) version: u8,
    pub(crate) from: NodeId,
    pub(crate) lane: Lane,
    pub(crate) body: &'a Body,
}

/// What a message is.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Body {
    /// "I am alive"; `hello`: "I just started, tell me who you are".
    Heartbeat { hello: bool },
    /// "I am stopping": forget me now.
    Bye,
    /// Deliver the frame that follows (of the `variant`-th event) to the
    /// sockets `selector` picks.
    Broadcast { selector: Selector, variant: u32 },
    /// Make the sockets `selector` picks do `command`.
    Command {
        selector: Selector,
        command: Command,
    },
    /// Reply with the sockets `selector` picks.
    Fetch { id: u64, selector: Selector },
    /// Reply with your rooms.
    Rooms { id: u64 },
    /// Send the request payload that follows to the sockets `selector`
    /// picks, and reply with their replies.
    Call {
        id: u64,
        selector: Selector,
        timeout_ms: Option<u64>,
    },
    /// The answer to request `id`.
    Reply { id: u64, answer: Answer },
    /// A message from a server to the others (`ServerCluster::emit`): the payload
    /// follows.
    Message,
}

/// What a node can be made to do to its sockets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Command {
    Join(Vec<String>),
    Leave(Vec<String>),
    Disconnect,
}

/// An answer to a request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    Sockets(Vec<SocketInfo>),
    Rooms(Vec<String>),
    Calls(Vec<(SocketId, Result<Vec<u8>, WireCallError>)>),
    /// The node had too many requests running to take this one.
    Busy,
}

/// A [`CallError`], as it travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireCallError {
    Timeout { after_ms: u64 },
    Disconnected(String),
    NoHandler(String),
    NotARequest(String),
    HandlerPanicked(String),
    BadRequest(String),
    FrameTooLarge { size: u64, max: u64 },
    Codec(String),
    Other(String),
}

impl From<&CallError> for WireCallError {
    fn from(e: &CallError) -> Self {
        match e {
            CallError::Timeout { after } => WireCallError::Timeout {
                after_ms: after.as_millis().try_into().unwrap_or(u64::MAX),
            },
            CallError::Disconnected(reason) => WireCallError::Disconnected(reason.to_string()),
            CallError::NoHandler { event } => WireCallError::NoHandler(event.clone()),
            CallError::NotARequest { event } => WireCallError::NotARequest(event.clone()),
            CallError::HandlerPanicked { message } => {
                WireCallError::HandlerPanicked(message.clone())
            }
            CallError::BadRequest { message } => WireCallError::BadRequest(message.clone()),
            CallError::FrameTooLarge { size, max } => WireCallError::FrameTooLarge {
                size: *size as u64,
                max: *max as u64,
            },
            CallError::Codec(m) => WireCallError::Codec(m.clone()),
            CallError::Remote(m) => WireCallError::Other(m.clone()),
            // Streams do not cross nodes; said in words, in case.
            other => WireCallError::Other(other.to_string()),
        }
    }
}

impl From<WireCallError> for CallError {
    fn from(e: WireCallError) -> Self {
        match e {
            WireCallError::Timeout { after_ms } => CallError::Timeout {
                after: Duration::from_millis(after_ms),
            },
            WireCallError::Disconnected(m) => CallError::Remote(format!(
                "the connection closed before the reply arrived: {m}"
            )),
            WireCallError::NoHandler(event) => CallError::NoHandler { event },
            WireCallError::NotARequest(event) => CallError::NotARequest { event },
            WireCallError::HandlerPanicked(message) => CallError::HandlerPanicked { message },
            WireCallError::BadRequest(message) => CallError::BadRequest { message },
            WireCallError::FrameTooLarge { size, max } => CallError::FrameTooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                max: usize::try_from(max).unwrap_or(usize::MAX),
            },
            WireCallError::Codec(m) => CallError::Codec(m),
            WireCallError::Other(m) => CallError::Remote(m),
        }
    }
}
