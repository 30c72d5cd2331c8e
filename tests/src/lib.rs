//! Shared helpers for netsock's integration tests: the transports to run each
//! case on, temporary directories for Unix sockets, a raw peer for speaking
//! (and breaking) the wire protocol by hand, and waiting with a timeout.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use netsock::frame::{self, Header, Hello, MAGIC, PROTOCOL_VERSION};
use netsock::{Addr, Events};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {WAIT:?}"),
    }
}

/// Polls `cond` until it holds, failing the test after [`WAIT`]: for what
/// no event announces (a counter bumped right after a write, a descriptor
/// the kernel closed).
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    within(async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await
}

/// Runs a test case once over TCP and once over a Unix socket, as two tests.
#[macro_export]
macro_rules! on_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tcp() {
                super::$name($crate::Transport::Tcp).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unix() {
                super::$name($crate::Transport::Unix).await
            }
        }
    )*};
}

/// A transport a case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP on 127.0.0.1, ephemeral port.
    Tcp,
    /// A Unix socket in a temporary directory.
    Unix,
}

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh, empty directory under the system's temp dir.
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("netsock-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Transport {
    /// An address to bind on this transport: port 0, or a path in `dir`.
    pub fn addr(self, dir: &TempDir) -> Addr {
        match self {
            Transport::Tcp => Addr::tcp("127.0.0.1", 0),
            Transport::Unix => Addr::unix(dir.path().join("server.sock")),
        }
    }
}

/// The bytes-level peer: any stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A peer that speaks the wire protocol by hand.
pub struct Raw {
    io: Box<dyn Stream>,
    buf: BytesMut,
}

impl Raw {
    /// Connects a raw stream to a server's address.
    pub async fn connect(addr: &Addr) -> Raw {
        let io: Box<dyn Stream> = match addr {
            Addr::Tcp { host, port } => Box::new(
                tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .expect("connect"),
            ),
            Addr::Unix(path) => Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .expect("connect"),
            ),
            Addr::Memory(_) => {
                Box::new(netsock::memory::MemoryStream::connect(addr).expect("connect"))
            }
            _ => unreachable!(),
        };
        Raw::from_stream(io)
    }

    /// Wraps an accepted stream.
    pub fn from_stream(io: Box<dyn Stream>) -> Raw {
        Raw {
            io,
            buf: BytesMut::new(),
        }
    }

    /// The stream, with whatever it has read and not yet parsed dropped.
    pub fn into_stream(self) -> Box<dyn Stream> {
        self.io
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("write");
    }

    /// Writes one frame.
    pub async fn send(&mut self, header: &Header, payload: Option<&[u8]>) {
        let frame = frame::encode(header, None::<&()>, usize::MAX).expect("encode");
        let mut body = frame[4..].to_vec();
        body.extend_from_slice(payload.unwrap_or_default());
        let mut wire = (body.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&body);
        self.write(&wire).await;
    }

    /// Reads one frame; `None` at end of stream (or on a reset).
    pub async fn recv(&mut self) -> Option<(Header, Bytes)> {
        self.recv_sized(usize::MAX).await
    }

    /// Reads one frame, failing the test if its body is over `max` bytes
    /// (the limit this peer announced); `None` at end of stream.
    pub async fn recv_sized(&mut self, max: usize) -> Option<(Header, Bytes)> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes(self.buf[..4].try_into().unwrap()) as usize;
                assert!(
                    len <= max,
                    "a frame of {len} bytes, over the limit of {max}"
                );
                if self.buf.len() >= 4 + len {
                    self.buf.advance(4);
                    let body = self.buf.split_to(len).freeze();
                    return Some(frame::decode(&body).expect("decodable frame"));
                }
            }
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads frames until the stream ends; returns the last `Close` reason seen.
    pub async fn until_closed(&mut self) -> Option<netsock::CloseReason> {
        let mut reason = None;
        while let Some((header, _)) = self.recv().await {
            if let Header::Close(r) = header {
                reason = Some(r);
            }
        }
        reason
    }

    /// Completes a client handshake as a peer sending and receiving `E`.
    pub async fn handshake<E: Events>(&mut self) -> Header {
        self.send(&Header::Hello(hello::<E>()), None).await;
        self.recv().await.expect("handshake reply").0
    }
}

/// A hand-written "server": listens on `transport` (in `dir` for a Unix
/// socket) and hands over the first connection as a [`Raw`] peer.
pub async fn raw_server(
    transport: Transport,
    dir: &TempDir,
) -> (Addr, tokio::task::JoinHandle<Raw>) {
    let (addr, listener) = listen(transport, dir, "raw.sock").await;
    let accept =
        tokio::spawn(async move { Raw::from_stream(listener.accept().await.expect("accept")) });
    (addr, accept)
}

/// A plain listener on either transport, for the hand-written peers.
enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    async fn accept(&self) -> Option<Box<dyn Stream>> {
        Some(match self {
            Listener::Tcp(l) => Box::new(l.accept().await.ok()?.0),
            Listener::Unix(l) => Box::new(l.accept().await.ok()?.0),
        })
    }
}

/// Listens on 127.0.0.1 (an ephemeral port) or on `file` in `dir`.
async fn listen(transport: Transport, dir: &TempDir, file: &str) -> (Addr, Listener) {
    match transport {
        Transport::Tcp => {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = l.local_addr().expect("local addr").into();
            (addr, Listener::Tcp(l))
        }
        Transport::Unix => {
            let path = dir.path().join(file);
            let l = tokio::net::UnixListener::bind(&path).expect("bind");
            (path.into(), Listener::Unix(l))
        }
    }
}

/// A valid `Hello` for a client sending and receiving `E`.
pub fn hello<E: Events>() -> Hello {
    Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        sends: E::SCHEMA_ID,
        receives: E::SCHEMA_ID,
        max_frame: 8 * 1024 * 1024,
        lenient: false,
        auth: None,
    }
}

pub mod api;
pub mod cluster;
pub mod feed;
pub mod proxy;
pub mod soak;
