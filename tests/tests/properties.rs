//! Property tests of the frame layer: any sequence of frames survives
//! encoding, arbitrary splitting and decoding unchanged; arbitrary bytes never
//! panic the decoder.

use bytes::BytesMut;
use netsock::frame::{self, FrameCodec, Header, Hello, RemoteError};
use netsock::{CloseReason, RejectReason, SchemaId};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn remote_error() -> impl Strategy<Value = RemoteError> {
    prop_oneof![
        ".*".prop_map(|event| RemoteError::NoHandler { event }),
        ".*".prop_map(|event| RemoteError::NotARequest { event }),
        ".*".prop_map(|message| RemoteError::HandlerPanicked { message }),
        ".*".prop_map(|message| RemoteError::BadRequest { message }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(size, max)| RemoteError::ResponseTooLarge { size, max }),
        ".*".prop_map(|message| RemoteError::Encode { message }),
        ".*".prop_map(|message| RemoteError::HandlerFailed { message }),
        ".*".prop_map(|message| RemoteError::StreamProtocol { message }),
    ]
}

fn close_reason() -> impl Strategy<Value = CloseReason> {
    prop_oneof![
        Just(CloseReason::Normal),
        (any::<u64>(), any::<u64>())
            .prop_map(|(size, max)| CloseReason::FrameTooLarge { size, max }),
        ".*".prop_map(CloseReason::Protocol),
        ".*".prop_map(CloseReason::Shutdown),
        ".*".prop_map(CloseReason::Application),
    ]
}

fn reject_reason() -> impl Strategy<Value = RejectReason> {
    prop_oneof![
        Just(RejectReason::BadMagic),
        (any::<u16>(), any::<u16>())
            .prop_map(|(server, client)| RejectReason::VersionMismatch { server, client }),
        any::<[u64; 4]>().prop_map(|s| RejectReason::SchemaMismatch {
            server: (SchemaId(s[0]), SchemaId(s[1])),
            client: (SchemaId(s[2]), SchemaId(s[3])),
        }),
        ".*".prop_map(RejectReason::Other),
        ".*".prop_map(RejectReason::Refused),
        (any::<[u64; 4]>(), ".*", ".*").prop_map(|(s, sends, receives)| {
            RejectReason::SchemaDiffers {
                server: (SchemaId(s[0]), SchemaId(s[1])),
                client: (SchemaId(s[2]), SchemaId(s[3])),
                server_schema: (sends, receives),
            }
        }),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    let hello = (
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<[u64; 2]>(),
        any::<u32>(),
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(magic, version, s, max_frame, lenient, auth)| {
            Header::Hello(Hello {
                magic,
                version,
                sends: SchemaId(s[0]),
                receives: SchemaId(s[1]),
                max_frame,
                lenient,
                auth,
            })
        });
    prop_oneof![
        hello,
        (any::<u64>(), any::<u32>()).prop_map(|(id, max_frame)| Header::Welcome { id, max_frame }),
        reject_reason().prop_map(Header::Reject),
        Just(Header::Event),
        (any::<u64>(), any::<u32>())
            .prop_map(|(id, timeout_ms)| Header::Request { id, timeout_ms }),
        any::<u64>().prop_map(|id| Header::Response { id }),
        (any::<u64>(), remote_error()).prop_map(|(id, error)| Header::Failure { id, error }),
        any::<u64>().prop_map(|id| Header::Cancel { id }),
        Just(Header::Ping),
        Just(Header::Pong),
        close_reason().prop_map(Header::Close),
        any::<u64>().prop_map(|id| Header::StreamItem { id }),
        (any::<u64>(), proptest::option::of(remote_error()))
            .prop_map(|(id, error)| Header::StreamEnd { id, error }),
        (any::<u64>(), any::<u32>(), any::<u64>()).prop_map(|(id, items, bytes)| Header::Credit {
            id,
            items,
            bytes
        }),
    ]
}

/// Whether this kind of frame carries a payload.
fn has_payload(h: &Header) -> bool {
    matches!(
        h,
        Header::Event
            | Header::Request { .. }
            | Header::Response { .. }
            | Header::StreamItem { .. }
    )
}

const MAX: usize = 64 * 1024;

proptest! {
    #[test]
    fn any_frames_round_trip_through_any_split(
        frames in proptest::collection::vec((header(), proptest::collection::vec(any::<u8>(), 0..300)), 0..20),
        chunk in 1usize..97,
    ) {
        let mut wire = Vec::new();
        let mut sent = Vec::new();
        for (h, payload) in frames {
            let payload = if has_payload(&h) { payload } else { Vec::new() };
            let bytes = frame::encode_with_payload(&h, &payload, MAX).unwrap();
            wire.extend_from_slice(&bytes);
            sent.push((h, payload));
        }
        let mut codec = FrameCodec::new(MAX);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(body) = codec.decode(&mut buf).unwrap() {
                let (h, payload) = frame::decode(&body).unwrap();
                got.push((h, payload.to_vec()));
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, sent);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..64,
    ) {
        let mut codec = FrameCodec::new(MAX);
        let mut buf = BytesMut::new();
        'feed: for piece in bytes.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(body)) => { let _ = frame::decode(&body); }
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
    }
}
