//! Handlers may be named async functions, and closures that capture state;
//! field names never clash with the generated code's own names.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use netsock::{Events, Socket};
use serde::{Deserialize, Serialize};

#[derive(Events, Serialize, Deserialize, Debug)]
enum Api {
    Tick {
        handler: u32,
        value: u32,
        socket: u32,
    },
    #[request(response = i64)]
    Sum(Vec<i64>),
}

async fn sum(numbers: Vec<i64>) -> i64 {
    numbers.iter().sum()
}

async fn tick(handler: u32, value: u32, socket: u32) {
    println!("{handler} {value} {socket}");
}

#[allow(dead_code)]
fn register(socket: &Socket<Api>) {
    let seen = Arc::new(AtomicUsize::new(0));
    socket.on_sum(sum);
    socket.on_tick(tick);
    socket.on_tick(move |_, _, _| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    });
}

fn main() {}
