use netsock::Events;

struct NotSerde;

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    // An upload alone: what does the request answer?
    #[request(upload = u64)]
    Lonely(u32),
    // One upload type.
    #[request(upload = u64, upload = u32, response = u64)]
    Twice(u32),
    // An upload needs its item type.
    #[request(upload, response = u64)]
    Untyped(u32),
}

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Other {
    // The uploaded items must travel.
    #[request(upload = NotSerde, response = u64)]
    Opaque(u32),
}

#[netsock::service]
trait Archive {
    // The upload comes last.
    async fn store(&self, chunks: netsock::ItemStream<Vec<u8>>, name: String) -> u64;
}

fn main() {}
