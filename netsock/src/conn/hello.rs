//! The handshake: `Hello` from the connecting side, `Welcome` or `Reject` back.

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

use crate::config::Config;
use crate::conn::Handshaken;
use crate::conn::SocketId;
use crate::error::{Error, TlsError};
use crate::events::{Events, SchemaId};
use crate::schema_diff;
use crate::transport::{PeerAddr, ReadHalf, WriteHalf};
use crate::wire::frame::{
    self, FrameCodec, FrameError, Header, Hello, RejectReason, SessionAsk, SessionGrant, MAGIC,
    MIN_MAX_FRAME_SIZE, PROTOCOL_VERSION,
};

/// The read buffer a connection starts with; it grows on demand (the
/// decoder reserves room for the frame it is reading, and more once the
/// connection is busy). Small, because most connections are idle most of
/// the time.
const READ_START: usize = frame::READ_MIN;

/// The largest `Reject` carrying the server's schema texts; longer texts
/// are not sent (the client then shows the ids only).
const MAX_SCHEMA_REPLY: usize = 64 * 1024;

/// Sends a handshake frame, within the peer's frame limit `max`.
async fn send(writer: &mut WriteHalf, header: Header, max: usize) -> Result<(), Error> {
    let frame = frame::encode_control(header, max)?;
    writer.write_all(&frame).await?;
    Ok(())
}

/// Whether `bytes` start like a TLS record (a handshake or an alert): a
/// TLS peer on a plaintext connection.
fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, ..])
}

/// The first frame's header, and its payload (a session's ask or grant).
async fn first_frame(
    reader: &mut FramedRead<ReadHalf, FrameCodec>,
) -> Result<(Header, bytes::Bytes), Error> {
    let first = reader.next().await;
    // The TLS layer under this connection failed: say why, not that the
    // peer hung up.
    if let Some(cause) = reader.get_ref().tls_failure() {
        return Err(Error::Tls {
            addr: String::new(),
            cause,
        });
    }
    match first {
        Some(Err(FrameError::TooLarge { .. })) if looks_like_tls(reader.read_buffer()) => {
            Err(Error::Tls {
                addr: String::new(),
                cause: TlsError::TlsRequired,
            })
        }
        None => Err(Error::Protocol(
            "the peer closed the connection during the handshake".into(),
        )),
        Some(Err(FrameError::TooLarge { .. })) => Err(Error::Protocol(
            "the peer's first frame is not a netsock handshake".into(),
        )),
        Some(Err(e)) => Err(e.into()),
        Some(Ok(body)) => Ok(frame::decode(&body)?),
    }
}

/// Client side: sends `Hello` (asking for a session with `ask`), waits for
/// the answer; gives the server's session grant, if it made one.
pub(crate) async fn connect<In: Events, Out: Events>(
    read: ReadHalf,
    mut writer: WriteHalf,
    peer: PeerAddr,
    config: &Config,
    auth: Option<Vec<u8>>,
    ask: Option<SessionAsk>,
) -> Result<(Handshaken, Option<SessionGrant>), Error> {
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
    let cert = reader.get_ref().peer_cert();
    let hello = frame::encode(&Header::Hello(hello), ask.as_ref(), usize::MAX)?;
    writer.write_all(&hello).await?;
    let (first, payload) = first_frame(&mut reader).await.map_err(|err| match err {
        Error::Tls { cause, .. } => Error::Tls {
            addr: peer.to_string(),
            cause,
        },
        err => err,
    })?;
    match first {
        Header::Welcome { max_frame, .. } if (max_frame as usize) < MIN_MAX_FRAME_SIZE => {
            Err(Error::Protocol(format!(
                "the server announced a frame limit of {max_frame} bytes, below the protocol minimum of {MIN_MAX_FRAME_SIZE}"
            )))
        }
        Header::Welcome { id, max_frame } => {
            // A grant only when asked for; a server that knows no sessions
            // sends none.
            let grant = match ask {
                Some(_) if !payload.is_empty() => {
                    Some(postcard::from_bytes::<SessionGrant>(&payload).map_err(|e| {
                        Error::Protocol(format!("undecodable session grant in the Welcome: {e}"))
                    })?)
                }
                _ => None,
            };
            let conn = Handshaken {
                id: SocketId(id),
                peer,
                cred: None,
                cert,
                data: Default::default(),
                peer_max_frame: max_frame as usize,
                reader,
                writer,
                session: None,
            };
            Ok((conn, grant))
        }
        Header::Reject(RejectReason::SchemaMismatch { server, .. }) => Err(Error::SchemaMismatch {
            local_sends: Out::SCHEMA_ID,
            local_receives: In::SCHEMA_ID,
            remote_sends: server.0,
            remote_receives: server.1,
            differences: Vec::new(),
        }),
        Header::Reject(RejectReason::SchemaDiffers {
            server,
            server_schema: (sends, receives),
            ..
        }) => {
            // What the server receives is what this side sends.
            let mut differences = schema_diff::differences(&receives, Out::SCHEMA);
            if In::SCHEMA != Out::SCHEMA || sends != receives {
                differences.extend(schema_diff::differences(&sends, In::SCHEMA));
            }
            Err(Error::SchemaMismatch {
                local_sends: Out::SCHEMA_ID,
                local_receives: In::SCHEMA_ID,
                remote_sends: server.0,
                remote_receives: server.1,
                differences,
            })
        }
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

/// The server's reader for a new connection: it takes frames of at most
/// `max_handshake_size` until [`accept`] has read the `Hello`, so a stranger
/// cannot make the server buffer a full-size frame before it is known.
pub(crate) fn server_reader(read: ReadHalf, config: &Config) -> FramedRead<ReadHalf, FrameCodec> {
    let max = config.max_handshake_size.min(config.max_frame_size);
    FramedRead::with_capacity(read, FrameCodec::new(max), READ_START)
}

/// Server side: reads `Hello` and either answers `Reject` or returns it,
/// with the session the client asks for, if any; the server queues the
/// `Welcome` ([`welcome`]) once it lists the socket. From then on the
/// reader takes frames up to `max_frame_size`.
pub(crate) async fn accept<In: Events, Out: Events>(
    reader: &mut FramedRead<ReadHalf, FrameCodec>,
    writer: &mut WriteHalf,
    config: &Config,
) -> Result<(Hello, Option<SessionAsk>), Error> {
    let (hello, payload) = match first_frame(reader).await {
        Ok((Header::Hello(hello), payload)) if hello.magic == MAGIC => (hello, payload),
        first @ (Ok(_) | Err(Error::Protocol(_) | Error::Tls { .. })) => {
            // A TLS client reads this plaintext and knows we do not speak TLS.
            let _ = send(
                writer,
                Header::Reject(RejectReason::BadMagic),
                MIN_MAX_FRAME_SIZE,
            )
            .await;
            return Err(match first {
                Err(err @ Error::Tls { .. }) => err,
                _ => Error::Protocol("the first frame is not a netsock handshake".into()),
            });
        }
        Err(e) => return Err(e),
    };
    let ours: (SchemaId, SchemaId) = (Out::SCHEMA_ID, In::SCHEMA_ID);
    let ask = match payload.is_empty() {
        true => Ok(None),
        false => postcard::from_bytes::<SessionAsk>(&payload).map(Some),
    };
    let reject = if hello.version != PROTOCOL_VERSION {
        Some(RejectReason::VersionMismatch {
            server: PROTOCOL_VERSION,
            client: hello.version,
        })
    } else if (hello.max_frame as usize) < MIN_MAX_FRAME_SIZE {
        Some(RejectReason::FrameLimitTooSmall {
            max_frame: hello.max_frame,
            min: MIN_MAX_FRAME_SIZE as u32,
        })
    } else if let Err(e) = &ask {
        Some(RejectReason::Other(format!(
            "undecodable session request in the Hello: {e}"
        )))
    } else if (hello.receives, hello.sends) != ours && !(config.lenient || hello.lenient) {
        Some(RejectReason::SchemaMismatch {
            server: ours,
            client: (hello.sends, hello.receives),
        })
    } else {
        None
    };
    if let Some(reason) = reject {
        // With our schema texts when they fit what the client takes (and a
        // bound of our own: it has not been accepted yet).
        let limit = (hello.max_frame as usize).clamp(MIN_MAX_FRAME_SIZE, MAX_SCHEMA_REPLY);
        let detailed = match &reason {
            RejectReason::SchemaMismatch { server, client } => frame::encode_control(
                Header::Reject(RejectReason::SchemaDiffers {
                    server: *server,
                    client: *client,
                    server_schema: (Out::SCHEMA.to_owned(), In::SCHEMA.to_owned()),
                }),
                limit,
            )
            .ok(),
            _ => None,
        };
        let _ = match detailed {
            Some(frame) => writer.write_all(&frame).await.map_err(Error::from),
            None => send(writer, Header::Reject(reason.clone()), MIN_MAX_FRAME_SIZE).await,
        };
        return Err(Error::Rejected(reason));
    }
    reader
        .decoder_mut()
        .set_max_frame_size(config.max_frame_size);
    Ok((hello, ask.ok().flatten()))
}

/// The `Welcome` frame accepting connection `id`, with the session grant.
pub(crate) fn welcome(
    id: SocketId,
    config: &Config,
    grant: Option<&SessionGrant>,
) -> Result<bytes::Bytes, Error> {
    let header = Header::Welcome {
        id: id.0,
        max_frame: config.max_frame_size as u32,
    };
    Ok(frame::encode(&header, grant, usize::MAX)?)
}

/// Refuses a connection whose handshake was not yet answered, within the
/// frame limit every peer accepts.
pub(crate) async fn reject(writer: &mut WriteHalf, reason: RejectReason) {
    let _ = send(writer, Header::Reject(reason), MIN_MAX_FRAME_SIZE).await;
    let _ = writer.shutdown().await;
}
