use netsock::Events;

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    #[request]
    Sum(Vec<i64>),
    #[request()]
    Max(Vec<i64>),
}

fn main() {}
