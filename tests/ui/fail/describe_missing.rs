// A field's type (and a response type) without `#[derive(netsock::Describe)]`:
// the error says which type, and how to fix it.
use netsock::Events;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Serialize, Deserialize)]
struct Answer(u8);

#[derive(Events, Serialize, Deserialize)]
enum Api {
    Moved { to: Point },
    #[request(response = Answer)]
    Ask,
}

fn main() {}
