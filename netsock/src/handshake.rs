//! The handshake: `Hello` from the connecting side, `Welcome` or `Reject` back.

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

use crate::config::Config;
use crate::conn::Handshaken;
use crate::frame::{self, FrameCodec, Header, Hello, RejectReason, MAGIC, PROTOCOL_VERSION};
use crate::transport::{PeerAddr, PeerCred, ReadHalf, WriteHalf};
use crate::{Error, Events, SchemaId, SocketId};

/// The read buffer a connection starts with; it grows on demand (the
/// decoder reserves room for the frame it is reading, and more once the
/// connection is busy). Small, because most connections are idle most of
/// the time.
const READ_START: usize = frame::READ_MIN;

async fn send(writer: &mut WriteHalf, header: &Header) -> Result<(), Error> {
    let frame = frame::encode(header, None::<&()>, usize::MAX)?;
    writer.write_all(&frame).await?;
    Ok(())
}

async fn first_frame(reader: &mut FramedRead<ReadHalf, FrameCodec>) -> Result<Header, Error> {
    match reader.next().await {
        None => Err(Error::Protocol(
            "the peer closed the connection during the handshake".into(),
        )),
        Some(Err(Error::FrameTooLarge { .. })) => Err(Error::Protocol(
            "the peer's first frame is not a netsock handshake".into(),
        )),
        Some(Err(e)) => Err(e),
        Some(Ok(body)) => Ok(frame::decode(&body)?.0),
    }
}

/// Client side: sends `Hello`, waits for the answer.
pub(crate) async fn connect<In: Events, Out: Events>(
    read: ReadHalf,
    mut writer: WriteHalf,
    peer: PeerAddr,
    config: &Config,
    auth: Option<Vec<u8>>,
) -> Result<Handshaken, Error> {
    let mut reader =
        FramedRead::with_capacity(read, FrameCodec::new(config.max_frame_size), READ_START);
    let hello = Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        sends: Out::SCHEMA_ID,
        receives: In::SCHEMA_ID,
        max_frame: config.max_frame_size as u32,
        lenient: config.lenient,
        auth,
    };
    send(&mut writer, &Header::Hello(hello)).await?;
    match first_frame(&mut reader).await? {
        Header::Welcome { id, max_frame } => Ok(Handshaken {
            id: SocketId(id),
            peer,
            cred: None,
            data: Default::default(),
            peer_max_frame: max_frame as usize,
            reader,
            writer,
        }),
        Header::Reject(RejectReason::SchemaMismatch { server, .. }) => Err(Error::SchemaMismatch {
            local_sends: Out::SCHEMA_ID,
            local_receives: In::SCHEMA_ID,
            remote_sends: server.0,
            remote_receives: server.1,
        }),
        Header::Reject(RejectReason::VersionMismatch { server, client }) => {
            Err(Error::VersionMismatch {
                local: client,
                remote: server,
            })
        }
        Header::Reject(reason) => Err(Error::Rejected(reason)),
        other => Err(Error::Protocol(format!(
            "expected a handshake reply, got {other:?}"
        ))),
    }
}

/// Server side: reads `Hello`, answers `Reject` or returns the connection,
/// whose `Welcome` ([`welcome`]) the server queues once it lists the socket.
pub(crate) async fn accept<In: Events, Out: Events>(
    read: ReadHalf,
    mut writer: WriteHalf,
    peer: PeerAddr,
    cred: Option<PeerCred>,
    config: &Config,
    id: SocketId,
) -> Result<(Handshaken, Hello), Error> {
    let mut reader =
        FramedRead::with_capacity(read, FrameCodec::new(config.max_frame_size), READ_START);
    let hello = match first_frame(&mut reader).await {
        Ok(Header::Hello(hello)) if hello.magic == MAGIC => hello,
        Ok(_) | Err(Error::Protocol(_)) => {
            let _ = send(&mut writer, &Header::Reject(RejectReason::BadMagic)).await;
            return Err(Error::Protocol(
                "the first frame is not a netsock handshake".into(),
            ));
        }
        Err(e) => return Err(e),
    };
    let ours: (SchemaId, SchemaId) = (Out::SCHEMA_ID, In::SCHEMA_ID);
    let reject = if hello.version != PROTOCOL_VERSION {
        Some(RejectReason::VersionMismatch {
            server: PROTOCOL_VERSION,
            client: hello.version,
        })
    } else if (hello.receives, hello.sends) != ours && !(config.lenient || hello.lenient) {
        Some(RejectReason::SchemaMismatch {
            server: ours,
            client: (hello.sends, hello.receives),
        })
    } else {
        None
    };
    if let Some(reason) = reject {
        let _ = send(&mut writer, &Header::Reject(reason.clone())).await;
        return Err(Error::Rejected(reason));
    }
    let peer_max_frame = hello.max_frame as usize;
    Ok((
        Handshaken {
            id,
            peer,
            cred,
            data: Default::default(),
            peer_max_frame,
            reader,
            writer,
        },
        hello,
    ))
}

/// The `Welcome` frame accepting connection `id`.
pub(crate) fn welcome(id: SocketId, config: &Config) -> Result<bytes::Bytes, Error> {
    let header = Header::Welcome {
        id: id.0,
        max_frame: config.max_frame_size as u32,
    };
    frame::encode(&header, None::<&()>, usize::MAX)
}

/// Refuses a connection whose handshake was read but not yet answered.
pub(crate) async fn reject(writer: &mut WriteHalf, reason: RejectReason) {
    let _ = send(writer, &Header::Reject(reason)).await;
    let _ = writer.shutdown().await;
}
