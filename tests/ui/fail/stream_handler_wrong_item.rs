use futures_util::stream;
use netsock::{Events, Socket};

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    #[request(stream = u64)]
    Count(u64),
}

fn register(socket: &Socket<Api>) {
    // Items of the wrong type.
    socket.on_count(|n| async move { stream::iter(vec!["x"; n as usize]) });
    // Not a stream at all.
    socket.on_count(|n| async move { n });
}

async fn call(socket: &Socket<Api>) {
    // The stub gives a stream, not one value.
    let _: Result<u64, netsock::CallError> = socket.count(3).await;
}

fn main() {}
