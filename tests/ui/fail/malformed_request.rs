use netsock::Events;

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    #[request(responce = i64)]
    Sum(Vec<i64>),
    #[request(response = 1 + 2)]
    Max(Vec<i64>),
    #[request = "i64"]
    Min(Vec<i64>),
    #[request(response = i64, response = u64)]
    Avg(Vec<i64>),
}

fn main() {}
