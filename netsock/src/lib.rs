//! # netsock
//!
//! Typed events and request/response calls between processes, over TCP or
//! Unix domain sockets, on tokio: the ease of net-socket.io, with types.
//!
//! Small programs that talk over sockets make an application out of
//! applications, each replaceable on its own; and since the [wire
//! format](frame) is a small documented protocol, the other side may be
//! written in another language.
//!
//! ```
//! use netsock::{Events, Server, Socket};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Events, Serialize, Deserialize, Debug)]
//! enum SumApi {
//!     #[request(response = i64)]
//!     Sum(Vec<i64>),
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> netsock::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("netsock-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let path = dir.join("sum.sock");
//! // The service: a Unix socket (or a port: `Server::bind(3000)`).
//! let io = Server::<SumApi>::bind(&path).await?;
//! io.on_connection(|socket: Socket<SumApi>| async move {
//!     socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
//!     Ok(())
//! });
//! io.spawn();
//!
//! // A caller: `connect` returns once the handshake is done.
//! let socket = Socket::<SumApi>::connect(&path).await?;
//! assert_eq!(socket.sum(vec![1, 2, 3, 4, 5, 6]).await?, 21);
//! io.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! Where things live: [`addr`] (what `bind`/`connect` accept), [`Server`],
//! [`Socket`], [`Events`] (what `#[derive(Events)]` implements), [`frame`] (the
//! wire protocol), [`error`], [`memory`] (connections inside one process, for
//! tests).

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adapter;
pub mod addr;
mod broadcast;
mod client;
mod config;
mod conn;
mod deadline;
mod endpoint;
pub mod error;
pub mod events;
pub mod handler;
mod metrics;
mod registry;
pub mod schema;
mod schema_diff;
mod selector;
mod server;
pub mod service;
mod socket;
mod sync;
mod throttle;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod wire;

pub use client::reconnect;
pub use wire::frame;

pub use addr::{Addr, IntoAddr, InvalidAddr};
pub use broadcast::Broadcast;
pub use client::reconnect::{Reconnect, Reconnected, SessionLoss};
pub use config::{Heartbeat, Recovery, SchemaCheck, SocketMode};
pub use conn::event_stream::EventStream;
pub use conn::streams::{ItemStream, Streaming};
pub use conn::{NodeId, SocketId};
pub use deadline::deadline;
pub use endpoint::{Emit, Endpoint};
pub use error::{
    CallError, ClusterError, CodecError, DisconnectReason, Error, MissReason, Result, SocketError,
    TlsError,
};
pub use events::{Events, SchemaId, Variant};
pub use metrics::{Rejects, ServerMetrics, SocketMetrics, Traffic};
pub use schema::Describe;
pub use selector::Except;
pub use server::cluster::ServerCluster;
pub use server::middleware::{Handshake, Refusal};
pub use server::running::Running;
pub use server::{Server, ServerBuilder};
pub use socket::{Socket, SocketBuilder, Volatile};
#[cfg(feature = "tls")]
pub use tls::{ClientTls, ServerTls, TlsIdentity, TlsRoots};
pub use transport::{memory, PeerAddr, PeerCert, PeerCred, SubjectAltName};
pub use wire::frame::{CloseReason, RejectReason};

/// Derives [`Events`] for an enum, plus the traits `{Enum}Emit` and
/// `{Enum}Handle`. `{Enum}Emit` gives typed `emit_x(fields..)` methods to every
/// [`Socket`], [`Server`] (to every client) and [`Broadcast`], and, for
/// `#[request(response = T)]` variants, `x(fields..) -> Result<T, CallError>`
/// to every [`Socket`]. `{Enum}Handle` gives typed
/// `on_x(|fields..| async move { .. })` methods to every [`Socket`] (a server
/// registers them on each socket in its `on_connection` handler). Handlers take
/// the variant's fields as separate arguments, in declaration order. Bring both
/// traits into scope when the enum lives in another module; use
/// `#[netsock(crate = "::renamed")]` for a renamed dependency. Full reference:
/// the `netsock-macros` crate documentation.
///
/// ```
/// use netsock::{Events, Socket};
///
/// #[derive(Events, serde::Serialize, serde::Deserialize)]
/// enum Chat {
///     Message { text: String },
///     #[request(response = usize)]
///     Count,
/// }
///
/// // `ChatEmit` and `ChatHandle` give every `Socket<Chat>` typed methods.
/// async fn use_it(socket: Socket<Chat>) -> netsock::Result<()> {
///     socket.on_message(|text| async move { println!("{text}") });
///     socket.on_count(|| async { 42 });
///     socket.emit_message("hi".into()).await?;
///     let n: usize = socket.count().await?;
///     Ok(())
/// }
///
/// assert_eq!(Chat::VARIANTS[1].response, Some("usize"));
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use netsock_macros::Events;

/// Derives [`Describe`] for a struct or enum that an
/// event's fields or a response contain, so that it appears in the enum's
/// [schema JSON](schema) for programs in other languages. Generic types
/// work (each instantiation is described apart); serde attributes that
/// change the layout (`skip`, `flatten`, `tag`, `untagged`, `transparent`,
/// `with`, ..) are refused. Takes `#[netsock(crate = "::renamed")]`.
///
/// ```
/// use netsock::{Describe, Events};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Describe, Serialize, Deserialize)]
/// enum Color {
///     Red,
///     Rgb(u8, u8, u8),
/// }
///
/// #[derive(Events, Serialize, Deserialize)]
/// enum Paint {
///     Fill { color: Color },
/// }
///
/// assert!(Paint::schema_json().contains(r#""Color": {"#));
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use netsock_macros::Describe;

/// Makes a service of a trait (an attribute: `#[derive]` cannot go on a
/// trait): a request enum, `{Trait}Client` and `{Trait}Server`; see the
/// [`service`](mod@service) module and the `netsock-macros` documentation.
///
/// ```
/// #[netsock::service]
/// trait Greeter {
///     async fn greet(&self, name: String) -> String;
/// }
///
/// struct English;
/// impl Greeter for English {
///     async fn greet(&self, name: String) -> String {
///         format!("Hello, {name}!")
///     }
/// }
///
/// async fn demo(path: &str) -> Result<(), Box<dyn std::error::Error>> {
///     let server = GreeterServer::new(English).bind(path).await?;
///     server.spawn();
///     let client = GreeterClient::connect(path).await?;
///     assert_eq!(client.greet("Ann".into()).await?, "Hello, Ann!");
///     Ok(())
/// }
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use netsock_macros::service;

#[doc(hidden)]
pub mod __private {
    //! What the code the macros generate reaches by absolute path
    //! (`::netsock::__private::..`). Not public API: anything here may
    //! change in any release.

    pub use futures_util::Stream;
    pub use serde;

    pub use crate::conn::streams::{CallStream, ReceiveUpload};
    pub use crate::endpoint::{Call, Receive};
    pub use crate::handler::machinery::{
        Fallible, IsAsyncFn, NeverApplies, NeverFuture, Plain, Unimplementable,
    };
    pub use crate::service::combine::{as_str, concat_str, concat_variants, str_len, variants_len};
}
