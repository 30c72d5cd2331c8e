//! In-process micro-benchmark: netsock's frame codec against postcard into
//! a `Vec` with a hand-written length prefix (the raw baseline's framing).
//! Both sides append every frame of a batch to one reused buffer, as a
//! connection's write buffer is filled.

use std::hint::black_box;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use netsock::frame::{self, FrameCodec, Header};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

use crate::api::{Api, RawMsg, NUMS};

const BATCH: u64 = 1024;
const MAX: usize = frame::DEFAULT_MAX_FRAME_SIZE;

fn ns_request(id: u64) -> Bytes {
    frame::encode(
        &Header::Request {
            id,
            timeout_ms: 10_000,
        },
        Some(&Api::Sum(NUMS)),
        MAX,
    )
    .expect("encodes")
}

/// Seconds to encode `n` requests into a wire buffer: (raw, netsock).
pub fn encode(n: u64) -> (f64, f64) {
    let mut wire: Vec<u8> = Vec::with_capacity(64 * BATCH as usize);
    let start = Instant::now();
    for batch in 0..n / BATCH {
        wire.clear();
        for i in 0..BATCH {
            let id = batch * BATCH + i;
            let at = wire.len();
            wire.extend_from_slice(&[0; 4]);
            wire = postcard::to_extend(&RawMsg::Sum { id, nums: NUMS }, wire).expect("encodes");
            let len = (wire.len() - at - 4) as u32;
            wire[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        black_box(&wire);
    }
    let raw = start.elapsed().as_secs_f64();

    let mut wire = BytesMut::with_capacity(64 * BATCH as usize);
    let start = Instant::now();
    for batch in 0..n / BATCH {
        wire.clear();
        for i in 0..BATCH {
            let header = Header::Request {
                id: batch * BATCH + i,
                timeout_ms: 10_000,
            };
            frame::encode_into(&mut wire, &header, Some(&Api::Sum(NUMS)), MAX).expect("fits");
        }
        black_box(&wire);
    }
    (raw, start.elapsed().as_secs_f64())
}

/// Seconds to decode `n` requests from a wire buffer: (raw, netsock).
pub fn decode(n: u64) -> (f64, f64) {
    let mut raw_wire = BytesMut::new();
    let mut ns_wire = BytesMut::new();
    for id in 0..BATCH {
        crate::api::put_frame(&mut raw_wire, &RawMsg::Sum { id, nums: NUMS });
        ns_wire.extend_from_slice(&ns_request(id));
    }

    let mut codec = LengthDelimitedCodec::new();
    let start = Instant::now();
    for _ in 0..n / BATCH {
        let mut src = raw_wire.clone();
        while let Some(body) = codec.decode(&mut src).expect("decodes") {
            black_box(postcard::from_bytes::<RawMsg>(&body).expect("decodes"));
        }
    }
    let raw = start.elapsed().as_secs_f64();

    let mut codec = FrameCodec::new(MAX);
    let start = Instant::now();
    for _ in 0..n / BATCH {
        let mut src = ns_wire.clone();
        while let Some(body) = codec.decode(&mut src).expect("decodes") {
            let (header, payload) = frame::decode(&body).expect("decodes");
            black_box(header);
            black_box(postcard::from_bytes::<Api>(&payload).expect("decodes"));
        }
    }
    (raw, start.elapsed().as_secs_f64())
}
