use netsock::{Events, ItemStream, Socket};

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    #[request(upload = u64, response = u64)]
    Total,
}

fn register(socket: &Socket<Api>) {
    // The handler's upload is an `ItemStream<u64>`, not of `String`.
    socket.on_total(|_words: ItemStream<String>| async move { 0u64 });
}

async fn call(socket: &Socket<Api>) {
    // The upload's items are `u64`s.
    let _ = socket.total(futures_util::stream::iter(["a"])).await;
}

fn main() {}
