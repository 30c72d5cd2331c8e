// `#[derive(Describe)]` refuses serde attributes that change the layout on
// the wire, and unions.
use serde::{Deserialize, Serialize};

#[derive(netsock::Describe, Serialize, Deserialize)]
#[serde(untagged)]
enum Loose {
    A(u8),
    B(String),
}

#[derive(netsock::Describe, Serialize, Deserialize)]
struct Partial {
    #[serde(rename = "kept")]
    kept: u8,
    #[serde(skip)]
    cache: u64,
}

#[derive(netsock::Describe)]
union Raw {
    a: u8,
}

fn main() {}
