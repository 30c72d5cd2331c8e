//! A Redis [`Driver`] for netsock: several netsock servers (nodes) act as
//! one through Redis pub/sub (Valkey works alike).
//!
//! ```no_run
//! use netsock::adapter::Adapter;
//! use netsock::{Events, Server, Socket};
//! use netsock_redis::RedisDriver;
//!
//! #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
//! enum Chat { Line(String) }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Every server process of the application does this, on its own port.
//! let redis = RedisDriver::connect("redis://127.0.0.1:6379").await?;
//! let io = Server::<Chat>::builder()
//!     .adapter(Adapter::new(redis).name("chat"))
//!     .bind(3000)
//!     .await?;
//! io.on_connection(|socket: Socket<Chat>| async move {
//!     socket.join("lobby");
//!     let me = socket.clone();
//!     socket.on_line(move |line| {
//!         let me = me.clone();
//!         // Reaches the lobby's members on every server.
//!         async move { let _ = me.to("lobby").emit_line(line).await; }
//!     });
//!     Ok(())
//! });
//! io.run().await?;
//! # Ok(()) }
//! ```
//!
//! # How it uses Redis
//!
//! * Two connections per node: one multiplexed connection that publishes
//!   (a batch of queued messages goes as one pipeline of `PUBLISH`
//!   commands), and one in subscriber mode on two channels, `NAME#all`
//!   (broadcasts, heartbeats, requests) and `NAME#node#N` (replies and
//!   messages for node `N` alone). `NAME` is the adapter's
//!   [`name`](netsock::adapter::Adapter::name).
//! * Node numbers come from `INCR NAME#nodes`: unique as long as Redis
//!   keeps that key. A Redis without persistence that restarts forgets it,
//!   and a node started after the restart may get the number of a live one
//!   (their socket ids could then collide): give such a Redis persistence,
//!   or restart the nodes with it.
//! * When Redis goes away, the publishing side fails the batch in hand
//!   (counted in
//!   [`ClusterMetrics::publish_failed`](netsock::adapter::ClusterMetrics::publish_failed))
//!   and connects again for the next one; the subscriber connects again
//!   with back-off (50 ms doubling to 1 s) and subscribes again. Local
//!   delivery never depends on Redis.
//! * Redis Cluster (sharded pub/sub) is not supported by this driver: it
//!   speaks to one Redis (or one Valkey, or one endpoint of a proxy).
//!
//! # Why the `redis` crate
//!
//! [`redis`](https://docs.rs/redis) (redis-rs) is the most used Redis
//! client for Rust, speaks to Redis over TCP and Unix sockets, has
//! pipelines and a subscriber connection as a `Stream`, and, with its
//! default features off, adds few dependencies. `fred` does more (its own
//! reconnection policies, cluster and sentinel routing, RESP3 everywhere),
//! but netsock needs to see each lost connection and each failed publish
//! to count them, which is simpler with the plain connections of `redis`
//! than through `fred`'s automatic reconnection; and netsock's own
//! heartbeats already tell which nodes are alive. Another engine (NATS,
//! `fred`) is another implementation of [`Driver`], with no change to
//! netsock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use netsock::adapter::{BoxFuture, Driver, Inbox, Outgoing};
use netsock::ClusterError;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::AsyncCommands;
use tokio::sync::Mutex;

/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The subscriber's back-off between attempts to connect again.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

/// A netsock [`Driver`] over one Redis server (or Valkey), with the
/// [`redis`] crate.
///
/// ```no_run
/// # async fn f() -> Result<(), netsock::ClusterError> {
/// use netsock_redis::RedisDriver;
/// let tcp = RedisDriver::connect("redis://127.0.0.1:6379").await?;
/// let unix = RedisDriver::connect("redis+unix:///run/redis/redis.sock").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisDriver {
    client: redis::Client,
    /// The publishing connection; none after a failure, until the next
    /// publish connects again.
    publisher: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl std::fmt::Debug for RedisDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDriver")
            .field("redis", &self.client.get_connection_info().addr)
            .finish_non_exhaustive()
    }
}

impl RedisDriver {
    /// Connects to the Redis at `url` (`redis://host:port`,
    /// `redis+unix:///path/to/redis.sock`; see [`redis::Client::open`]).
    /// Fails if Redis does not answer.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), netsock::ClusterError> {
    /// let redis = netsock_redis::RedisDriver::connect("redis://127.0.0.1:6379").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url).map_err(driver_error)?;
        Self::with_client(client).await
    }

    /// A driver over an already configured [`redis::Client`]. Fails if Redis
    /// does not answer.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), netsock::ClusterError> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    /// let redis = netsock_redis::RedisDriver::with_client(client).await?;
    /// # Ok(()) }
    /// ```
    pub async fn with_client(client: redis::Client) -> Result<Self, ClusterError> {
        let conn = publisher(&client).await?;
        Ok(RedisDriver {
            client,
            publisher: Arc::new(Mutex::new(Some(conn))),
        })
    }

    /// The publishing connection, connecting again if the last one failed.
    async fn connection(&self) -> Result<MultiplexedConnection, ClusterError> {
        let mut slot = self.publisher.lock().await;
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        let conn = publisher(&self.client).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the publishing connection after a failure.
    async fn drop_connection(&self) {
        *self.publisher.lock().await = None;
    }
}

async fn publisher(client: &redis::Client) -> Result<MultiplexedConnection, ClusterError> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(driver_error)
}

async fn subscriber(client: &redis::Client, channels: &[String]) -> Result<PubSub, ClusterError> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channels).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(result) => result.map_err(driver_error),
        Err(_) => Err(ClusterError::Driver(format!(
            "no answer from Redis within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

fn driver_error(e: redis::RedisError) -> ClusterError {
    ClusterError::Driver(format!("redis: {e}"))
}

impl Driver for RedisDriver {
    fn node_number<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<u32, ClusterError>> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let n: u64 = conn
                .incr(format!("{cluster}#nodes"), 1)
                .await
                .map_err(driver_error)?;
            // 1 ..= 2^24 - 1
            Ok((n % ((1 << 24) - 1)) as u32 + 1)
        })
    }

    fn publish(&self, batch: Vec<Outgoing>) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let mut pipe = redis::pipe();
            for out in &batch {
                pipe.cmd("PUBLISH")
                    .arg(&*out.channel)
                    .arg(&out.message[..])
                    .ignore();
            }
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.drop_connection().await;
                    Err(driver_error(e))
                }
            }
        })
    }

    fn subscribe(
        &self,
        channels: Vec<String>,
        inbox: Inbox,
    ) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            let first = subscriber(&self.client, &channels).await?;
            tokio::spawn(listen(self.client.clone(), channels, inbox, first));
            Ok(())
        })
    }
}

/// Hands the subscription's messages to `inbox` until it closes, connecting
/// and subscribing again whenever the connection drops.
async fn listen(client: redis::Client, channels: Vec<String>, inbox: Inbox, first: PubSub) {
    let closed = inbox.closed();
    tokio::pin!(closed);
    let mut pubsub = first;
    loop {
        {
            let mut messages = pubsub.into_on_message();
            loop {
                tokio::select! {
                    () = &mut closed => return,
                    message = messages.next() => match message {
                        Some(message) => inbox.push(Bytes::copy_from_slice(message.get_payload_bytes())),
                        None => break,
                    },
                }
            }
        }
        inbox.lost_connection(&ClusterError::Driver(
            "redis: the subscriber's connection closed".into(),
        ));
        let mut backoff = BACKOFF.0;
        pubsub = loop {
            if inbox.is_closed() {
                return;
            }
            match subscriber(&client, &channels).await {
                Ok(pubsub) => break pubsub,
                Err(error) => {
                    tracing::debug!(%error, ?backoff, "redis: subscribing again failed; retrying");
                    tokio::select! {
                        () = &mut closed => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        };
        inbox.reconnected();
    }
}
