use netsock::Events;

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Nothing {}

fn main() {}
