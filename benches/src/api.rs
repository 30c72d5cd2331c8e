//! What both sides speak: the netsock event enum and the raw baseline's
//! messages, plus the fixed request and event payloads. The tarpc side's
//! service, the same `Sum` request, is `tp::Bench` (behind the `tarpc`
//! feature).

use bytes::{BufMut, BytesMut};
use netsock::Events;
use serde::{Deserialize, Serialize};

/// The request payload: `sum` of these is [`SUM`].
pub const NUMS: [i64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
/// The expected reply.
pub const SUM: i64 = 36;
/// A 16-byte event payload.
pub const TICK: [u8; 16] = *b"0123456789abcdef";

/// The netsock side of every workload.
#[derive(Events, Serialize, Deserialize, Debug)]
pub enum Api {
    /// Adds the numbers.
    #[request(response = i64)]
    Sum([i64; 8]),
    /// A one-way 16-byte event.
    Tick([u8; 16]),
    /// How many `Tick`s the server has received so far.
    #[request(response = u64)]
    Count,
    /// Broadcast this many `Tick`s to every other connection, then reply.
    #[request(response = u64)]
    Fanout(u32),
    /// A stream of this many 16-byte items.
    #[request(stream = [u8; 16])]
    Ticks(u64),
}

/// The raw baseline's messages: postcard in a `LengthDelimitedCodec` frame.
#[derive(Serialize, Deserialize, Debug)]
pub enum RawMsg {
    /// A call: `sum` of `nums`, answered with a [`RawReply`] carrying `id`.
    Sum { id: u64, nums: [i64; 8] },
    /// A one-way 16-byte event.
    Tick([u8; 16]),
    /// How many `Tick`s the server has received so far.
    Count { id: u64 },
    /// Send `n` pre-encoded `Tick`s to every other connection, then reply.
    Fanout { id: u64, n: u32 },
}

/// The raw baseline's reply to any call.
#[derive(Serialize, Deserialize, Debug)]
pub struct RawReply {
    pub id: u64,
    pub value: i64,
}

/// Appends one length-prefixed postcard frame (the `LengthDelimitedCodec`
/// default layout: a 4-byte big-endian length) to `out`.
pub fn put_frame<T: Serialize>(out: &mut BytesMut, value: &T) {
    let mut tmp = [0u8; 128];
    let body = postcard::to_slice(value, &mut tmp).expect("a bench message fits 128 bytes");
    out.put_u32(body.len() as u32);
    out.extend_from_slice(body);
}
