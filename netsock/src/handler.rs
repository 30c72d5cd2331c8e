//! The handler traits behind generated `on_*` methods.
//!
//! `socket.on_message(|text, total_clients| async move { .. })` accepts any
//! closure that takes the variant's fields as separate arguments, in
//! declaration order, and returns a future: `()` for an event, the response
//! type for a request:
//!
//! ```
//! use netsock::{Events, Server, Socket};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Events, Serialize, Deserialize, Debug)]
//! enum Chat {
//!     /// A one-way event with named fields.
//!     Message { text: String, total_clients: usize },
//!     /// A request: `#[request(response = T)]` gives its reply type.
//!     #[request(response = i64)]
//!     Sum(Vec<i64>),
//!     /// A unit variant.
//!     Ping,
//! }
//!
//! async fn use_it(socket: Socket<Chat>, io: Server<Chat>) -> netsock::Result<()> {
//!     socket.on_message(|text, total_clients| async move { println!("{text} ({total_clients})") });
//!     socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
//!     socket.on_ping(|| async {});
//!     socket.emit_message("hi".into(), 1).await?;
//!     io.emit_ping().await?; // on a server: to every client
//!     let total: i64 = socket.sum(vec![1, 2, 3]).await?;
//!     Ok(())
//! }
//! ```
//!
//! These traits say so, in words, when a closure does not fit:
//!
//! ```text
//! error[E0277]: this closure cannot handle the event: it must take `(String, usize)` ...
//! ```
//!
//! You never implement or name them; they are implemented for every closure
//! and function of the right shape (with up to 12 arguments). The `M` type
//! parameter only tells the compiler's candidates apart and is always
//! inferred.

use std::future::Future;

use self::machinery::IsAsyncFn;

/// What an event handler's future may give: `()`, or a `Result<(), E>` for
/// any displayable error `E`, so that `?` works in a handler. An error goes
/// to the socket's [error hook](crate::Socket::on_error) as
/// [`SocketError::HandlerFailed`](crate::SocketError::HandlerFailed) (or
/// is logged), never silently dropped.
///
/// ```
/// # use netsock::{Events, Socket};
/// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
/// # enum Api { Sum(Vec<i64>), Total(i64) }
/// fn reply_with_totals(socket: &Socket<Api>) {
///     // The socket's own `emit_total` error, if any, reaches the error hook.
///     socket.on_sum_with(|socket, numbers| async move {
///         socket.emit_total(numbers.iter().sum()).await
///     });
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "an event handler's future must give `()` or `Result<(), E>` where `E: Display`, not `{Self}`",
    label = "the value of the handler's `async move {{ .. }}` body"
)]
pub trait EventOutcome: Send + 'static {
    /// The error's text, if the handler failed.
    fn into_outcome(self) -> Result<(), String>;
}

impl EventOutcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display + Send + 'static> EventOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// Something that can handle an event whose fields are `Args` (a tuple, in
/// declaration order): an `Fn(A, B, ..) -> impl Future` that is
/// `Send + Sync + 'static`, whose future is `Send + 'static` and gives an
/// [`EventOutcome`]: `()` or `Result<(), E>`.
///
/// ```
/// use netsock::handler::EventHandler;
///
/// async fn deliver<M>(handler: impl EventHandler<(String, usize), M>) {
///     handler.call(("hi".to_string(), 2)).await;
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// deliver(|text: String, times: usize| async move {
///     assert_eq!(text.repeat(times), "hihi");
/// })
/// .await;
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "this closure cannot handle the event: it must take `{Args}` as separate arguments and return a future of `()` or `Result<(), E>`",
    label = "expected `|field, ..| async move {{ .. }}` taking `{Args}`",
    note = "an event handler takes the variant's fields as separate arguments, in declaration order, and returns a future: write `async move {{ .. }}` as its body",
    note = "the closure and its future must be `Send + Sync + 'static`: move owned values (or `Arc`s) into it"
)]
pub trait EventHandler<Args, M>: Send + Sync + 'static {
    /// The future the handler returns.
    type Future: Future<Output: EventOutcome> + Send + 'static;
    /// Calls the handler with the variant's fields.
    fn call(&self, args: Args) -> Self::Future;
}

/// Something that can answer a request whose fields are `Args` with a `R`:
/// an `Fn(A, B, ..) -> impl Future<Output = R>` that is `Send + Sync +
/// 'static`, whose future is `Send + 'static`.
///
/// ```
/// use netsock::handler::RequestHandler;
///
/// async fn answer<M>(handler: impl RequestHandler<(i64, i64), i64, M>) -> i64 {
///     handler.call((2, 3)).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(answer(|a: i64, b: i64| async move { a * b }).await, 6);
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "this closure cannot answer the request: it must take `{Args}` as separate arguments and return a future of `{R}`",
    label = "expected `|field, ..| async move {{ .. }}` taking `{Args}` and returning `{R}`",
    note = "a request handler takes the variant's fields as separate arguments, in declaration order; the value of its `async move {{ .. }}` body is the reply",
    note = "the closure and its future must be `Send + Sync + 'static`: move owned values (or `Arc`s) into it"
)]
pub trait RequestHandler<Args, R, M>: Send + Sync + 'static {
    /// The future the handler returns.
    type Future: Future<Output = R> + Send + 'static;
    /// Calls the handler with the variant's fields.
    fn call(&self, args: Args) -> Self::Future;
}

/// What a stream handler's stream may yield: the item `T` itself, or
/// `Result<T, E>` for any displayable `E`. An `Err` ends the stream: the
/// caller's stream then yields
/// [`CallError::HandlerFailed`](crate::CallError::HandlerFailed) with the
/// error's text, and nothing after it. `M` tells the two apart and is
/// always inferred (a stream whose item type `T` is itself a `Result`
/// must yield `Result<T, E>`, so that it is not ambiguous).
///
/// ```
/// use netsock::handler::StreamItem;
///
/// fn first<T, M>(item: impl StreamItem<T, M>) -> Result<T, String> {
///     item.into_item()
/// }
/// assert_eq!(first::<u8, _>(7u8), Ok(7));
/// assert_eq!(first::<u8, _>(Err::<u8, _>("sold out")), Err("sold out".to_string()));
/// ```
#[diagnostic::on_unimplemented(
    message = "a stream (a handler's answer, or an upload) must yield `{T}` or `Result<{T}, E>` where `E: Display`, not `{Self}`",
    label = "the item type of this stream"
)]
pub trait StreamItem<T, M>: Send + 'static {
    /// The item, or the error's text.
    fn into_item(self) -> Result<T, String>;
}

impl<T: Send + 'static> StreamItem<T, machinery::Plain> for T {
    fn into_item(self) -> Result<T, String> {
        Ok(self)
    }
}

impl<T: Send + 'static, E: std::fmt::Display + Send + 'static> StreamItem<T, machinery::Fallible>
    for Result<T, E>
{
    fn into_item(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// The types that tell the handler traits' candidate implementations apart.
/// Public, since public impls name them, but reachable only through
/// `netsock::__private`: nobody needs to name them.
pub(crate) mod machinery {
    use std::future::Future;

    use super::{EventHandler, RequestHandler};

    /// Marks a stream's items that are the values themselves.
    #[doc(hidden)]
    #[derive(Debug)]
    pub enum Plain {}

    /// Marks a stream's items that are `Result`s.
    #[doc(hidden)]
    #[derive(Debug)]
    pub enum Fallible {}

    /// Marks the implementation for async closures.
    #[doc(hidden)]
    #[derive(Debug)]
    pub struct IsAsyncFn<Fut>(Fut);

    /// Marks an implementation that never applies. It exists so that the
    /// compiler weighs two candidates, fails both, and reports the trait's
    /// own readable message instead of the first unmet bound.
    #[doc(hidden)]
    #[derive(Debug)]
    pub enum NeverApplies {}

    mod sealed {
        /// Private: nothing outside this module can implement it.
        pub trait Sealed {}
    }

    /// Implemented for no type (and sealed, so it stays that way).
    #[doc(hidden)]
    pub trait Unimplementable: sealed::Sealed {
        /// Cannot be called: nothing implements this trait.
        fn never(&self) -> NeverApplies;
    }

    /// The future of the [`NeverApplies`] implementations.
    #[doc(hidden)]
    #[derive(Debug)]
    pub struct NeverFuture<R>(NeverApplies, std::marker::PhantomData<fn() -> R>);

    impl<R> Future for NeverFuture<R> {
        type Output = R;
        fn poll(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<R> {
            match self.0 {}
        }
    }

    #[doc(hidden)]
    impl<F, Args> EventHandler<Args, NeverApplies> for F
    where
        F: Unimplementable + Send + Sync + 'static,
    {
        type Future = NeverFuture<()>;
        fn call(&self, _: Args) -> Self::Future {
            match self.never() {}
        }
    }

    #[doc(hidden)]
    impl<F, Args, R: 'static> RequestHandler<Args, R, NeverApplies> for F
    where
        F: Unimplementable + Send + Sync + 'static,
    {
        type Future = NeverFuture<R>;
        fn call(&self, _: Args) -> Self::Future {
            match self.never() {}
        }
    }
}

macro_rules! impl_handlers {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> EventHandler<($($arg,)*), IsAsyncFn<Fut>> for F
        where
            F: Fn($($arg),*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: EventOutcome,
        {
            type Future = Fut;
            #[allow(non_snake_case)]
            fn call(&self, ($($arg,)*): ($($arg,)*)) -> Fut {
                self($($arg),*)
            }
        }

        impl<F, Fut, R, $($arg,)*> RequestHandler<($($arg,)*), R, IsAsyncFn<Fut>> for F
        where
            F: Fn($($arg),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
        {
            type Future = Fut;
            #[allow(non_snake_case)]
            fn call(&self, ($($arg,)*): ($($arg,)*)) -> Fut {
                self($($arg),*)
            }
        }
    };
}

impl_handlers!();
impl_handlers!(A1);
impl_handlers!(A1, A2);
impl_handlers!(A1, A2, A3);
impl_handlers!(A1, A2, A3, A4);
impl_handlers!(A1, A2, A3, A4, A5);
impl_handlers!(A1, A2, A3, A4, A5, A6);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);
// A `_with` handler of a 12-field variant: the socket, then the fields.
impl_handlers!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13);

/// The most fields a variant may have and still get an `on_*` method.
///
/// ```
/// assert_eq!(netsock::handler::MAX_HANDLER_ARGS, 12);
/// ```
pub const MAX_HANDLER_ARGS: usize = 12;

/// The message of a caught panic (a handler's, or an observer's).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
