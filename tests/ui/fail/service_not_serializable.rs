struct Handle;

#[netsock::service]
trait Store {
    async fn open(&self, path: String) -> Handle;
    async fn close(&self, handle: Handle);
}

fn main() {}
