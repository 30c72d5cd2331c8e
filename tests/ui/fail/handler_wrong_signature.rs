use netsock::{Events, Socket};

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    Message {
        text: String,
        total_clients: usize,
    },
    #[request(response = i64)]
    Sum(Vec<i64>),
}

fn register(socket: &Socket<Api>) {
    // Forgot `async`: returns `()`, not a future.
    socket.on_message(|text, total| println!("{text} {total}"));
    // The reply has the wrong type.
    socket.on_sum(|numbers| async move { numbers.len() });
}

fn main() {}
