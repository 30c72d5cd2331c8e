//! A service over TCP: client from an address and from a socket, server from
//! `bind` and from `attach`.

use netsock::Server;

#[netsock::service]
trait SumNumbers {
    async fn sum(&self, numbers: Vec<i64>) -> i64;
    async fn count(&self) -> usize;
}

struct Summer;

impl SumNumbers for Summer {
    async fn sum(&self, numbers: Vec<i64>) -> i64 {
        numbers.iter().sum()
    }
    async fn count(&self) -> usize {
        7
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = SumNumbersServer::new(Summer).bind(0).await?;
    server.spawn();
    let client = SumNumbersClient::connect(server.local_addr()).await?;
    assert_eq!(client.sum(vec![1, 2, 3, 4, 5, 6]).await?, 21);
    assert_eq!(client.count().await?, 7);
    server.close().await;

    let server = Server::<SumNumbersRequest>::bind(0).await?;
    SumNumbersServer::new(Summer).attach(&server);
    server.spawn();
    let socket = netsock::Socket::<SumNumbersRequest>::connect(server.local_addr()).await?;
    let client = SumNumbersClient::new(socket);
    let fast = client.timeout(std::time::Duration::from_secs(5));
    assert_eq!(fast.sum(vec![2, 2]).await?, 4);
    server.close().await;
    Ok(())
}
