use netsock::Events;

struct NotSerde;

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    // One reply or a stream, not both.
    #[request(stream = u64, response = u64)]
    Both(u32),
    // A stream needs its item type.
    #[request(stream)]
    Untyped(u32),
    #[request(streams = u64)]
    Misspelt(u32),
}

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Other {
    // The items must travel.
    #[request(stream = NotSerde)]
    Opaque(u32),
}

fn main() {}
