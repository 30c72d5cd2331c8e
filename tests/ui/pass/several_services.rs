//! Several services on one server, over one connection, with
//! `#[derive(Services)]`; the combined schema and variant list.

use netsock::service::{Embeds, Service, Services};
use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};

#[netsock::service]
trait Sum {
    async fn sum(&self, numbers: Vec<i64>) -> i64;
    async fn count(&self) -> u32;
}

#[netsock::service]
trait Echo {
    async fn echo(&self, text: String) -> String;
}

#[derive(Services, Serialize, Deserialize)]
enum Backend {
    Sum(SumRequest),
    Echo(EchoRequest),
}

struct Impl;

impl Sum for Impl {
    async fn sum(&self, numbers: Vec<i64>) -> i64 {
        numbers.iter().sum()
    }
    async fn count(&self) -> u32 {
        2
    }
}

impl Echo for Impl {
    async fn echo(&self, text: String) -> String {
        text
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(
        Backend::SCHEMA,
        "Backend{Sum:SumRequest{Sum{numbers:Vec<i64>}->i64,Count->u32},\
         Echo:EchoRequest{Echo{text:String}->String}}"
    );
    let names: Vec<&str> = Backend::VARIANTS.iter().map(|v| v.name).collect();
    assert_eq!(names, ["Sum", "Count", "Echo"]);
    assert_eq!(<Backend as Embeds<EchoRequest>>::OFFSET, 2);
    let echo = Backend::wrap(EchoRequest::Echo {
        text: String::new(),
    });
    assert_eq!(echo.variant_index(), 2);

    let server = Server::<Backend>::bind(0).await?;
    (SumServer::new(Impl), EchoServer::new(Impl)).attach(&server);
    server.spawn();
    let socket = Socket::<Backend>::connect(server.local_addr()).await?;
    let sum = SumClient::new(socket.clone());
    let echo = EchoClient::new(socket);
    assert_eq!(sum.sum(vec![1, 2, 3, 4, 5, 6]).await?, 21);
    assert_eq!(sum.count().await?, 2);
    assert_eq!(echo.echo("hi".into()).await?, "hi");

    // A service registered by hand, from a custom on_connection.
    let server = Server::<Backend>::bind(0).await?;
    let summing = SumServer::new(Impl);
    server.on_connection(move |socket: Socket<Backend>| {
        summing.register(&socket);
        async { Ok(()) }
    });
    server.spawn();
    let socket = Socket::<Backend>::connect(server.local_addr()).await?;
    assert_eq!(SumClient::new(socket.clone()).sum(vec![2]).await?, 2);
    let missing = EchoClient::new(socket).echo("x".into()).await;
    assert!(matches!(missing, Err(netsock::CallError::NoHandler { .. })));
    Ok(())
}
