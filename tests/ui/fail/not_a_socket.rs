//! Only a socket makes a request and waits for its one reply, and only a
//! socket has handlers: a server gets the generated methods too (it sends
//! and receives the enum), and each call says what to do instead.

use netsock::{Events, Server};

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    Log(String),
    #[request(response = i64)]
    Sum(Vec<i64>),
}

#[allow(dead_code)]
async fn misuse(io: Server<Api>) {
    let _ = io.sum(vec![1, 2]).await;
    io.on_log(|line| async move { drop(line) });
}

fn main() {}
