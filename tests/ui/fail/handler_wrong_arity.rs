use netsock::{Events, Socket};

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    Message { text: String, total_clients: usize },
}

fn register(socket: &Socket<Api>) {
    // The fields come as separate arguments, not as one struct.
    socket.on_message(|message| async move { drop(message) });
}

fn main() {}
