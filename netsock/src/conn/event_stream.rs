//! [`EventStream`]: a socket's incoming events as values, for a `while let`
//! loop instead of handlers.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use super::handler_table::{event_fn, Handlers};
use crate::events::Events;
use crate::sync::write;

/// A socket's incoming events, one value of the enum at a time, in arrival
/// order: the events that have no `on_*` handler (and no `once_*` call)
/// of their own. Made by [`Socket::events`](crate::Socket::events).
///
/// It is read with [`next`](EventStream::next), or as a
/// [`Stream`](futures_util::Stream). Reading is how the socket's events
/// move on, exactly as a handler finishing is: while the stream is not
/// read, the next event waits, and behind it the connection's reading, so a
/// slow reader slows its peer instead of filling memory. The stream ends
/// when the socket is closed for good, or when a newer `events()` replaces
/// it. Dropping it gives the events back to the handlers (or to the error
/// hook, as unhandled).
///
/// ```
/// use netsock::{Events, Server, Socket};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Events, Serialize, Deserialize, Debug)]
/// enum Chat {
///     Message { text: String, total: usize },
///     Bye,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> netsock::Result<()> {
/// let io = Server::<Chat>::bind(0).await?;
/// io.on_connection(|socket: Socket<Chat>| async move {
///     socket.emit_message("hello".into(), 1).await?;
///     socket.emit_bye().await?;
///     Ok(())
/// });
/// io.spawn();
///
/// let socket = Socket::<Chat>::connect(io.local_addr()).await?;
/// let mut events = socket.events();
/// while let Some(event) = events.next().await {
///     match event {
///         Chat::Message { text, total } => println!("{text} ({total} clients)"),
///         Chat::Bye => break,
///     }
/// }
/// # io.close().await;
/// # Ok(())
/// # }
/// ```
pub struct EventStream<In: Events> {
    rx: mpsc::Receiver<In>,
    ticket: u64,
    handlers: Weak<RwLock<Handlers<In>>>,
}

impl<In: Events> fmt::Debug for EventStream<In> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}

/// Tells streams apart, so that dropping a replaced one leaves its
/// successor registered.
static TICKETS: AtomicU64 = AtomicU64::new(0);

/// Registers a new stream for the events without a handler of their own,
/// replacing (and so ending) any earlier one.
pub(crate) fn subscribe<In: Events>(handlers: &Arc<RwLock<Handlers<In>>>) -> EventStream<In> {
    // One in hand, one waiting: the handler that sends the next waits as a
    // running handler would.
    let (tx, rx) = mpsc::channel::<In>(1);
    let ticket = TICKETS.fetch_add(1, Ordering::Relaxed);
    let send = event_fn(move |value: In| {
        let tx = tx.clone();
        async move {
            tx.send(value)
                .await
                .map_err(|_| "its EventStream was dropped before taking it".to_owned())
        }
    });
    write(handlers).stream = Some((ticket, send));
    EventStream {
        rx,
        ticket,
        handlers: Arc::downgrade(handlers),
    }
}

impl<In: Events> EventStream<In> {
    /// The next event, or `None` once the socket is closed for good (or a
    /// newer [`Socket::events`](crate::Socket::events) took over).
    ///
    /// ```
    /// # use netsock::{Events, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Chat { Message(String) }
    /// async fn print_all(socket: &Socket<Chat>) {
    ///     let mut events = socket.events();
    ///     while let Some(Chat::Message(text)) = events.next().await {
    ///         println!("{text}");
    ///     }
    /// }
    /// ```
    pub async fn next(&mut self) -> Option<In> {
        self.rx.recv().await
    }
}

impl<In: Events> futures_util::Stream for EventStream<In> {
    type Item = In;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<In>> {
        self.rx.poll_recv(cx)
    }
}

impl<In: Events> Drop for EventStream<In> {
    fn drop(&mut self) {
        if let Some(handlers) = self.handlers.upgrade() {
            let mut table = write(&handlers);
            if table
                .stream
                .as_ref()
                .is_some_and(|(t, _)| *t == self.ticket)
            {
                table.stream = None;
            }
        }
    }
}
