//! [`MemoryBus`]: a [`Driver`] that connects servers in one process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::adapter::{BoxFuture, ClusterError, Driver, Inbox, Outgoing};
use crate::sync::lock;

/// A [`Driver`] for servers in one process: a channel's messages go to
/// every inbox subscribed to it, at once. For tests, examples and trying a
/// cluster out; clone it for each server of the cluster.
///
/// ```
/// use netsock::adapter::{Adapter, MemoryBus};
/// # use netsock::{Events, Server};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
/// # async fn f() -> netsock::Result<()> {
/// let bus = MemoryBus::new();
/// let a = Server::<Api>::builder().adapter(Adapter::new(bus.clone())).bind(0).await?;
/// let b = Server::<Api>::builder().adapter(Adapter::new(bus)).bind(0).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default, Debug)]
pub struct MemoryBus {
    inner: Arc<Bus>,
}

#[derive(Default, Debug)]
struct Bus {
    next_node: AtomicU32,
    channels: Mutex<HashMap<String, Vec<Inbox>>>,
}

impl MemoryBus {
    /// A bus with no subscriber.
    ///
    /// ```
    /// let bus = netsock::adapter::MemoryBus::new();
    /// ```
    pub fn new() -> Self {
        MemoryBus::default()
    }
}

impl Driver for MemoryBus {
    fn node_number<'a>(&'a self, _cluster: &'a str) -> BoxFuture<'a, Result<u32, ClusterError>> {
        let n = self.inner.next_node.fetch_add(1, Ordering::Relaxed) + 1;
        Box::pin(async move { Ok(n) })
    }

    fn publish(&self, batch: Vec<Outgoing>) -> BoxFuture<'_, Result<(), ClusterError>> {
        for out in batch {
            let inboxes = {
                let mut channels = lock(&self.inner.channels);
                let Some(inboxes) = channels.get_mut(&*out.channel) else {
                    continue;
                };
                inboxes.retain(|i| !i.is_closed());
                inboxes.clone()
            };
            for inbox in inboxes {
                inbox.push(out.message.clone());
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn subscribe(
        &self,
        channels: Vec<String>,
        inbox: Inbox,
    ) -> BoxFuture<'_, Result<(), ClusterError>> {
        let mut table = lock(&self.inner.channels);
        for channel in channels {
            table.entry(channel).or_default().push(inbox.clone());
        }
        Box::pin(async { Ok(()) })
    }
}
