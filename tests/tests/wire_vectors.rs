//! The wire protocol's test vectors (`book/src/wire-vectors.txt`, included in
//! the book's wire chapter) against the code: every frame decodes to the
//! header and payload the file states, encodes back to the same bytes, and
//! every schema text hashes to the stated id. So the spec and the code cannot
//! drift apart.

use std::collections::BTreeSet;
use std::fmt::Debug;

use bytes::Bytes;
use netsock::frame::{self, Header, PREFIX_LEN};
use netsock::{Events, SchemaId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The sum service's enum, as in `examples/sum_numbers.rs`.
#[derive(Events, Serialize, Deserialize, Debug)]
enum SumApi {
    #[request(response = i64)]
    Sum(Vec<i64>),
}

/// The greeting example's enum, as in `examples/hello/mod.rs`.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Chat {
    Message { text: String, total_clients: usize },
}

/// A subscription: a request answered with a stream of prices.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Prices {
    #[request(stream = f64)]
    Watch(String),
}

const VECTORS: &str = include_str!("../../book/src/wire-vectors.txt");

/// One block of the file: its `key: value` fields, in order.
type Block = Vec<(String, String)>;

fn blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut block = Block::new();
    for line in VECTORS.lines().chain([""]) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a `key: value` line: {line:?}"));
        let value = value.strip_prefix(' ').unwrap_or(value);
        block.push((key.to_owned(), value.to_owned()));
    }
    blocks
}

fn field<'a>(block: &'a Block, key: &str) -> &'a str {
    let name = block.first().map_or("?", |(_, v)| v.as_str());
    block
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("vector {name} has no `{key}:` line"))
}

fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("bad hex byte {b:?}")))
        .collect()
}

/// Decodes `payload` as `T`, compares its Debug form with `want`, and
/// returns the frame `header` + the decoded value encode to.
fn payload_round_trip<T: Serialize + DeserializeOwned + Debug>(
    name: &str,
    header: &Header,
    payload: &[u8],
    want: &str,
) -> Bytes {
    let value: T = postcard::from_bytes(payload)
        .unwrap_or_else(|e| panic!("{name}: payload does not decode: {e}"));
    assert_eq!(format!("{value:?}"), want, "{name}: payload");
    frame::encode(header, Some(&value), usize::MAX).expect("encode")
}

fn check_frame(block: &Block) {
    let name = field(block, "name");
    let wire = unhex(field(block, "frame"));
    assert!(!field(block, "meaning").is_empty(), "{name}: no meaning");

    // Decode: a 4-byte big-endian length, then that many bytes of body.
    assert!(
        wire.len() >= PREFIX_LEN,
        "{name}: shorter than a length prefix"
    );
    let (prefix, body) = wire.split_at(PREFIX_LEN);
    let len = u32::from_be_bytes(prefix.try_into().unwrap()) as usize;
    assert_eq!(
        len,
        body.len(),
        "{name}: the length prefix disagrees with the body"
    );
    let body = Bytes::copy_from_slice(body);
    let (header, payload) = frame::decode(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        format!("{header:?}"),
        field(block, "header"),
        "{name}: header"
    );

    // Encode back, from the decoded values.
    let encoded = match field(block, "payload") {
        "-" => {
            assert!(payload.is_empty(), "{name}: unexpected payload {payload:?}");
            frame::encode(&header, None::<&()>, usize::MAX).expect("encode")
        }
        typed => {
            let (ty, value) = typed
                .split_once(": ")
                .unwrap_or_else(|| panic!("{name}: payload is not `TYPE: VALUE`"));
            match ty {
                "SumApi" => payload_round_trip::<SumApi>(name, &header, &payload, value),
                "Chat" => payload_round_trip::<Chat>(name, &header, &payload, value),
                "i64" => payload_round_trip::<i64>(name, &header, &payload, value),
                other => panic!("{name}: unknown payload type {other}"),
            }
        }
    };
    assert_eq!(&encoded[..], &wire[..], "{name}: encoding differs");
}

fn check_schema(block: &Block) {
    let name = field(block, "name");
    let text = field(block, "schema");
    let id = u64::from_str_radix(field(block, "id"), 16).expect("hex id");
    assert_eq!(SchemaId::of(text), SchemaId(id), "{name}");
}

#[test]
fn every_vector_matches_the_code() {
    let blocks = blocks();
    let mut names = BTreeSet::new();
    let (mut frames, mut schemas) = (0, 0);
    for block in &blocks {
        let name = field(block, "name");
        assert!(names.insert(name.to_owned()), "duplicate vector {name}");
        if block.iter().any(|(k, _)| k == "schema") {
            check_schema(block);
            schemas += 1;
        } else {
            check_frame(block);
            frames += 1;
        }
    }
    assert!(
        frames >= 20 && schemas >= 3,
        "{frames} frames, {schemas} schemas"
    );
}

#[test]
fn the_file_covers_every_frame_kind() {
    let headers: Vec<String> = blocks()
        .iter()
        .filter(|b| b.iter().any(|(k, _)| k == "header"))
        .map(|b| field(b, "header").to_owned())
        .collect();
    for kind in [
        "Hello(",
        "Welcome ",
        "Reject(",
        "Event",
        "Request ",
        "Response ",
        "Failure ",
        "Cancel ",
        "Ping",
        "Pong",
        "Close(",
        "StreamItem ",
        "StreamEnd ",
        "Credit ",
    ] {
        assert!(
            headers.iter().any(|h| h.starts_with(kind)),
            "no vector for {kind}"
        );
    }
}

#[test]
fn schema_texts_are_what_the_derive_makes() {
    // The texts the file hashes are the derive's, for the enums above.
    let texts: Vec<String> = blocks()
        .iter()
        .filter(|b| b.iter().any(|(k, _)| k == "schema"))
        .map(|b| field(b, "schema").to_owned())
        .collect();
    assert_eq!(SumApi::SCHEMA, "SumApi{Sum(Vec<i64>)->i64}");
    assert_eq!(
        Chat::SCHEMA,
        "Chat{Message{text:String,total_clients:usize}}"
    );
    assert_eq!(Prices::SCHEMA, "Prices{Watch(String)=>f64}");
    assert!(texts.iter().any(|t| t == SumApi::SCHEMA));
    assert!(texts.iter().any(|t| t == Chat::SCHEMA));
    assert!(texts.iter().any(|t| t == Prices::SCHEMA));
    assert_eq!(SumApi::SCHEMA_ID, SchemaId(0x7654_8073_a819_0951));
}
