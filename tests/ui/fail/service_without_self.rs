#[netsock::service]
trait SumNumbers {
    async fn sum(numbers: Vec<i64>) -> i64;
    async fn take(self) -> i64;
    async fn reset(&mut self);
}

fn main() {}
