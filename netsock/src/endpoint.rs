//! The traits generated methods are written against, so that one generated
//! `emit_message` works on a [`Socket`](crate::Socket), a [`Server`](crate::Server) and any other target
//! that can send a `Chat` event: [`Endpoint`] and [`Emit`], public, and
//! [`Call`] and [`Receive`], which only generated code uses (through
//! `netsock::__private`).

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{CallError, Result};
use crate::events::Events;
use crate::handler::{EventOutcome, StreamItem};

/// Something that can send events of type `E`: a [`Socket`](crate::Socket) sending `E`, a
/// [`Server`](crate::Server) (to every client), or a [`Broadcast`](crate::Broadcast) (to
/// its sockets).
///
/// ```
/// # use netsock::{Events, Server, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
/// use netsock::Emit;
///
/// /// Works with a socket, a server (every client) and a room alike.
/// async fn announce(to: &impl Emit<Api>) -> netsock::Result<()> {
///     to.emit(Api::Log("deploying".into())).await
/// }
///
/// async fn everywhere(socket: &Socket<Api>, io: &Server<Api>) -> netsock::Result<()> {
///     announce(socket).await?;
///     announce(io).await?;
///     announce(&io.to("ops")).await
/// }
/// ```
pub trait Emit<E: Events> {
    /// Sends `event`; see [`Socket::emit`](crate::Socket::emit), [`Server::emit`](crate::Server::emit) and
    /// [`Broadcast::emit`](crate::Broadcast::emit).
    fn emit(&self, event: E) -> impl Future<Output = Result<()>> + Send;
}

/// What can make a request of type `E` and wait for its one reply: a
/// [`Socket`](crate::Socket) sending `E`. The request methods generated in
/// `{Enum}Emit` call it. Not public API (it is reached through
/// `netsock::__private`): users call the generated methods, or
/// [`Socket::request`](crate::Socket::request).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot make `{E}` requests and wait for one reply: only a `Socket` can",
    label = "not a socket",
    note = "to ask several sockets at once and get each one's reply, use `Broadcast::request`, e.g. `io.to(room).request(..)`"
)]
pub trait Call<E: Events> {
    /// Sends the request variant `event` and decodes the reply as `R`; see
    /// [`Socket::request`](crate::Socket::request).
    fn request<R: DeserializeOwned + Send + 'static>(
        &self,
        event: E,
    ) -> impl Future<Output = std::result::Result<R, CallError>> + Send;
}

/// What receives events of type `E` and answers its requests: a
/// [`Socket`](crate::Socket) receiving `E`. The `on_*` methods generated in
/// `{Enum}Handle` register their handlers through it, by the variant's
/// index in [`Events::VARIANTS`]. Not public API (it is reached through
/// `netsock::__private`): an index is easy to get wrong, a generated
/// method is not.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot handle incoming `{E}` events itself: only a `Socket` has handlers",
    label = "not a socket",
    note = "a server registers handlers on each of its sockets, in `on_connection`: `io.on_connection(|socket| async move {{ socket.on_x(..); Ok(()) }})`"
)]
pub trait Receive<E: Events> {
    /// Registers the handler for the event variant at index `variant`,
    /// replacing any earlier one. An index out of range registers nothing
    /// and is logged as an error: generated code gives one only through a
    /// hand-written `Embeds` whose `OFFSET` is wrong.
    fn on_event<F, Fut>(&self, variant: u32, handler: F)
    where
        F: Fn(E) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: EventOutcome;

    /// As [`on_event`](Receive::on_event), for a handler that also takes
    /// the socket (a handle that does not keep it alive).
    fn on_event_with<F, Fut>(&self, variant: u32, handler: F)
    where
        Self: Sized,
        F: Fn(Self, E) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: EventOutcome;

    /// As [`on_request`](Receive::on_request), for a handler that also
    /// takes the socket.
    fn on_request_with<R, F, Fut>(&self, variant: u32, handler: F)
    where
        Self: Sized,
        R: Serialize + 'static,
        F: Fn(Self, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static;

    /// The next event of the variant at index `variant`, taken before its
    /// handler would see it; fails when the socket closes for good first.
    fn once_event(&self, variant: u32) -> impl Future<Output = Result<E>> + Send;

    /// Registers the handler for the request variant at index `variant`;
    /// the value of its future is the reply. Out of range: as
    /// [`on_event`](Receive::on_event).
    fn on_request<R, F, Fut>(&self, variant: u32, handler: F)
    where
        R: Serialize + 'static,
        F: Fn(E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static;

    /// Registers the handler for the stream request variant at index
    /// `variant`: its future gives the stream of items (`T`, or
    /// `Result<T, E>`: see [`StreamItem`]). Out of range: as
    /// [`on_event`](Receive::on_event).
    fn on_stream<T, M, S, F, Fut>(&self, variant: u32, handler: F)
    where
        T: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: StreamItem<T, M>,
        F: Fn(E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static;

    /// As [`on_stream`](Receive::on_stream), for a handler that also takes
    /// the socket.
    fn on_stream_with<T, M, S, F, Fut>(&self, variant: u32, handler: F)
    where
        Self: Sized,
        T: Serialize + 'static,
        M: 'static,
        S: futures_util::Stream + Send + 'static,
        S::Item: StreamItem<T, M>,
        F: Fn(Self, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static;
}

/// What an endpoint receives and sends. Generated traits are implemented for
/// every endpoint whose `Out` (for `{Enum}Emit`) or `In` (for
/// `{Enum}Handle`) is their enum, so two enums with the same variant names
/// never make a method call ambiguous.
///
/// ```
/// # use netsock::{Events, Server, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
/// use netsock::Endpoint;
///
/// /// The names of the variants `endpoint` sends.
/// fn sends<E: Endpoint>(_endpoint: &E) -> Vec<&'static str> {
///     <E::Out as Events>::VARIANTS.iter().map(|v| v.name).collect()
/// }
///
/// fn check(io: &Server<Api>) {
///     assert_eq!(sends(io), ["Log", "Sum"]);
/// }
/// ```
pub trait Endpoint {
    /// The event enum this endpoint receives.
    type In: Events;
    /// The event enum this endpoint sends.
    type Out: Events;
}
