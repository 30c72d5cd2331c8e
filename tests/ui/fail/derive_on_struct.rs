use netsock::Events;

#[derive(Events, serde::Serialize, serde::Deserialize)]
struct Message {
    text: String,
}

fn main() {}
