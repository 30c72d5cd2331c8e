//! [`Server::spawn`] and the [`Running`] server it returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};

use crate::error::{Error, Result};
use crate::events::Events;
use crate::server::Server;

impl<In: Events, Out: Events> Server<In, Out> {
    /// Runs the server in a tokio task of its own: [`run`](Server::run) in
    /// the background. Returns at once, with the listener already taken
    /// over by that run: a [`close`](Server::close) right after `spawn`
    /// stops it cleanly. If the server is already running or closed, the
    /// task ends at once with [`Error::AlreadyRunning`].
    ///
    /// The [`Running`] it returns is for whoever wants to know how `run`
    /// ended: await it for `run`'s result, or stop the server and wait for
    /// it with [`Running::shutdown`] or [`Running::close`]. Dropping it
    /// does **not** stop the server: `io.spawn();` on its own serves until
    /// [`close`](Server::close) or [`shutdown`](Server::shutdown) is called
    /// on any clone of the server.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { #[request(response = i64)] Sum(Vec<i64>) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// let io = Server::<Api>::bind(0).await?;
    /// io.on_connection(|socket: Socket<Api>| async move {
    ///     socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
    ///     Ok(())
    /// });
    /// let running = io.spawn();
    ///
    /// let socket = Socket::<Api>::connect(io.local_addr()).await?;
    /// assert_eq!(socket.sum(vec![1, 2, 3]).await?, 6);
    /// // Closes every connection, then waits for `run` and returns its result.
    /// running.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn(&self) -> Running<In, Out> {
        // The listener is claimed here, not in the task: a `close` right
        // after `spawn` then stops this run (`Ok(())`) rather than leaving
        // the task to find the listener gone (`AlreadyRunning`).
        let claimed = self.claim_listener();
        let server = self.clone();
        let task = tokio::spawn(async move { server.accept_loop(claimed?).await });
        Running {
            server: self.clone(),
            task,
        }
    }
}

/// A server running in a task of its own, returned by [`Server::spawn`].
///
/// Await it for the result of [`run`](Server::run): `Ok(())` once the
/// server was closed, [`Error::AlreadyRunning`] if it was already running
/// or closed, or [`Error::ServerTask`] if the task panicked or was
/// cancelled (its runtime shut down): awaiting it never panics.
/// [`shutdown`](Running::shutdown) and [`close`](Running::close) stop the
/// server and then wait for it.
///
/// Dropping a `Running` does not stop the server (as dropping a
/// `tokio::task::JoinHandle` does not stop its task): fire and forget with
/// `io.spawn();` and stop it later through any clone of the [`Server`].
///
/// It is called `Running`, not `ServerHandle`, because [`Server`] itself is
/// already the handle (cheap to clone, everything is done through it) and
/// `Handle` names the traits that register handlers; this one only stands
/// for the running of the server, as `let running = io.spawn()` reads.
///
/// ```
/// # use netsock::{Events, Server};
/// # use std::time::Duration;
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> netsock::Result<()> {
/// let io = Server::<Api>::bind(0).await?;
/// let running = io.spawn();
/// // ... serve ...
/// // Lets the requests being handled finish for up to 5 s, closes every
/// // connection, and returns what `run` returned.
/// running.shutdown(Duration::from_secs(5)).await?;
/// # Ok(())
/// # }
/// ```
pub struct Running<In: Events, Out: Events = In> {
    server: Server<In, Out>,
    task: JoinHandle<Result<()>>,
}

impl<In: Events, Out: Events> Running<In, Out> {
    /// [Shuts the server down](Server::shutdown) with `grace` for the
    /// requests in flight, then waits for [`run`](Server::run) to return and
    /// returns its result.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # use std::time::Duration;
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # async fn f(io: Server<Api>) -> netsock::Result<()> {
    /// let running = io.spawn();
    /// running.shutdown(Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(self, grace: Duration) -> Result<()> {
        self.server.shutdown(grace).await;
        self.await
    }

    /// [Closes the server](Server::close), then waits for
    /// [`run`](Server::run) to return and returns its result.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # async fn f(io: Server<Api>) -> netsock::Result<()> {
    /// let running = io.spawn();
    /// running.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(self) -> Result<()> {
        self.server.close().await;
        self.await
    }

    /// Whether [`run`](Server::run) has returned (or its task ended), so
    /// that awaiting this would not wait.
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> netsock::Result<()> {
    /// let io = Server::<Api>::bind(0).await?;
    /// let running = io.spawn();
    /// assert!(!running.is_finished());
    /// # running.close().await
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Resolves to what [`run`](Server::run) returned, or to
/// [`Error::ServerTask`] if its task panicked or was cancelled.
impl<In: Events, Out: Events> Future for Running<In, Out> {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.task)
            .poll(cx)
            .map(|joined| match joined {
                Ok(result) => result,
                Err(err) => Err(task_error(err)),
            })
    }
}

impl<In: Events, Out: Events> fmt::Debug for Running<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("local_addr", self.server.local_addr())
            .field("finished", &self.task.is_finished())
            .finish()
    }
}

/// The error for a server task that ended without `run` returning.
fn task_error(err: JoinError) -> Error {
    let reason = match err.try_into_panic() {
        Ok(panic) => match panic.downcast::<String>() {
            Ok(message) => format!("it panicked: {message}"),
            Err(panic) => match panic.downcast::<&str>() {
                Ok(message) => format!("it panicked: {message}"),
                Err(_) => "it panicked".to_owned(),
            },
        },
        Err(_) => "it was cancelled (was its runtime shut down?)".to_owned(),
    };
    Error::ServerTask { reason }
}
