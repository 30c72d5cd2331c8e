//! [`Cluster`]: one node's side of a cluster: its number, the other nodes
//! it hears from, the queue of messages to the driver, the requests
//! waiting for other nodes' replies, and what it does with the messages it
//! receives.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use crate::adapter::wire::{
    Answer, Body, Command, Envelope, EnvelopeRef, Lane, WireCallError, VERSION,
};
use crate::adapter::{
    Adapter, BoxFuture, ClusterError, ClusterMetrics, Driver, Inbox, Options, Outgoing, SocketInfo,
};
use crate::conn::{NodeId, SocketId};
use crate::error::CallError;
use crate::selector::Selector;
use crate::sync::{lock, read, write};
use crate::throttle::warn_throttled;

/// What a node's cluster needs of its server, whatever its event types:
/// implemented by the server (`server/cluster.rs`).
pub(crate) trait Local: Send + Sync + 'static {
    /// Queues a frame (from another node) for the sockets `selector` picks.
    fn deliver(&self, selector: &Selector, frame: &Bytes, variant: u32);
    /// The sockets `selector` picks, with their rooms.
    fn describe(&self, selector: &Selector) -> Vec<SocketInfo>;
    /// The rooms that have members.
    fn rooms(&self) -> Vec<String>;
    /// Makes the sockets `selector` picks do `command`.
    fn apply(&self, selector: &Selector, command: &Command);
    /// Sends a request's payload to the sockets `selector` picks; their
    /// replies' payloads.
    fn call(
        &self,
        selector: Selector,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> BoxFuture<'static, Vec<(SocketId, Result<Bytes, CallError>)>>;
}

type MessageFn = Arc<dyn Fn(NodeId, Bytes) + Send + Sync>;

/// What reaches a request waiting for the other nodes.
enum Arrival {
    Reply(NodeId, Answer),
    Gone(NodeId),
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    publish_failed: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
    frames_relayed: AtomicU64,
    undecodable: AtomicU64,
    missed: AtomicU64,
    lost_connections: AtomicU64,
    reconnects: AtomicU64,
    nodes_timed_out: AtomicU64,
}

/// One node's side of the cluster.
pub(crate) struct Cluster {
    node: NodeId,
    options: Options,
    driver: Arc<dyn Driver>,
    /// The channel every node subscribes to.
    all: Arc<str>,
    queue: mpsc::Sender<Outgoing>,
    queue_rx: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    local: OnceLock<Arc<dyn Local>>,
    /// The other nodes, and when each was last heard from.
    nodes: Mutex<HashMap<NodeId, Instant>>,
    /// How many other nodes are known, for `wait_for_nodes`.
    node_count: watch::Sender<usize>,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<Arrival>>>,
    next_request: AtomicU64,
    on_message: RwLock<Option<MessageFn>>,
    /// Requests from other nodes running here.
    calls: Arc<Semaphore>,
    /// The server's default request timeout.
    request_timeout: OnceLock<Duration>,
    counters: Arc<Counters>,
    /// The last number sent on each channel (see [`Lane`]).
    sent: Mutex<HashMap<Arc<str>, u64>>,
    /// The last number received from each node on each lane.
    heard: Mutex<HashMap<(NodeId, bool), u64>>,
    stopped: watch::Sender<bool>,
}

impl Cluster {
    /// Gets a node number from the driver: the node is not started yet.
    pub(crate) async fn connect(adapter: Adapter) -> Result<Arc<Cluster>, ClusterError> {
        let Adapter { driver, options } = adapter;
        let number = driver.node_number(&options.name).await?;
        let number = number & ((1 << 24) - 1);
        if number == 0 {
            return Err(ClusterError::Driver(
                "the driver gave node number 0 (reserved for servers without an adapter)".into(),
            ));
        }
        let (queue, queue_rx) = mpsc::channel(options.queue);
        Ok(Arc::new(Cluster {
            node: NodeId(number),
            all: format!("{}#all", options.name).into(),
            calls: Arc::new(Semaphore::new(options.max_remote_calls)),
            options,
            driver,
            queue,
            queue_rx: Mutex::new(Some(queue_rx)),
            local: OnceLock::new(),
            nodes: Mutex::default(),
            node_count: watch::Sender::new(0),
            pending: Mutex::default(),
            next_request: AtomicU64::new(1),
            on_message: RwLock::new(None),
            request_timeout: OnceLock::new(),
            counters: Arc::default(),
            sent: Mutex::default(),
            heard: Mutex::default(),
            stopped: watch::Sender::new(false),
        }))
    }

    /// Starts the node for `local`: the queue's publisher, the
    /// subscription, the announcement, the heartbeats.
    pub(crate) async fn start(
        self: &Arc<Self>,
        local: Arc<dyn Local>,
        request_timeout: Duration,
    ) -> Result<(), ClusterError> {
        let _ = self.local.set(local);
        let _ = self.request_timeout.set(request_timeout);
        if let Some(rx) = lock(&self.queue_rx).take() {
            tokio::spawn(publish_loop(self.driver.clone(), rx, self.counters.clone()));
        }
        let inbox = Inbox {
            cluster: Arc::downgrade(self),
            stopped: self.stopped.subscribe(),
        };
        let channels = vec![self.all.to_string(), self.channel_of(self.node).to_string()];
        self.driver.subscribe(channels, inbox).await?;
        self.send_all(&Body::Heartbeat { hello: true }, &[])?;
        tokio::spawn(heartbeat_loop(
            Arc::downgrade(self),
            self.stopped.subscribe(),
            self.options.heartbeat,
        ));
        tracing::info!(node = self.node.0, cluster = %self.options.name, "joined the cluster");
        Ok(())
    }

    /// Says goodbye and stops: the others forget this node at once.
    pub(crate) fn stop(&self) {
        if !self.stopped.send_replace(true) {
            let _ = self.send_all(&Body::Bye, &[]);
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    pub(crate) fn node(&self) -> NodeId {
        self.node
    }

    /// Waits until at least `count` other nodes are known.
    pub(crate) async fn wait_for_nodes(&self, count: usize) {
        let _ = self.node_count.subscribe().wait_for(|n| *n >= count).await;
    }

    /// The other nodes heard from, in order.
    pub(crate) fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = lock(&self.nodes).keys().copied().collect();
        nodes.sort();
        nodes
    }

    pub(crate) fn metrics(&self) -> ClusterMetrics {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClusterMetrics {
            node: self.node,
            nodes: self.nodes(),
            published: load(&c.published),
            publish_failed: load(&c.publish_failed),
            dropped: load(&c.dropped),
            queue_depth: (self.options.queue - self.queue.capacity()) as u64,
            received: load(&c.received),
            frames_relayed: load(&c.frames_relayed),
            undecodable: load(&c.undecodable),
            missed: load(&c.missed),
            lost_connections: load(&c.lost_connections),
            reconnects: load(&c.reconnects),
            nodes_timed_out: load(&c.nodes_timed_out),
        }
    }

    /// The server's default request timeout.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
            .get()
            .copied()
            .unwrap_or(Duration::from_secs(10))
    }

    fn channel_of(&self, node: NodeId) -> Arc<str> {
        format!("{}#node#{}", self.options.name, node.0).into()
    }

    /// Queues a message for the driver, without waiting.
    fn send(&self, channel: Arc<str>, body: &Body, payload: &[u8]) -> Result<(), ClusterError> {
        // Numbered and queued under one lock, so numbers follow the queue's
        // order; a message never queued uses no number.
        let mut sent = lock(&self.sent);
        let seq = sent.get(&channel).copied().unwrap_or(0) + 1;
        let envelope = EnvelopeRef {
            version: VERSION,
            from: self.node,
            lane: Lane {
                direct: channel != self.all,
                seq,
            },
            body,
        };
        let mut message = postcard::to_extend(&envelope, Vec::with_capacity(40 + payload.len()))
            .map_err(|e| ClusterError::Driver(format!("cannot encode a cluster message: {e}")))?;
        message.extend_from_slice(payload);
        let outgoing = Outgoing {
            channel: channel.clone(),
            message: message.into(),
        };
        let queued = self.queue.try_send(outgoing);
        if queued.is_ok() {
            sent.insert(channel, seq);
        }
        drop(sent);
        queued.map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                warn_throttled!(
                    "cluster queue full",
                    capacity = self.options.queue,
                    "the queue of messages to other nodes is full; dropping"
                );
                ClusterError::Backlog {
                    capacity: self.options.queue,
                }
            }
            mpsc::error::TrySendError::Closed(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                ClusterError::Driver("the node's publisher stopped".into())
            }
        })
    }

    fn send_all(&self, body: &Body, payload: &[u8]) -> Result<(), ClusterError> {
        self.send(self.all.clone(), body, payload)
    }

    /// Publishes a broadcast's frame for the other nodes' sockets that
    /// `selector` picks. Sockets picked by id alone go to their nodes only.
    pub(crate) fn broadcast(
        &self,
        selector: &Selector,
        frame: &[u8],
        variant: u32,
    ) -> Result<(), ClusterError> {
        let channel = if selector.rooms.is_empty() && !selector.sockets.is_empty() {
            let nodes: HashSet<NodeId> = selector
                .sockets
                .iter()
                .map(|id| id.node())
                .filter(|n| *n != self.node)
                .collect();
            match nodes.len() {
                0 => return Ok(()),
                1 => match nodes.into_iter().next() {
                    Some(node) => self.channel_of(node),
                    None => self.all.clone(),
                },
                _ => self.all.clone(),
            }
        } else {
            self.all.clone()
        };
        let body = Body::Broadcast {
            selector: selector.clone(),
            variant,
        };
        self.send(channel, &body, frame)
    }

    /// Makes the other nodes' sockets that `selector` picks do `command`.
    pub(crate) fn command(
        &self,
        selector: &Selector,
        command: Command,
    ) -> Result<(), ClusterError> {
        let body = Body::Command {
            selector: selector.clone(),
            command,
        };
        self.send_all(&body, &[])
    }

    /// Sends a message to the other servers' `on_message` handler.
    pub(crate) fn message(&self, payload: &[u8]) -> Result<(), ClusterError> {
        self.send_all(&Body::Message, payload)
    }

    /// Sets what receives the other servers' messages.
    pub(crate) fn on_message(&self, handler: MessageFn) {
        *write(&self.on_message) = Some(handler);
    }

    /// The other nodes' sockets that `selector` picks.
    pub(crate) async fn fetch(&self, selector: &Selector) -> Result<Vec<SocketInfo>, ClusterError> {
        let answers = self
            .ask(
                |id| Body::Fetch {
                    id,
                    selector: selector.clone(),
                },
                &[],
                self.options.fetch_timeout,
            )
            .await?;
        Ok(answers
            .into_iter()
            .flat_map(|(_, answer)| match answer {
                Answer::Sockets(sockets) => sockets,
                _ => Vec::new(),
            })
            .collect())
    }

    /// The other nodes' rooms.
    pub(crate) async fn rooms(&self) -> Result<Vec<String>, ClusterError> {
        let answers = self
            .ask(|id| Body::Rooms { id }, &[], self.options.fetch_timeout)
            .await?;
        Ok(answers
            .into_iter()
            .flat_map(|(_, answer)| match answer {
                Answer::Rooms(rooms) => rooms,
                _ => Vec::new(),
            })
            .collect())
    }

    /// Sends a request payload to the other nodes' sockets that `selector`
    /// picks; their replies, gathered until the timeout (plus the grace for
    /// the trip back).
    pub(crate) async fn call(
        &self,
        selector: &Selector,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<(SocketId, Result<Bytes, CallError>)>, ClusterError> {
        let wait = timeout.unwrap_or_else(|| self.request_timeout()) + self.options.reply_grace;
        let timeout_ms = timeout.map(|t| t.as_millis().try_into().unwrap_or(u64::MAX));
        let answers = self
            .ask(
                |id| Body::Call {
                    id,
                    selector: selector.clone(),
                    timeout_ms,
                },
                payload,
                wait,
            )
            .await?;
        let mut replies = Vec::new();
        for (node, answer) in answers {
            match answer {
                Answer::Calls(calls) => replies.extend(
                    calls
                        .into_iter()
                        .map(|(id, r)| (id, r.map(Bytes::from).map_err(CallError::from))),
                ),
                Answer::Busy => {
                    warn_throttled!(
                        "cluster node busy",
                        node = node.0,
                        "a node was too busy to run a request to a room"
                    );
                }
                _ => {}
            }
        }
        Ok(replies)
    }

    /// Publishes a request and gathers the answers of the nodes known when
    /// it was sent, until each answered, was forgotten, or `timeout` passed.
    async fn ask(
        &self,
        body: impl FnOnce(u64) -> Body,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<(NodeId, Answer)>, ClusterError> {
        let mut waiting: HashSet<NodeId> = lock(&self.nodes).keys().copied().collect();
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= self.options.max_requests {
                return Err(ClusterError::TooManyRequests {
                    max: self.options.max_requests,
                });
            }
            pending.insert(id, tx);
        }
        let _forget = Forget { cluster: self, id };
        self.send_all(&body(id), payload)?;
        let deadline = Instant::now() + timeout;
        let mut answers = Vec::new();
        while !waiting.is_empty() {
            tokio::select! {
                arrival = rx.recv() => match arrival {
                    Some(Arrival::Reply(node, answer)) => {
                        if waiting.remove(&node) {
                            answers.push((node, answer));
                        }
                    }
                    Some(Arrival::Gone(node)) => {
                        waiting.remove(&node);
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        Ok(answers)
    }

    /// A message from the driver.
    pub(crate) fn receive(self: &Arc<Self>, message: Bytes) {
        let Ok((envelope, rest)) = postcard::take_from_bytes::<Envelope>(&message) else {
            self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if envelope.version != VERSION {
            self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let from = envelope.from;
        if from == self.node || self.is_stopped() {
            return;
        }
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        self.count_gap(from, envelope.lane);
        let payload = message.slice_ref(rest);
        if !matches!(envelope.body, Body::Bye) {
            self.seen(from);
        }
        let Some(local) = self.local.get() else {
            return;
        };
        match envelope.body {
            Body::Heartbeat { hello } => {
                if hello {
                    let _ = self.send_all(&Body::Heartbeat { hello: false }, &[]);
                }
            }
            Body::Bye => self.forget(from, false),
            Body::Broadcast { selector, variant } => {
                local.deliver(&selector, &payload, variant);
                self.counters.frames_relayed.fetch_add(1, Ordering::Relaxed);
            }
            Body::Command { selector, command } => local.apply(&selector, &command),
            Body::Fetch { id, selector } => {
                let answer = Answer::Sockets(local.describe(&selector));
                self.reply(from, id, answer);
            }
            Body::Rooms { id } => self.reply(from, id, Answer::Rooms(local.rooms())),
            Body::Call {
                id,
                selector,
                timeout_ms,
            } => {
                let Ok(permit) = self.calls.clone().try_acquire_owned() else {
                    self.reply(from, id, Answer::Busy);
                    return;
                };
                let calls = local.call(selector, payload, timeout_ms.map(Duration::from_millis));
                let cluster = Arc::downgrade(self);
                tokio::spawn(async move {
                    let replies = calls.await;
                    drop(permit);
                    let replies = replies
                        .into_iter()
                        .map(|(id, r)| {
                            (
                                id,
                                r.map(|b| b.to_vec()).map_err(|e| WireCallError::from(&e)),
                            )
                        })
                        .collect();
                    if let Some(cluster) = cluster.upgrade() {
                        cluster.reply(from, id, Answer::Calls(replies));
                    }
                });
            }
            Body::Reply { id, answer } => {
                if let Some(tx) = lock(&self.pending).get(&id) {
                    let _ = tx.send(Arrival::Reply(from, answer));
                }
            }
            Body::Message => {
                let handler = read(&self.on_message).clone();
                if let Some(handler) = handler {
                    handler(from, payload);
                }
            }
        }
    }

    fn reply(&self, to: NodeId, id: u64, answer: Answer) {
        let body = Body::Reply { id, answer };
        if let Err(e) = self.send(self.channel_of(to), &body, &[]) {
            warn_throttled!("cluster reply lost", error = %e, "could not reply to another node");
        }
    }

    /// Notes that `node` is alive.
    fn seen(&self, node: NodeId) {
        let now = Instant::now();
        let mut nodes = lock(&self.nodes);
        if nodes.insert(node, now).is_none() {
            self.node_count.send_replace(nodes.len());
            tracing::info!(node = node.0, "a node joined the cluster");
        }
    }

    /// Counts the messages from `from` on `lane` that never arrived: those
    /// numbered between the last one heard and this one. The first message
    /// heard from a node starts its count.
    fn count_gap(&self, from: NodeId, lane: Lane) {
        let last = lock(&self.heard).insert((from, lane.direct), lane.seq);
        if let Some(last) = last {
            let missed = lane.seq.saturating_sub(last + 1);
            if missed > 0 {
                self.counters.missed.fetch_add(missed, Ordering::Relaxed);
                warn_throttled!(
                    "cluster messages missed",
                    node = from.0,
                    missed,
                    "messages from another node never arrived (the subscription was down, or the engine dropped them)"
                );
            }
        }
    }

    /// Forgets `node`: requests stop waiting for it.
    fn forget(&self, node: NodeId, timed_out: bool) {
        {
            let mut nodes = lock(&self.nodes);
            if nodes.remove(&node).is_none() {
                return;
            }
            self.node_count.send_replace(nodes.len());
        }
        lock(&self.heard).retain(|(n, _), _| *n != node);
        if timed_out {
            self.counters
                .nodes_timed_out
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = node.0, "a node stopped answering; forgotten");
        } else {
            tracing::info!(node = node.0, "a node left the cluster");
        }
        for tx in lock(&self.pending).values() {
            let _ = tx.send(Arrival::Gone(node));
        }
    }

    /// Forgets the nodes silent for longer than the node timeout.
    fn sweep(&self) {
        let now = Instant::now();
        let silent: Vec<NodeId> = lock(&self.nodes)
            .iter()
            .filter(|(_, seen)| now.duration_since(**seen) > self.options.node_timeout)
            .map(|(node, _)| *node)
            .collect();
        for node in silent {
            self.forget(node, true);
        }
    }

    pub(crate) fn lost_connection(&self, error: &ClusterError) {
        self.counters
            .lost_connections
            .fetch_add(1, Ordering::Relaxed);
        warn_throttled!("cluster connection lost", error = %error, "lost the connection to the cluster's broker; reconnecting");
    }

    pub(crate) fn reconnected(&self) {
        self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        tracing::info!(node = self.node.0, "reconnected to the cluster's broker");
        let _ = self.send_all(&Body::Heartbeat { hello: true }, &[]);
    }
}

/// Takes a finished request out of the table.
struct Forget<'a> {
    cluster: &'a Cluster,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.cluster.pending).remove(&self.id);
    }
}

/// Hands the queued messages to the driver, a batch at a time, in order.
async fn publish_loop(
    driver: Arc<dyn Driver>,
    mut rx: mpsc::Receiver<Outgoing>,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let n = batch.len() as u64;
        match driver.publish(std::mem::take(&mut batch)).await {
            Ok(()) => counters.published.fetch_add(n, Ordering::Relaxed),
            Err(error) => {
                warn_throttled!("cluster publish failed", %error, lost = n, "could not publish to the other nodes");
                counters.publish_failed.fetch_add(n, Ordering::Relaxed)
            }
        };
    }
}

/// Says "alive" every `every`, and forgets the nodes that stopped saying it.
async fn heartbeat_loop(
    cluster: std::sync::Weak<Cluster>,
    mut stopped: watch::Receiver<bool>,
    every: Duration,
) {
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let _ = cluster.send_all(&Body::Heartbeat { hello: false }, &[]);
        cluster.sweep();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::*;
    use crate::adapter::MemoryBus;

    /// A driver whose first publish never finishes: the engine hangs.
    struct Stalled {
        publishing: Arc<Notify>,
    }

    impl Driver for Stalled {
        fn node_number<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<u32, ClusterError>> {
            Box::pin(async { Ok(1) })
        }
        fn publish(&self, _: Vec<Outgoing>) -> BoxFuture<'_, Result<(), ClusterError>> {
            self.publishing.notify_one();
            Box::pin(std::future::pending())
        }
        fn subscribe(&self, _: Vec<String>, _: Inbox) -> BoxFuture<'_, Result<(), ClusterError>> {
            Box::pin(async { Ok(()) })
        }
    }

    /// A server that records what reaches it.
    #[derive(Default)]
    struct Recorder {
        frames: Mutex<Vec<(Vec<String>, Bytes, u32)>>,
    }

    impl Local for Recorder {
        fn deliver(&self, selector: &Selector, frame: &Bytes, variant: u32) {
            lock(&self.frames).push((selector.rooms.clone(), frame.clone(), variant));
        }
        fn describe(&self, _: &Selector) -> Vec<SocketInfo> {
            Vec::new()
        }
        fn rooms(&self) -> Vec<String> {
            Vec::new()
        }
        fn apply(&self, _: &Selector, _: &Command) {}
        fn call(
            &self,
            _: Selector,
            _: Bytes,
            _: Option<Duration>,
        ) -> BoxFuture<'static, Vec<(SocketId, Result<Bytes, CallError>)>> {
            Box::pin(async { Vec::new() })
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stalled_engine_bounds_the_queue_and_counts_what_is_dropped() {
        let publishing = Arc::new(Notify::new());
        let driver = Stalled {
            publishing: publishing.clone(),
        };
        let cluster = Cluster::connect(Adapter::new(driver).queue(4))
            .await
            .unwrap();
        cluster
            .start(Arc::new(Recorder::default()), Duration::from_secs(1))
            .await
            .unwrap();
        // The announcement is in the driver's hands, which never return.
        publishing.notified().await;
        let frame = [0u8; 16];
        let sent: Vec<_> = (0..10)
            .map(|_| cluster.broadcast(&Selector::default(), &frame, 0))
            .collect();
        assert!(sent[..4].iter().all(Result::is_ok));
        assert!(sent[4..]
            .iter()
            .all(|r| matches!(r, Err(ClusterError::Backlog { capacity: 4 }))));
        let m = cluster.metrics();
        assert_eq!((m.dropped, m.queue_depth), (6, 4));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn frames_cross_as_they_were_encoded() {
        let bus = MemoryBus::new();
        let a = Cluster::connect(Adapter::new(bus.clone())).await.unwrap();
        let b = Cluster::connect(Adapter::new(bus)).await.unwrap();
        let at_b = Arc::new(Recorder::default());
        a.start(Arc::new(Recorder::default()), Duration::from_secs(1))
            .await
            .unwrap();
        b.start(at_b.clone(), Duration::from_secs(1)).await.unwrap();
        a.wait_for_nodes(1).await;
        let selector = Selector {
            rooms: vec!["lobby".into()],
            ..Selector::default()
        };
        a.broadcast(&selector, b"\x05\x00\x00\x00frame", 3).unwrap();
        while lock(&at_b.frames).is_empty() {
            tokio::task::yield_now().await;
        }
        let (rooms, frame, variant) = lock(&at_b.frames)[0].clone();
        assert_eq!(
            (rooms, &frame[..], variant),
            (vec!["lobby".to_string()], &b"\x05\x00\x00\x00frame"[..], 3)
        );
        assert_eq!(b.metrics().frames_relayed, 1);
        // Not netsock's, or garbage: counted, ignored.
        b.receive(Bytes::from_static(b"\xff\xff\xff"));
        assert_eq!(b.metrics().undecodable, 1);
    }

    /// A message from node 9 on `lane`, as the driver hands it over.
    fn heartbeat(direct: bool, seq: u64) -> Bytes {
        let envelope = EnvelopeRef {
            version: VERSION,
            from: NodeId(9),
            lane: Lane { direct, seq },
            body: &Body::Heartbeat { hello: false },
        };
        Bytes::from(postcard::to_stdvec(&envelope).unwrap())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_another_node_sent_and_never_arrived_is_counted() {
        let node = Cluster::connect(Adapter::new(MemoryBus::new()))
            .await
            .unwrap();
        node.start(Arc::new(Recorder::default()), Duration::from_secs(1))
            .await
            .unwrap();
        // On the channel every node hears: 1, 2, then 5 (3 and 4 lost).
        for seq in [1, 2, 5] {
            node.receive(heartbeat(false, seq));
        }
        assert_eq!(node.metrics().missed, 2);
        // The node's own channel is numbered apart: its first message
        // starts the count, and no gap means nothing missed.
        for seq in [7, 8] {
            node.receive(heartbeat(true, seq));
        }
        assert_eq!(node.metrics().missed, 2);
        node.receive(heartbeat(true, 10));
        assert_eq!(node.metrics().missed, 3);
    }
}
