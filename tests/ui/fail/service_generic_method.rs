#[netsock::service]
trait Store {
    async fn put<T: serde::Serialize>(&self, value: T);
    async fn get<'a>(&self, key: String) -> String;
}

fn main() {}
