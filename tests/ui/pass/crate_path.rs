//! `crate = ".."` names netsock by another path, e.g. a re-export.

mod reexport {
    pub use ::netsock as ns;
}

#[derive(crate::reexport::ns::Events, serde::Serialize, serde::Deserialize)]
#[netsock(crate = "crate::reexport::ns")]
enum Api {
    #[request(response = i64)]
    Sum(Vec<i64>),
}

#[crate::reexport::ns::service(crate = "crate::reexport::ns")]
trait Summing {
    async fn sum(&self, numbers: Vec<i64>) -> i64;
}

#[allow(dead_code)]
async fn uses(socket: netsock::Socket<Api>) -> Result<i64, netsock::CallError> {
    socket.sum(vec![1]).await
}

fn main() {
    use netsock::Events;
    assert_eq!(Api::SCHEMA, "Api{Sum(Vec<i64>)->i64}");
    assert_eq!(
        SummingRequest::SCHEMA,
        "SummingRequest{Sum{numbers:Vec<i64>}->i64}"
    );
}
