//! The seed's greeting server and client over a Unix domain socket at
//! `/tmp/netsock-hello.sock`.
//!
//! ```text
//! cargo run --example hello_unix              # server and client in one process
//! cargo run --example hello_unix -- server    # terminal 1
//! cargo run --example hello_unix -- client    # terminal 2
//! ```

mod hello;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    hello::main(netsock::Addr::unix("/tmp/netsock-hello.sock")).await
}
