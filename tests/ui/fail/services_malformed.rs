use netsock::service::Services;

#[netsock::service]
trait Sum {
    async fn sum(&self, numbers: Vec<i64>) -> i64;
}

#[derive(Services, serde::Serialize, serde::Deserialize)]
enum Backend {
    Sum(SumRequest),
    Again(SumRequest),
    Two(SumRequest, SumRequest),
    Unit,
}

#[derive(Services)]
struct NotAnEnum(SumRequest);

fn main() {}
