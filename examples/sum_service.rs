//! The sum-numbers service again, declared as a trait with
//! `#[netsock::service]` instead of an events enum.
//!
//! ```text
//! cargo run --example sum_service
//! ```
//!
//! Serves `SumNumbers` on a Unix socket in a temporary directory, calls
//! `sum([1..6])` through the generated client, prints `21`, and stops.

use netsock::service::Context;

// ANCHOR: service
/// What the sum-numbers service offers.
#[netsock::service]
trait SumNumbers {
    /// Adds the numbers.
    async fn sum(&self, numbers: Vec<i64>) -> i64;

    /// Adds the numbers, refusing to overflow: the service's own error
    /// reaches the client apart from transport errors.
    async fn checked_sum(&self, numbers: Vec<i64>) -> Result<i64, String>;

    /// Greets the caller by its connection id: a method may ask for the
    /// caller's context; the client's method does not take it.
    async fn hello(&self, ctx: &Context) -> String;
}

/// The implementation: plain `async fn`s.
struct Summer;

impl SumNumbers for Summer {
    async fn sum(&self, numbers: Vec<i64>) -> i64 {
        numbers.iter().sum()
    }

    async fn checked_sum(&self, numbers: Vec<i64>) -> Result<i64, String> {
        numbers
            .iter()
            .try_fold(0i64, |total, n| total.checked_add(*n))
            .ok_or_else(|| "the sum overflows i64".to_owned())
    }

    async fn hello(&self, ctx: &Context) -> String {
        format!("hello, connection {}", ctx.id())
    }
}
// ANCHOR_END: service

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("netsock-sum-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("sum_numbers.sock");

    // ANCHOR: serve
    let server = SumNumbersServer::new(Summer).bind(&path).await?;
    let running = server.spawn();
    // ANCHOR_END: serve

    // ANCHOR: call
    let client = SumNumbersClient::connect(&path).await?;
    let total = client.sum(vec![1, 2, 3, 4, 5, 6]).await?;
    println!("{total}");
    // ANCHOR_END: call

    assert_eq!(client.checked_sum(vec![1, 2]).await?, Ok(3));
    assert!(client.checked_sum(vec![i64::MAX, 1]).await?.is_err());
    assert!(client.hello().await?.starts_with("hello, connection"));

    client.socket().close().await;
    // ANCHOR: stop
    // Closes the server, then returns what `run()` returned. Or
    // `running.shutdown(grace)`, to let requests in flight finish first.
    running.close().await?;
    // ANCHOR_END: stop
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
