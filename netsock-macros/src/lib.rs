//! Procedural macros for [netsock](https://docs.rs/netsock): `#[derive(Events)]`
//! on an enum, `#[netsock::service]` on a trait, and `#[derive(Services)]` to
//! carry several services over one connection.
//!
//! This crate is re-exported by `netsock`; depend on `netsock`, not on this
//! crate.
//!
//! Each macro parses, then renders. `parse/` has one parser per macro
//! (`events`, `service`, `services`) checking the input, every error
//! collected (`error`) and pointing at the offending token, with `attrs`
//! reading the attributes they share; each produces a `model`. `render/`
//! has one renderer per macro, writing one generated item per function.
//! `names` makes generated names and holds the names they must not take
//! (`reserved.txt`, checked against the runtime's methods by
//! `tests/tests/reserved_names.rs`). Generated code names everything by
//! absolute path (`::netsock::..`, `::core::..`), so it compiles under
//! `#![no_implicit_prelude]`, and with `crate = ".."` under a renamed
//! dependency.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod error;
mod model;
mod names;
mod parse;
mod render;

/// Derives `netsock::Events` for an enum, and the `{Enum}Emit` and
/// `{Enum}Handle` traits of typed methods for sockets and servers.
///
/// (The examples here are compiled and run in the `netsock` crate's tests:
/// this crate cannot depend on `netsock`.)
///
/// ```ignore
/// use netsock::{Events, Server, Socket};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Events, Serialize, Deserialize, Debug)]
/// enum Chat {
///     /// A one-way event with named fields.
///     Message { text: String, total_clients: usize },
///     /// A request: `#[request(response = T)]` gives its reply type.
///     #[request(response = i64)]
///     Sum(Vec<i64>),
///     /// A unit variant.
///     Ping,
/// }
///
/// async fn use_it(socket: Socket<Chat>, io: Server<Chat>) -> netsock::Result<()> {
///     socket.on_message(|text, total_clients| async move { println!("{text} ({total_clients})") });
///     socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
///     socket.on_ping(|| async {});
///     socket.emit_message("hi".into(), 1).await?;
///     io.emit_ping().await?; // on a server: to every client
///     let total: i64 = socket.sum(vec![1, 2, 3]).await?;
///     Ok(())
/// }
/// ```
///
/// # What it generates
///
/// * `impl netsock::Events for Chat`, whose schema text (and so the
///   `SchemaId` checked in the handshake) is built from the tokens of the
///   enum's, variants' and fields' names and types and of the response
///   types: the same on every build and machine. Renaming anything changes it.
/// * Two traits, with the enum's visibility, with methods per variant
///   named in snake_case:
///   * `ChatEmit`, for every endpoint that sends `Chat` (`Socket<_, Chat>`,
///     `Server<_, Chat>`): `emit_message(text, total_clients)` for an event
///     `Message { text, total_clients }` (a socket sends it to its peer, a
///     server to every client), and for a request
///     `#[request(response = i64)] Sum(Vec<i64>)` the stub
///     `sum(numbers) -> Result<i64, CallError>`;
///   * `ChatHandle`, for every socket that receives `Chat`:
///     `on_message(|text, total_clients| async move { .. })` and
///     `on_sum(|numbers| async move { .. })`, whose value is the reply;
///     `on_message_with(|socket, text, total_clients| async move { .. })`
///     and `on_sum_with(..)`, whose handler also gets the socket (so
///     replying to the sender is one line); and for an event
///     `once_message() -> Result<(String, usize)>`, the next one's fields.
///
///   Being bound on the endpoint's incoming or outgoing enum, two enums with
///   the same variant names never make a call ambiguous.
///
/// **Bring the traits into scope** where you call these methods when the
/// enum lives in another module: `use crate::api::{Chat, ChatEmit, ChatHandle};`.
///
/// # Handlers
///
/// A handler takes the variant's fields as **separate arguments, in
/// declaration order** (tuple fields likewise; none for a unit variant),
/// after the socket for an `on_x_with` handler, and returns a future: of
/// `()` or `Result<(), E>` (`E: Display`; an error goes to the socket's
/// error hook) for an event, of the response type for a request. It must be
/// `Send + Sync + 'static`. A closure of the wrong shape is reported in
/// words ("this closure cannot handle the event: it must take
/// `(String, usize)` ..."). A variant has at most 12 fields.
///
/// # Names netsock keeps
///
/// `emit_x`, `once_x` and `on_x_with` never clash with netsock's own
/// methods. A request stub `x` or a handler `on_x` that would be named like
/// one of the methods netsock reserves: `builder`, `close`, `closed`,
/// `connect`, `emit`, `events`, `id`, `is_connected`, `on_any`,
/// `on_disconnect`, `on_reconnect`, `on_error`, `peer_addr`, `peer_cert`, `peer_cred`,
/// `request`, `request_stream`, `request_upload`, `request_upload_stream`, `start`, `timeout`, `data`, `set_data`, `dropped_events`,
/// `metrics`, `try_emit`, `volatile` (methods of `Socket`), `bind`,
/// `local_addr`, `on_connection`, `run`, `socket`, `sockets`, `middleware`,
/// `serve`, `shutdown`, `run_until`, `spawn`, `reload_tls` (of `Server`), `broadcast`,
/// `except`, `in_room`, `join`, `leave`, `rooms`, `to` (rooms and
/// broadcast), `cluster`, `fetch_sockets`, `to_socket` (a cluster of
/// servers), `clone`, `fmt` (standard traits), takes a suffix instead:
/// the stub `x_request`, the handler `on_x_event` (or `on_x_request`).
/// So a request variant `Join` gets `join_request(..)` and `on_join(..)`,
/// and an event `Error` gets `emit_error(..)` and `on_error_event(..)`.
///
/// # Attributes
///
/// * `#[request(response = Type)]` on a variant makes it a request; `Type`
///   must be `Serialize + DeserializeOwned + Send + 'static`.
/// * `#[request(stream = Type)]` makes it a stream request, answered with a
///   stream of `Type`s: the stub gives an `ItemStream<Type>`, the handler's
///   future a stream of `Type` or `Result<Type, E>` (see the book's Streams
///   chapter).
/// * `#[netsock(crate = "::my_netsock")]` on the enum, when the `netsock`
///   dependency is renamed in `Cargo.toml`.
///
/// # Rejected at compile time
///
/// * structs, unions, empty enums, generic enums (the schema must be fixed),
///   explicit discriminants;
/// * two variants generating the same method (`FooBar` and `Foo_bar` both
///   give `emit_foo_bar`; `Join` and `JoinRequest`, both requests, both give
///   `join_request`);
/// * malformed `#[request]` attributes, `#[request]` without `response` or
///   `stream`, and with both.
#[proc_macro_derive(Events, attributes(request, netsock))]
pub fn derive_events(input: TokenStream) -> TokenStream {
    parse::events(input.into())
        .map(render::events)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `netsock::schema::Describe` for a struct or enum, so that it can
/// be a field (or a response) of an events enum and appear in its schema
/// JSON. Re-exported as `netsock::Describe`, where the example is tested.
///
/// ```ignore
/// #[derive(netsock::Describe, Serialize, Deserialize)]
/// struct Point {
///     x: i32,
///     y: i32,
/// }
/// ```
///
/// Generic types get `T: Describe` bounds on their parameters. Refused:
/// unions, const generic parameters, and serde attributes that change the
/// layout (`skip`, `flatten`, `tag`, `untagged`, `transparent`, `with`,
/// `from`, ..). Accepts `#[netsock(crate = "::my_netsock")]`.
#[proc_macro_derive(Describe, attributes(netsock))]
pub fn derive_describe(input: TokenStream) -> TokenStream {
    parse::describe(input.into())
        .map(render::describe)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a netsock service of a trait: a request enum, a typed client and a
/// server, from the trait's `async fn` methods.
///
/// (An attribute, since `#[derive]` cannot be put on a trait in Rust.) This
/// example is the `netsock::service` module's, where it is tested.
///
/// ```ignore
/// use netsock::service::Context;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(netsock::Describe, Serialize, Deserialize, Debug, PartialEq)]
/// pub struct DivideByZero;
///
/// #[netsock::service]
/// pub trait Calculator {
///     /// Adds the numbers.
///     async fn sum(&self, numbers: Vec<i64>) -> i64;
///     /// Divides; the service's own error travels too.
///     async fn div(&self, a: i64, b: i64) -> Result<i64, DivideByZero>;
///     /// A method may ask for the caller's context (first, as `&Context`).
///     async fn caller(&self, ctx: &Context) -> String;
/// }
///
/// struct Calc;
/// impl Calculator for Calc {
///     async fn sum(&self, numbers: Vec<i64>) -> i64 {
///         numbers.iter().sum()
///     }
///     async fn div(&self, a: i64, b: i64) -> Result<i64, DivideByZero> {
///         a.checked_div(b).ok_or(DivideByZero)
///     }
///     async fn caller(&self, ctx: &Context) -> String {
///         ctx.peer_addr().to_string()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = CalculatorServer::new(Calc).bind(0).await?;
/// server.spawn();
///
/// let client = CalculatorClient::connect(server.local_addr()).await?;
/// assert_eq!(client.sum(vec![1, 2, 3]).await?, 6);
/// assert_eq!(client.div(6, 3).await?, Ok(2));
/// assert_eq!(client.div(1, 0).await?, Err(DivideByZero)); // the service's error
/// assert!(client.caller().await?.starts_with("tcp://"));
/// server.close().await;
/// # Ok(())
/// # }
/// ```
///
/// # What it generates, for `trait Calculator`
///
/// * The trait itself, each `async fn m(&self, ..) -> T` declared as
///   `fn m(&self, ..) -> impl Future<Output = T> + Send`, so the server can
///   run calls on any thread. Implement it with plain `async fn`s.
/// * `enum CalculatorRequest`, one variant per method (`sum` → `Sum {
///   numbers }`), implementing `Events`; the response types are the methods'
///   return types.
/// * `CalculatorClient<E = CalculatorRequest>`:
///   `CalculatorClient::connect(addr).await?`, or `CalculatorClient::new(socket)`
///   on an existing `Socket<E>`; one `async fn` per method, without the
///   context parameter, returning `Result<T, CallError>`. A method declared
///   `-> Result<U, E>` therefore gives `Result<Result<U, E>, CallError>`: the
///   outer error is the transport's (timeout, disconnected, ..), the inner
///   the service's own. Also `socket()`, `into_socket()`, `timeout(duration)`.
///   A method declared `-> Streaming<T>` (a type path ending in `Streaming`
///   with one type argument, meant for `netsock::Streaming`) answers with a
///   stream: its client method returns `Result<ItemStream<T>, CallError>`,
///   and its schema text has `=>T` (see the book's Streams chapter).
/// * `CalculatorServer<S>` for any `S: Calculator + Send + Sync + 'static`:
///   `CalculatorServer::new(service).bind(addr).await?` returns the
///   `Server<CalculatorRequest>` to `run()` or `spawn()`; or
///   `.attach(&server)` to a server you made, or `.register(&socket)` from
///   your own `on_connection`. It implements `netsock::service::Service`.
///
/// # Several services on one connection
///
/// `E` above is the enum the connection carries: the service's own request
/// enum, or one combining several services with `#[derive(Services)]`
/// (`netsock::service::Services`); then `(AServer::new(a),
/// BServer::new(b)).attach(&server)` serves both, and `AClient::new(socket.clone())`
/// and `BClient::new(socket)` share one connection.
///
/// # Rules for the trait
///
/// Methods are `async fn`, take `&self`, are not generic, and take owned,
/// serializable parameters (`String`, not `&str`). The first parameter after
/// `&self` may be `ctx: &Context` (a type path ending in `Context`, by
/// reference; meant for `netsock::service::Context`): the caller's socket id
/// and address. It is never required, and the client's method does not have
/// it. Method names `clone`, `connect`, `fmt`, `into_socket`, `new`,
/// `socket` and `timeout` are taken by the client. Argument: `crate =
/// "::my_netsock"` for a renamed dependency.
///
/// On an error the trait is still emitted unchanged, next to the error, so
/// the rest of the program (and the editor) keeps working.
#[proc_macro_attribute]
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(input);
    parse::service(args.into(), item.clone())
        .map(render::service)
        .unwrap_or_else(|error| error::beside(item, error))
        .into()
}

/// Combines several services' request enums (or any `Events` enums) into
/// one, so that one server serves them all over one connection: implements
/// `netsock::Events` (the parts' variants one after another) and
/// `netsock::service::Embeds<Part>` for each part. Re-exported as
/// `netsock::service::Services`, where the example is tested.
///
/// ```ignore
/// #[derive(Services, Serialize, Deserialize)]
/// enum Backend {
///     Sum(SumNumbersRequest),
///     Echo(EchoRequest),
/// }
/// let server = Server::<Backend>::bind(addr).await?;
/// (SumNumbersServer::new(a), EchoServer::new(b)).attach(&server); // `Service` in scope
/// let socket = Socket::<Backend>::connect(addr).await?;
/// let sum = SumNumbersClient::new(socket.clone());
/// let echo = EchoClient::new(socket);
/// ```
///
/// Each variant holds exactly one type, each type once. Accepts
/// `#[netsock(crate = "::my_netsock")]`.
#[proc_macro_derive(Services, attributes(netsock))]
pub fn derive_services(input: TokenStream) -> TokenStream {
    parse::services(input.into())
        .map(render::services)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
