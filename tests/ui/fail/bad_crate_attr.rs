use netsock::Events;

#[derive(Events, serde::Serialize, serde::Deserialize)]
#[netsock(crate = "not a path", rename = "x")]
enum Api {
    Ping,
}

#[netsock::service(krate = "::netsock")]
trait Svc {
    async fn ping(&self);
}

fn main() {}
