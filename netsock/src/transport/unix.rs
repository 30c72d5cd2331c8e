//! Unix domain sockets, and the socket file's life cycle: a stale file left by
//! a dead server is replaced, a live server's file is never taken, and the
//! file is removed when the listener goes away.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{UnixListener, UnixStream};

use super::{Listener, PeerAddr, ReadHalf, WriteHalf};
use crate::addr::Addr;
use crate::error::Error;

/// The socket file a listener created; removed on drop if it is still ours.
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Only remove the file we created: another server may have replaced it.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

pub(super) async fn bind(
    addr: &Addr,
    path: &Path,
    mode: u32,
) -> Result<(Listener, Addr, Option<SocketFile>), Error> {
    let bind_err = |source| Error::Bind {
        addr: addr.clone(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path).await {
            Ok(_) => return Err(Error::AddrInUse { addr: addr.clone() }),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "replacing stale socket file");
                std::fs::remove_file(path).map_err(bind_err)?;
            }
            Err(e) => return Err(bind_err(e)),
        },
        Ok(_) => {
            return Err(bind_err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket; refusing to replace it",
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }
    let listener = bind_with_mode(path, mode).map_err(bind_err)?;
    let meta = std::fs::symlink_metadata(path).map_err(bind_err)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    Ok((Listener::Unix(listener), addr.clone(), Some(file)))
}

/// Binds `path` with permissions `mode` and no moment in which the socket
/// is reachable with looser ones: bind in a private (0700) directory beside
/// it, chmod, then hard-link into place, which fails rather than replace a
/// file that appeared meanwhile. Falls back to bind-then-chmod when the
/// private path would be too long for a socket address.
fn bind_with_mode(path: &Path, mode: u32) -> io::Result<UnixListener> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let private = parent.join(format!(".netsock-bind-{}-{n}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let staged = private.join("s");
    let linked = (|| -> io::Result<std::os::unix::net::UnixListener> {
        let listener = std::os::unix::net::UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))?;
        std::fs::hard_link(&staged, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    let listener = match linked {
        Ok(listener) => listener,
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            // The staged path is over the socket address limit.
            let listener = std::os::unix::net::UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            listener
        }
        Err(e) => return Err(e),
    };
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

pub(super) async fn accept(listener: &UnixListener) -> io::Result<super::Accepted> {
    let (stream, peer) = listener.accept().await?;
    let cred = match stream.peer_cred() {
        Ok(c) => Some(super::PeerCred {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid(),
        }),
        Err(err) => {
            tracing::debug!(%err, "no peer credentials");
            None
        }
    };
    let peer = PeerAddr::Unix(peer.as_pathname().map(Path::to_path_buf));
    let (r, w, peer) = split(stream, peer);
    Ok((r, w, peer, cred))
}

pub(super) async fn connect(path: &Path) -> io::Result<(ReadHalf, WriteHalf, PeerAddr)> {
    let stream = UnixStream::connect(path).await?;
    Ok(split(stream, PeerAddr::Unix(Some(path.to_path_buf()))))
}

fn split(stream: UnixStream, peer: PeerAddr) -> (ReadHalf, WriteHalf, PeerAddr) {
    let (r, w) = stream.into_split();
    (ReadHalf::Unix(r), WriteHalf::Unix(w), peer)
}
