//! TCP: `TCP_NODELAY` on both ends, since netsock batches writes itself.

use std::io;

use tokio::net::{TcpListener, TcpStream};

use super::{Listener, PeerAddr, ReadHalf, WriteHalf};
use crate::addr::Addr;
use crate::error::Error;

pub(super) async fn bind(
    addr: &Addr,
    host: &str,
    port: u16,
) -> Result<(Listener, Addr, Option<super::SocketFile>), Error> {
    let listener = TcpListener::bind((host, port))
        .await
        .map_err(|source| Error::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Bind {
        addr: addr.clone(),
        source,
    })?;
    Ok((Listener::Tcp(listener), local.into(), None))
}

pub(super) async fn accept(listener: &TcpListener) -> io::Result<super::Accepted> {
    let (stream, peer) = listener.accept().await?;
    let (r, w, peer) = split(stream, PeerAddr::Tcp(peer));
    Ok((r, w, peer, None))
}

pub(super) async fn connect(host: &str, port: u16) -> io::Result<(ReadHalf, WriteHalf, PeerAddr)> {
    let stream = TcpStream::connect((host, port)).await?;
    let peer = stream.peer_addr()?;
    Ok(split(stream, PeerAddr::Tcp(peer)))
}

fn split(stream: TcpStream, peer: PeerAddr) -> (ReadHalf, WriteHalf, PeerAddr) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "could not set TCP_NODELAY");
    }
    let (r, w) = stream.into_split();
    (ReadHalf::Tcp(r), WriteHalf::Tcp(w), peer)
}
