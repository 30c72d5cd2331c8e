//! A soak run: many connections doing mixed events and requests for a while,
//! with random disconnects and reconnects, checking that no request is lost
//! or answered twice and that memory does not grow from round to round.
//!
//! The long run is `cargo run --release -p tests --bin soak -- --help`; a
//! short one runs in the test suite (`tests/tests/soak.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netsock::{CallError, Events, Server, Socket};
use serde::{Deserialize, Serialize};

use crate::{TempDir, Transport};

/// What the soak clients and server say.
#[derive(Events, Serialize, Deserialize, Debug)]
pub enum Soak {
    /// A one-way note.
    Note(u64),
    /// Echo the id back.
    #[request(response = u64)]
    Echo(u64),
}

/// How hard and how long to soak.
#[derive(Clone, Debug)]
pub struct Config {
    /// Transport to run on.
    pub transport: Transport,
    /// Connections open at once.
    pub connections: usize,
    /// Rounds to run; memory is compared between rounds.
    pub rounds: usize,
    /// Length of each round.
    pub round: Duration,
    /// Chance, per operation, that a client drops its connection and
    /// reconnects.
    pub disconnect_chance: f64,
}

/// What a soak run saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Requests answered correctly.
    pub answered: u64,
    /// Requests that failed because their connection was dropped under them.
    pub cut_off: u64,
    /// Requests that timed out or failed otherwise: lost.
    pub lost: u64,
    /// Requests the server handled more than once.
    pub handled_twice: u64,
    /// Replies that did not match their request.
    pub wrong: u64,
    /// Events sent.
    pub events: u64,
    /// Reconnects made.
    pub reconnects: u64,
    /// Resident memory after each round, in KiB.
    pub rss_kib: Vec<u64>,
}

/// Resident set size of this process, in KiB (Linux).
pub fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// A small, seedable generator (no dependency needed for dice).
struct Dice(u64);
impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
}

/// Runs the soak and returns what it saw.
pub async fn run(config: Config) -> Report {
    let dir = TempDir::new();
    let io = Server::<Soak>::builder()
        .bind(config.transport.addr(&dir))
        .await
        .expect("bind");
    let handled: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let counted = handled.clone();
    io.on_connection(move |socket: Socket<Soak>| {
        let counted = counted.clone();
        async move {
            socket.on_note(|_| async {});
            socket.on_echo(move |id| {
                *counted.lock().unwrap().entry(id).or_default() += 1;
                async move { id }
            });
            Ok(())
        }
    });
    io.spawn();
    let addr = io.local_addr().clone();
    let next_id = Arc::new(AtomicU64::new(1));
    let report = Arc::new(Mutex::new(Report::default()));
    for _ in 0..config.rounds {
        let deadline = Instant::now() + config.round;
        let clients = (0..config.connections).map(|c| {
            let (addr, next_id) = (addr.clone(), next_id.clone());
            let chance = config.disconnect_chance;
            tokio::spawn(async move {
                let mut dice = Dice(
                    0x9e37_79b9_7f4a_7c15 ^ (c as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
                );
                let mut socket = Socket::<Soak>::connect(&addr).await.expect("connect");
                let mut local = Report::default();
                while Instant::now() < deadline {
                    if dice.chance(chance) {
                        // Drop the connection under a request in flight, then reconnect.
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        let call = {
                            let socket = socket.clone();
                            tokio::spawn(async move { socket.echo(id).await })
                        };
                        socket.close().await;
                        match call.await.expect("call task") {
                            Ok(got) if got == id => local.answered += 1,
                            Ok(_) => local.wrong += 1,
                            Err(CallError::Disconnected(_)) => local.cut_off += 1,
                            Err(_) => local.lost += 1,
                        }
                        socket = Socket::<Soak>::connect(&addr).await.expect("reconnect");
                        local.reconnects += 1;
                        continue;
                    }
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    if dice.next() % 2 == 0 {
                        socket.emit_note(id).await.expect("emit");
                        local.events += 1;
                    } else {
                        match socket.echo(id).await {
                            Ok(got) if got == id => local.answered += 1,
                            Ok(_) => local.wrong += 1,
                            Err(_) => local.lost += 1,
                        }
                    }
                }
                socket.close().await;
                local
            })
        });
        let locals = futures_util::future::join_all(clients).await;
        let mut total = report.lock().unwrap();
        for local in locals {
            let local = local.expect("client task");
            total.answered += local.answered;
            total.cut_off += local.cut_off;
            total.lost += local.lost;
            total.wrong += local.wrong;
            total.events += local.events;
            total.reconnects += local.reconnects;
        }
        // Count ids handled twice this round, then forget them, so that the
        // harness's own bookkeeping does not grow from round to round.
        let mut handled = handled.lock().unwrap();
        total.handled_twice += handled.values().filter(|n| **n > 1).count() as u64;
        handled.clear();
        drop(handled);
        total.rss_kib.push(rss_kib());
    }
    io.close().await;
    let report = report.lock().unwrap().clone();
    report
}
