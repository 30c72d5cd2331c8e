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

/// An upload: a request carrying a stream of chunks.
#[derive(Events, Serialize, Deserialize, Debug)]
enum Store {
    #[request(upload = Vec<u8>, response = u64)]
    Put(String),
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
                "SessionAsk" => {
                    payload_round_trip::<frame::SessionAsk>(name, &header, &payload, value)
                }
                "SessionGrant" => {
                    payload_round_trip::<frame::SessionGrant>(name, &header, &payload, value)
                }
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
        "Ack ",
        "Volatile",
        "StreamItem ",
        "StreamEnd ",
        "Credit ",
        "UploadItem ",
        "UploadEnd ",
        "UploadCredit ",
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
    assert_eq!(Store::SCHEMA, "Store{Put(String)<=Vec<u8>->u64}");
    assert!(texts.iter().any(|t| t == Store::SCHEMA));
    assert!(texts.iter().any(|t| t == SumApi::SCHEMA));
    assert!(texts.iter().any(|t| t == Chat::SCHEMA));
    assert!(texts.iter().any(|t| t == Prices::SCHEMA));
    assert_eq!(SumApi::SCHEMA_ID, SchemaId(0x7654_8073_a819_0951));
}

/// The same protocol's vectors as JSON (`book/src/wire-vectors.json`), for
/// peers in other languages: each value and frame is written as a type (in
/// the schema JSON's notation), a value, and its bytes. Checked twice: an
/// encoder of the JSON notation, written here from the book's rules as
/// another implementation would be, must give the stated bytes; and Rust's
/// own encoding (postcard, `netsock::frame`) must give them too.
mod json {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use netsock::frame::{self, PREFIX_LEN};
    use netsock::SchemaId;
    use serde::{Deserialize, Serialize};
    use serde_json::{Map, Value};

    use super::{unhex, Chat, SumApi};

    const VECTORS: &str = include_str!("../../book/src/wire-vectors.json");

    fn doc() -> Value {
        serde_json::from_str(VECTORS).expect("wire-vectors.json parses")
    }

    fn varint(mut n: u128, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// An integer: a JSON number, or a decimal string (64 and 128 bits).
    fn int(v: &Value) -> i128 {
        match v {
            Value::Number(n) => n.as_i64().map(i128::from).expect("an integer"),
            Value::String(s) => s.parse::<i128>().unwrap_or_else(|_| {
                s.parse::<u128>().expect("a decimal integer") as i128 // u128 above i128::MAX
            }),
            other => panic!("not an integer: {other}"),
        }
    }

    fn uint(v: &Value) -> u128 {
        match v {
            Value::String(s) => s.parse::<u128>().expect("a decimal integer"),
            other => int(other) as u128,
        }
    }

    fn text<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key} in {v}"))
    }

    fn list(v: &Value) -> &Vec<Value> {
        v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
    }

    /// Encodes `value` of type `ty` by the book's rules.
    fn encode(ty: &Value, value: &Value, types: &Map<String, Value>, out: &mut Vec<u8>) {
        let kind = text(ty, "type");
        match kind {
            "unit" => assert!(value.is_null()),
            "bool" => out.push(u8::from(value.as_bool().expect("a bool"))),
            "u8" => out.push(u8::try_from(int(value)).expect("a u8")),
            "i8" => out.push(i8::try_from(int(value)).expect("an i8") as u8),
            "u16" | "u32" | "u64" | "u128" => varint(uint(value), out),
            "i16" | "i32" | "i64" | "i128" => {
                let bits: u32 = kind[1..].parse().unwrap();
                let n = int(value);
                let zigzag = ((n << 1) ^ (n >> (bits - 1))) as u128;
                let mask = if bits == 128 {
                    u128::MAX
                } else {
                    (1u128 << bits) - 1
                };
                varint(zigzag & mask, out);
            }
            "f32" => out.extend((value.as_f64().expect("a float") as f32).to_le_bytes()),
            "f64" => out.extend(value.as_f64().expect("a float").to_le_bytes()),
            "string" | "char" => {
                let s = value.as_str().expect("a string");
                varint(s.len() as u128, out);
                out.extend(s.as_bytes());
            }
            "bytes" => {
                let bytes = unhex(value.as_str().expect("hex"));
                varint(bytes.len() as u128, out);
                out.extend(bytes);
            }
            "option" => match value {
                Value::Null => out.push(0),
                some => {
                    out.push(1);
                    encode(&ty["some"], some, types, out);
                }
            },
            "seq" => {
                varint(list(value).len() as u128, out);
                for item in list(value) {
                    encode(&ty["item"], item, types, out);
                }
            }
            "array" => {
                assert_eq!(Some(list(value).len() as u64), ty["len"].as_u64());
                for item in list(value) {
                    encode(&ty["item"], item, types, out);
                }
            }
            "tuple" => {
                assert_eq!(list(&ty["items"]).len(), list(value).len());
                for (t, item) in list(&ty["items"]).iter().zip(list(value)) {
                    encode(t, item, types, out);
                }
            }
            "map" => {
                varint(list(value).len() as u128, out);
                for pair in list(value) {
                    encode(&ty["key"], &pair[0], types, out);
                    encode(&ty["value"], &pair[1], types, out);
                }
            }
            "ref" => {
                let def = &types[text(ty, "name")];
                if text(def, "kind") == "enum" {
                    let (name, inner) = value
                        .as_object()
                        .and_then(|o| o.iter().next())
                        .expect("an enum value: {\"Variant\": ..}");
                    let variant = list(&def["variants"])
                        .iter()
                        .find(|v| text(v, "name") == name)
                        .unwrap_or_else(|| panic!("no variant {name}"));
                    varint(u128::from(variant["index"].as_u64().unwrap()), out);
                    fields(text(variant, "shape"), variant, inner, types, out);
                } else {
                    fields(text(def, "kind"), def, value, types, out);
                }
            }
            other => panic!("unknown type {other}"),
        }
    }

    /// A variant's or struct's fields, by its `shape` or `kind`.
    fn fields(
        shape: &str,
        def: &Value,
        value: &Value,
        types: &Map<String, Value>,
        out: &mut Vec<u8>,
    ) {
        match shape {
            "unit" | "unit_struct" => assert!(value.is_null()),
            "newtype" | "newtype_struct" => encode(&def["type"], value, types, out),
            "tuple" | "tuple_struct" => {
                for (t, item) in list(&def["items"]).iter().zip(list(value)) {
                    encode(t, item, types, out);
                }
            }
            "struct" => {
                for field in list(&def["fields"]) {
                    let v = &value[text(field, "name")];
                    encode(&field["type"], v, types, out);
                }
            }
            other => panic!("unknown shape {other}"),
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Segment {
        from: Point,
        to: Point,
        label: Option<String>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Meters(f64);

    fn pc<T: Serialize>(value: T) -> Vec<u8> {
        postcard::to_stdvec(&value).expect("postcard encodes")
    }

    /// The `values` of the file, as Rust values encoded by postcard, in order.
    fn rust_values() -> Vec<Vec<u8>> {
        vec![
            pc(()),
            pc(true),
            pc(255u8),
            pc(-128i8),
            pc(300u16),
            pc(u32::MAX),
            pc(127u64),
            pc(128u64),
            pc(u64::MAX),
            pc(-1i64),
            pc(21i64),
            pc(i64::MIN),
            pc(i64::MAX),
            pc(i16::MIN),
            pc(u128::MAX),
            pc(i128::MIN),
            pc(3.25f32),
            pc(-1.5f64),
            pc('é'),
            pc('🌍'),
            pc("grüße 🌍"),
            pc("a".repeat(200)),
            pc(None::<String>),
            pc(Some("hi")),
            pc(vec![0u8, 1, 255]),
            pc(*b"NSCK"),
            pc((-1i8, 300u128, ())),
            pc(BTreeMap::from([("a", 1u32), ("b", 300)])),
            pc(Segment {
                from: Point { x: 1, y: -1 },
                to: Point { x: 0, y: 64 },
                label: Some("é".into()),
            }),
            pc(Meters(1.5)),
            pc(Ok::<u32, String>(7)),
            pc(Err::<u32, String>("no".into())),
        ]
    }

    #[test]
    fn every_value_encodes_as_stated() {
        let doc = doc();
        let types = doc["types"].as_object().expect("types");
        let values = list(&doc["values"]);
        let rust = rust_values();
        assert_eq!(values.len(), rust.len(), "one Rust value per vector");
        for (v, rust) in values.iter().zip(rust) {
            let name = text(v, "description");
            let mut bytes = Vec::new();
            encode(&v["type"], &v["value"], types, &mut bytes);
            let want = unhex(text(v, "hex"));
            assert_eq!(bytes, want, "{name}: the JSON value encodes otherwise");
            assert_eq!(
                rust, want,
                "{name}: postcard encodes the Rust value otherwise"
            );
        }
    }

    #[test]
    fn every_frame_encodes_and_decodes_as_stated() {
        let doc = doc();
        let types = doc["types"].as_object().expect("types");
        let header_type = serde_json::json!({"type": "ref", "name": "Header"});
        for f in list(&doc["frames"]) {
            let name = text(f, "description");
            let wire = unhex(text(f, "hex"));
            // From the JSON: the header, the payload, then the length before them.
            let mut body = Vec::new();
            encode(&header_type, &f["header"], types, &mut body);
            let header_len = body.len();
            if !f["payload"].is_null() {
                encode(
                    &f["payload"]["type"],
                    &f["payload"]["value"],
                    types,
                    &mut body,
                );
            }
            let mut framed = (body.len() as u32).to_be_bytes().to_vec();
            framed.extend(&body);
            assert_eq!(framed, wire, "{name}: the JSON frame encodes otherwise");

            // By netsock: decode, and the header encodes back to the same bytes.
            let body = Bytes::copy_from_slice(&wire[PREFIX_LEN..]);
            let (header, payload) = frame::decode(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = frame::encode(&header, None::<&()>, usize::MAX).expect("encode");
            assert_eq!(
                &again[PREFIX_LEN..],
                &wire[PREFIX_LEN..PREFIX_LEN + header_len],
                "{name}"
            );
            assert_eq!(
                &payload[..],
                &wire[PREFIX_LEN + header_len..],
                "{name}: payload"
            );
            let kind = f["header"]
                .as_object()
                .and_then(|o| o.keys().next())
                .unwrap();
            assert!(
                format!("{header:?}").starts_with(kind.as_str()),
                "{name}: {header:?}"
            );
            let round_trip = match f["payload"]["type"]["name"].as_str() {
                None if f["payload"].is_null() => payload.to_vec(),
                Some("SumApi") => pc(postcard::from_bytes::<SumApi>(&payload).expect(name)),
                Some("Chat") => pc(postcard::from_bytes::<Chat>(&payload).expect(name)),
                _ => pc(postcard::from_bytes::<i64>(&payload).expect(name)),
            };
            assert_eq!(
                round_trip,
                payload.to_vec(),
                "{name}: the payload round-trips"
            );
        }
    }

    #[test]
    fn every_schema_text_hashes_to_its_id() {
        for s in list(&doc()["schemas"]) {
            let id = u64::from_str_radix(text(s, "schema_id"), 16).expect("hex id");
            assert_eq!(SchemaId::of(text(s, "schema_text")), SchemaId(id));
        }
    }

    /// What the chapter promises the file holds.
    #[test]
    fn the_file_has_the_hard_cases() {
        let all = VECTORS;
        for needle in [
            "ff ff ff ff ff ff ff ff ff 01", // 10-byte varints: u64::MAX, i64::MIN
            "fe ff ff ff ff ff ff ff ff 01", // i64::MAX
            "grüße 🌍",                      // non-ASCII strings
            "\"id\": \"300\"",               // a multi-byte request id
            "\"id\": \"18446744073709551615\"",
        ] {
            assert!(all.contains(needle), "no vector with {needle}");
        }
    }
}
