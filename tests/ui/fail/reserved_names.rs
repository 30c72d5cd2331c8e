use netsock::Events;

// Every reserved name in one compile: the errors are collected.
#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    #[request(response = ())]
    Close,
    Error(String),
    Disconnect,
    #[request(response = u64)]
    Id,
    Fine,
}

fn main() {}
