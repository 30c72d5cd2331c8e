//! The per-socket handler table and the calls into user code (with panics
//! caught, so a faulty handler fails alone).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;

use crate::error::{DisconnectReason, SocketError};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
pub(crate) type EventFn<In> = Arc<dyn Fn(In) -> BoxFuture<()> + Send + Sync>;
/// Gets the request value and its id; returns the complete reply frame.
/// Takes the request, its id and the largest frame the peer accepts.
pub(crate) type RequestFn<In> =
    Arc<dyn Fn(In, u64, usize) -> BoxFuture<Option<Bytes>> + Send + Sync>;
pub(crate) type DisconnectFn = Arc<dyn Fn(DisconnectReason) -> BoxFuture<()> + Send + Sync>;
pub(crate) type ErrorFn = Arc<dyn Fn(SocketError) + Send + Sync>;
pub(crate) type AnyFn<In> = Arc<dyn Fn(&In) + Send + Sync>;

pub(crate) enum Slot<In> {
    Empty,
    Event(EventFn<In>),
    Request(RequestFn<In>),
}

impl<In> Clone for Slot<In> {
    fn clone(&self) -> Self {
        match self {
            Slot::Empty => Slot::Empty,
            Slot::Event(f) => Slot::Event(f.clone()),
            Slot::Request(f) => Slot::Request(f.clone()),
        }
    }
}

pub(crate) struct Handlers<In> {
    pub(crate) slots: Vec<Slot<In>>,
    pub(crate) disconnect: Vec<DisconnectFn>,
    pub(crate) error: Option<ErrorFn>,
    pub(crate) any: Option<AnyFn<In>>,
}

impl<In> Handlers<In> {
    pub(crate) fn new(variants: usize) -> Self {
        Handlers {
            slots: (0..variants).map(|_| Slot::Empty).collect(),
            disconnect: Vec::new(),
            error: None,
            any: None,
        }
    }

    pub(crate) fn slot(&self, index: u32) -> Slot<In> {
        self.slots
            .get(index as usize)
            .cloned()
            .unwrap_or(Slot::Empty)
    }

    /// Drops every handler, breaking the cycles made by handlers that hold
    /// their own socket.
    pub(crate) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = Slot::Empty);
        self.disconnect.clear();
        self.any = None;
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

/// Calls a handler and awaits its future, turning a panic in either into
/// `Err(message)`.
pub(crate) async fn call_caught<A, T>(
    f: impl FnOnce(A) -> BoxFuture<T>,
    arg: A,
) -> Result<T, String> {
    let fut =
        std::panic::catch_unwind(AssertUnwindSafe(|| f(arg))).map_err(|p| panic_message(&*p))?;
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| panic_message(&*p))
}
