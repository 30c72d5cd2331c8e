//! Arbitrary bytes sent to a live server as a client's opening, then the
//! connection closes. Whatever they are, the server answers or hangs up, and
//! keeps serving a well-behaved client.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

#[derive(Events, Serialize, Deserialize, Debug)]
enum Api {
    #[request(response = i64)]
    Sum(Vec<i64>),
    Note(String),
}

struct Fixture {
    rt: Runtime,
    path: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let dir = std::env::temp_dir().join(format!("netsock-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("handshake.sock");
        rt.block_on(async {
            let io = Server::<Api>::builder()
                .handshake_timeout(Duration::from_millis(200))
                .bind(&path)
                .await
                .unwrap();
            io.on_connection(|socket: Socket<Api>| async move {
                socket.on_sum(|n| async move { n.iter().fold(0i64, |a, b| a.wrapping_add(*b)) });
                Ok(())
            });
            io.spawn();
        });
        Fixture { rt, path }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    f.rt.block_on(async {
        let mut raw = tokio::net::UnixStream::connect(&f.path).await.unwrap();
        let _ = raw.write_all(data).await;
        let _ = raw.shutdown().await;
        let mut sink = Vec::new();
        // The server must answer or hang up within its handshake timeout.
        let read = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "the server neither answered nor hung up");
        // Now and then, prove a real client is still served.
        if data.len() % 64 == 0 {
            let socket = Socket::<Api>::connect(&f.path).await.unwrap();
            assert_eq!(socket.sum(vec![1, 2]).await.unwrap(), 3);
            socket.close().await;
        }
    });
});
