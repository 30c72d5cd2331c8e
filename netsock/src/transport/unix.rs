//! Unix domain sockets, and the socket file's life cycle: a stale file left by
//! a dead server is replaced, a live server's file is never taken, and the
//! file is removed when the listener goes away.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use super::{Listener, PeerAddr, ReadHalf, WriteHalf};
use crate::{Addr, Error};

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
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    let meta = std::fs::symlink_metadata(path).map_err(bind_err)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    Ok((Listener::Unix(listener), addr.clone(), Some(file)))
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
