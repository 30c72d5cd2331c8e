//! A short soak: the long one is `cargo run --release -p tests --bin soak`.

use std::time::Duration;

use tests::soak::{run, Config};
use tests::{within, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_soak_loses_nothing() {
    for transport in [Transport::Tcp, Transport::Unix] {
        let report = within(run(Config {
            transport,
            connections: 50,
            rounds: 3,
            round: Duration::from_millis(300),
            disconnect_chance: 0.02,
        }))
        .await;
        assert_eq!(
            (report.lost, report.wrong, report.handled_twice),
            (0, 0, 0),
            "{report:#?}"
        );
        assert!(report.answered > 100 && report.events > 100, "{report:#?}");
        assert!(report.reconnects > 0, "{report:#?}");
    }
}
