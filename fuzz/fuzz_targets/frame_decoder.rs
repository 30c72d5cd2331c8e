//! Arbitrary bytes, arriving in arbitrary pieces, through the frame codec and
//! the header decoder: errors are fine; panics, and buffers sized by a
//! length prefix rather than by received bytes, are not.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use netsock::frame::{decode, FrameCodec};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so the fuzzer explores splits.
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut codec = FrameCodec::new(8 * 1024 * 1024);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(body)) => {
                    let _ = decode(&body);
                }
                Ok(None) => break,
                Err(_) => return, // the connection would close here
            }
        }
        // The buffer grows with what arrived, not with what a length prefix
        // promises (at most 64 KiB is reserved ahead).
        assert!(buf.capacity() <= 2 * (buf.len() + 64 * 1024) + 4096, "buffer grew on a promise");
    }
});
