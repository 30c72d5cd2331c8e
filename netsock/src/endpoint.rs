//! The traits generated methods are written against, so that one generated
//! `emit_message` works on a [`Socket`](crate::Socket), a [`Server`](crate::Server) and any other target
//! that can send a `Chat` event.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{CallError, Result};
use crate::events::Events;

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

/// Something that can make requests of type `E` and wait for one reply.
///
/// ```
/// # use netsock::{Events, Server, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
/// use netsock::{CallError, Request};
///
/// async fn total(peer: &impl Request<Api>, numbers: Vec<i64>) -> Result<i64, CallError> {
///     peer.request(Api::Sum(numbers)).await
/// }
/// ```
pub trait Request<E: Events> {
    /// Sends the request variant `event` and decodes the reply as `R`; see
    /// [`Socket::request`](crate::Socket::request).
    fn request<R: DeserializeOwned + Send + 'static>(
        &self,
        event: E,
    ) -> impl Future<Output = std::result::Result<R, CallError>> + Send;
}

/// Something that handles incoming events of type `E`: a [`Socket`](crate::Socket)
/// receiving `E`.
///
/// ```
/// # use netsock::{Events, Server, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
/// use netsock::Handle;
///
/// /// Prints every `Log` event (variant 0 of `Api`) the endpoint receives.
/// fn print_logs(endpoint: &impl Handle<Api>) {
///     endpoint.on(0, |event: Api| async move { println!("{event:?}") });
/// }
/// ```
pub trait Handle<E: Events> {
    /// See [`Socket::on`](crate::Socket::on).
    fn on<F, Fut>(&self, variant: u32, handler: F)
    where
        F: Fn(E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static;

    /// See [`Socket::on_request`](crate::Socket::on_request).
    fn on_request<R, F, Fut>(&self, variant: u32, handler: F)
    where
        R: Serialize + 'static,
        F: Fn(E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static;
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
