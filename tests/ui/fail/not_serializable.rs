use netsock::Events;

struct NotSerde;

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    #[request(response = NotSerde)]
    Make,
    Stamp(std::time::Instant),
}

fn main() {}
