use netsock::{Events, Socket};

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    Message(String),
}

fn register(socket: &Socket<Api>) {
    // An event handler gives `()` or `Result<(), E>`, not a value.
    socket.on_message(|text| async move { text.len() });
}

fn main() {}
