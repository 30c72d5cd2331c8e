//! The schema JSON (`netsock::schema`, the book's "Schema JSON" chapter):
//! what a program in another language reads to talk to an events enum.
//! Each case compares the whole document with an expected text in
//! `tests/tests/schema_json/`, so any change to the format shows here.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use netsock::{Describe, Events};
use serde::{Deserialize, Serialize};

/// Compares `json` with the file `schema_json/NAME.json`; with
/// `NETSOCK_BLESS=1`, writes it instead (then review the diff).
fn expect(name: &str, json: &str) {
    let path = format!(
        "{}/tests/schema_json/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("NETSOCK_BLESS").is_some() {
        std::fs::write(&path, json).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        json == want,
        "{name}: the schema JSON differs from {path} (NETSOCK_BLESS=1 rewrites it):\n{json}"
    );
}

/// The JSON's `schema_text` and `schema_id` are the handshake's, unchanged.
fn check_ids<E: Events>(json: &str) {
    let doc: serde_json::Value = serde_json::from_str(json).expect("the schema JSON parses");
    assert_eq!(doc["schema_text"], E::SCHEMA);
    assert_eq!(doc["schema_id"], E::SCHEMA_ID.to_string());
    assert_eq!(doc["format"], 1);
}

#[derive(Describe, Serialize, Deserialize)]
struct Unit;

#[derive(Describe, Serialize, Deserialize)]
struct Meters(f64);

#[derive(Describe, Serialize, Deserialize)]
struct Pair(i8, u128);

#[derive(Describe, Serialize, Deserialize)]
struct Inner {
    deep: Option<Vec<Unit>>,
}

#[derive(Describe, Serialize, Deserialize)]
struct Outer {
    inner: Inner,
    meters: Meters,
    pair: Pair,
}

#[derive(Describe, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f32),
    Rect(u16, u16),
    Named { label: String, at: (i32, i32) },
}

/// A recursive type: its definition refers to itself by name.
#[derive(Describe, Serialize, Deserialize)]
struct Tree {
    value: i64,
    children: Vec<Tree>,
}

/// Every kind of type the format has.
#[derive(Events, Serialize, Deserialize)]
enum Everything {
    Unit,
    Integers(u8, u16, u32, u64, u128, usize),
    Signed {
        a: i8,
        b: i16,
        c: i32,
        d: i64,
        e: i128,
        f: isize,
    },
    Floats(f32, f64),
    Text {
        flag: bool,
        letter: char,
        text: String,
    },
    Containers {
        maybe: Option<u8>,
        list: Vec<String>,
        deque: VecDeque<u8>,
        set: BTreeSet<u16>,
        array: [u8; 4],
        tuple: (bool, char, ()),
    },
    Maps {
        map: BTreeMap<String, Vec<u32>>,
        hash: HashMap<u8, bool>,
        boxed: Box<i32>,
    },
    Named(Outer, Shape, Tree),
    #[request(response = Result<Meters, String>)]
    Ask(Option<Shape>),
    #[request(response = ())]
    Nothing,
}

#[test]
fn every_kind_of_type() {
    let json = Everything::schema_json();
    check_ids::<Everything>(&json);
    expect("everything", &json);
}

#[path = "../../examples/interop.rs"]
#[allow(dead_code)]
mod interop;

#[test]
fn the_interop_example() {
    let json = interop::Interop::schema_json();
    check_ids::<interop::Interop>(&json);
    expect("interop", &json);
}

/// A service's request enum: one variant per method, its parameters the
/// fields, its return type the response.
#[netsock::service]
pub trait Calculator {
    async fn sum(&self, numbers: Vec<i64>) -> i64;
    async fn div(&self, a: i64, b: i64) -> Result<i64, DivideByZero>;
    async fn reset(&self);
}

#[derive(Describe, Serialize, Deserialize, Debug)]
pub struct DivideByZero;

#[test]
fn a_service() {
    let json = CalculatorRequest::schema_json();
    check_ids::<CalculatorRequest>(&json);
    expect("service", &json);
}

/// Each instantiation of a generic type is a type of its own, named with
/// its arguments.
#[derive(Describe, Serialize, Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next: Option<u32>,
}

#[derive(Describe, Serialize, Deserialize)]
enum Either<L, R> {
    Left(L),
    Right(R),
}

#[derive(Events, Serialize, Deserialize)]
enum Generic {
    Numbers(Page<i64>),
    Names(Page<String>),
    Nested(Page<Page<Either<u8, Meters>>>),
}

#[test]
fn generic_types() {
    let json = Generic::schema_json();
    check_ids::<Generic>(&json);
    expect("generic", &json);
}

mod left {
    #[derive(netsock::Describe, serde::Serialize, serde::Deserialize)]
    pub struct Point {
        pub x: i32,
    }
}

mod right {
    #[derive(netsock::Describe, serde::Serialize, serde::Deserialize)]
    pub struct Point {
        pub x: f64,
        pub y: f64,
    }
}

/// Two types named alike, from different modules, each take their module
/// path; a name met once keeps its short form.
#[derive(Events, Serialize, Deserialize)]
enum Collide {
    Left(left::Point),
    Right(right::Point),
    Plain(Meters),
}

#[test]
fn types_of_the_same_name() {
    let json = Collide::schema_json();
    check_ids::<Collide>(&json);
    expect("collide", &json);
    assert!(json.contains(r#""schema_json::left::Point": {"#));
    assert!(json.contains(r#""schema_json::right::Point": {"#));
}

/// The schema text and id of enums whose JSON is new stay what they were
/// (wire compatibility): the hashes of the texts the book's test vectors
/// state.
#[test]
fn the_schema_id_did_not_change() {
    assert_eq!(interop::Interop::SCHEMA_ID.to_string(), "27cb21a1f7224d66");
    assert_eq!(
        CalculatorRequest::SCHEMA,
        "CalculatorRequest{Sum{numbers:Vec<i64>}->i64,Div{a:i64,b:i64}->Result<i64,DivideByZero>,Reset->()}"
    );
}

/// A stream request says so: `stream` holds its items' type, `response`
/// is null.
#[test]
fn a_stream_variant() {
    #[derive(Events, Serialize, Deserialize, Debug)]
    enum Prices {
        #[request(stream = f64)]
        Watch(String),
        #[request(response = u32)]
        Count,
    }
    let json = Prices::schema_json();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let watch = &doc["variants"][0];
    assert_eq!(watch["request"], true);
    assert_eq!(watch["response"], serde_json::Value::Null);
    assert_eq!(watch["stream"], serde_json::json!({"type": "f64"}));
    let count = &doc["variants"][1];
    assert_eq!(count["response"], serde_json::json!({"type": "u32"}));
    assert_eq!(count["stream"], serde_json::Value::Null);
    check_ids::<Prices>(&json);
}

/// A request that carries an upload has an `upload` key with the type of
/// its items, beside its `response` or `stream`; other variants have none.
#[test]
fn an_upload_variant() {
    #[derive(Events, Serialize, Deserialize, Debug)]
    enum Store {
        #[request(upload = Vec<u8>, response = u64)]
        Put(String),
        #[request(upload = String, stream = u32)]
        Lengths,
        #[request(response = u32)]
        Count,
    }
    assert_eq!(
        Store::SCHEMA,
        "Store{Put(String)<=Vec<u8>->u64,Lengths<=String=>u32,Count->u32}"
    );
    let json = Store::schema_json();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let put = &doc["variants"][0];
    assert_eq!(put["response"], serde_json::json!({"type": "u64"}));
    let bytes = serde_json::json!({"type": "seq", "item": {"type": "u8"}});
    assert_eq!(put["upload"], bytes);
    let lengths = &doc["variants"][1];
    assert_eq!(lengths["stream"], serde_json::json!({"type": "u32"}));
    assert_eq!(lengths["upload"], serde_json::json!({"type": "string"}));
    assert!(doc["variants"][2].get("upload").is_none());
    check_ids::<Store>(&json);
}
