//! The seed's greeting server and client over TCP, on 127.0.0.1:3000.
//!
//! ```text
//! cargo run --example hello_tcp              # server and client in one process
//! cargo run --example hello_tcp -- server    # terminal 1
//! cargo run --example hello_tcp -- client    # terminal 2
//! ```

mod hello;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    hello::main(netsock::Addr::from(3000)).await
}
