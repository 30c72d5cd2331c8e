#[netsock::service]
trait Store {
    fn put(&self, value: String);
    async fn name(&self, key: &str) -> String;
    async fn connect(&self);
    async fn get_user(&self);
    async fn getUser(&self);
    const LIMIT: usize;
}

fn main() {}
