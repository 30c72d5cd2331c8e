//! The deadline a caller gave its request, readable in the handler.

use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// The instant by which the caller of the request being handled stops
/// waiting, if it said (netsock callers always do: their timeout travels in
/// the request). `None` outside a request handler, or when the caller set no
/// timeout. A handler with slow work can give up early, or pass the deadline
/// on to its own calls. When the caller gives up, its handler is dropped
/// anyway (the caller sends `Cancel`).
///
/// ```
/// use netsock::{Events, Server, Socket};
/// use std::time::Duration;
///
/// #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// enum Api {
///     #[request(response = u64)]
///     Budget,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> netsock::Result<()> {
/// let io = Server::<Api>::bind(0).await?;
/// io.on_connection(|socket: Socket<Api>| async move {
///     // Replies with how many milliseconds the caller will wait.
///     socket.on_budget(|| async {
///         let left = netsock::deadline().map(|d| d.saturating_duration_since(std::time::Instant::now()));
///         left.map_or(0, |d| d.as_millis() as u64)
///     });
///     Ok(())
/// });
/// io.spawn();
/// let socket = Socket::<Api>::connect(io.local_addr()).await?;
/// let left = socket.timeout(Duration::from_secs(3)).budget().await?;
/// assert!(left > 0 && left <= 3000, "{left}");
/// assert!(netsock::deadline().is_none()); // not in a handler
/// # io.close().await;
/// # Ok(())
/// # }
/// ```
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok().flatten()
}

/// Runs `work` with the deadline of a request that arrived at `arrived` and
/// whose caller waits `timeout_ms` (0: no deadline). The scope's future
/// itself, not an `async fn` around it, which would move `work` (a
/// request's whole state) once more when first polled.
pub(crate) fn with_deadline<F: std::future::Future>(
    arrived: Instant,
    timeout_ms: u32,
    work: F,
) -> impl std::future::Future<Output = F::Output> {
    let deadline = (timeout_ms > 0).then(|| arrived + Duration::from_millis(u64::from(timeout_ms)));
    DEADLINE.scope(deadline, work)
}
