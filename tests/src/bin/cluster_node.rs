//! A cluster node in a process of its own, for `tests/tests/redis_cluster.rs`.
//!
//! ```text
//! cluster_node REDIS_URL
//! ```
//!
//! Binds a TCP port, prints `listening ADDR node N`, then serves
//! [`tests::cluster::Api`] until stdin closes (or it is killed).

use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: cluster_node REDIS_URL")?;
    let io = tests::cluster::node(&url, netsock::Addr::tcp("127.0.0.1", 0)).await?;
    println!(
        "listening {} node {}",
        io.local_addr(),
        io.cluster().node().0
    );
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    io.close().await;
    Ok(())
}
