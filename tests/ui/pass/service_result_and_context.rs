//! A method returning `Result<T, E>` (the client sees `E` inside the
//! transport's `Result`), the optional context parameter, a default body,
//! a unit return, and the service's state shared by every connection.

use std::sync::atomic::{AtomicU64, Ordering};

use netsock::service::Context;
use netsock::CallError;
use serde::{Deserialize, Serialize};

#[derive(netsock::Describe, Serialize, Deserialize, Debug, PartialEq)]
pub enum MathError {
    DivideByZero,
}

/// A documented service.
#[netsock::service]
pub trait Math {
    /// Divides.
    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
    /// Who is calling.
    async fn whoami(&self, ctx: &Context, greeting: String) -> String;
    /// Counts calls.
    async fn bump(&self);
    /// Has a default.
    async fn answer(&self) -> u8 {
        42
    }
    /// Reads the counter.
    async fn bumps(&self) -> u64;
}

#[derive(Default)]
struct Calc {
    bumps: AtomicU64,
}

impl Math for Calc {
    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError> {
        a.checked_div(b).ok_or(MathError::DivideByZero)
    }
    async fn whoami(&self, ctx: &Context, greeting: String) -> String {
        format!("{greeting} {}", ctx.id())
    }
    async fn bump(&self) {
        self.bumps.fetch_add(1, Ordering::Relaxed);
    }
    async fn bumps(&self) -> u64 {
        self.bumps.load(Ordering::Relaxed)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = MathServer::new(Calc::default()).bind(0).await?;
    server.spawn();
    let client = MathClient::connect(server.local_addr()).await?;
    let ok: Result<Result<i64, MathError>, CallError> = client.div(6, 3).await;
    assert_eq!(ok, Ok(Ok(2)));
    assert_eq!(client.div(1, 0).await?, Err(MathError::DivideByZero));
    let id = client.socket().id();
    assert_eq!(client.whoami("hi".into()).await?, format!("hi {id}"));
    client.bump().await?;
    let other = MathClient::connect(server.local_addr()).await?;
    other.bump().await?;
    assert_eq!(client.bumps().await?, 2);
    assert_eq!(client.answer().await?, 42);
    server.close().await;
    Ok(())
}
