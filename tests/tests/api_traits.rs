//! The public types can be shared across tasks and printed, and errors
//! chain to their causes.

use std::fmt::Debug;

use netsock::{
    Addr, Broadcast, CallError, CloseReason, CodecError, DisconnectReason, Error, Except,
    Handshake, MissReason, PeerAddr, PeerCred, RejectReason, SchemaId, Server, ServerBuilder,
    ServerMetrics, Socket, SocketBuilder, SocketError, SocketId, SocketMetrics, Variant,
};
use tests::api::Api;

fn shareable<T: Send + Sync + Debug>() {}

#[test]
fn public_types_are_send_sync_and_debug() {
    shareable::<Server<Api>>();
    shareable::<ServerBuilder<Api>>();
    shareable::<Socket<Api>>();
    shareable::<SocketBuilder<Api>>();
    shareable::<Broadcast<Api>>();
    shareable::<Handshake>();
    shareable::<Error>();
    shareable::<CallError>();
    shareable::<SocketError>();
    shareable::<MissReason>();
    shareable::<CodecError>();
    shareable::<DisconnectReason>();
    shareable::<CloseReason>();
    shareable::<RejectReason>();
    shareable::<Addr>();
    shareable::<PeerAddr>();
    shareable::<PeerCred>();
    shareable::<SocketId>();
    shareable::<SchemaId>();
    shareable::<Variant>();
    shareable::<Except>();
    shareable::<SocketMetrics>();
    shareable::<ServerMetrics>();
}

#[tokio::test]
async fn errors_chain_to_their_cause() {
    let dir = tests::TempDir::new();
    let err = Socket::<Api>::connect(dir.path().join("nobody.sock"))
        .await
        .unwrap_err();
    let cause = std::error::Error::source(&err).expect("the OS error");
    assert!(cause.downcast_ref::<std::io::Error>().is_some());
    // A failed call converts into an Error that keeps it.
    let call: Error = CallError::Timeout {
        after: std::time::Duration::from_secs(1),
    }
    .into();
    assert!(matches!(call, Error::Call(CallError::Timeout { .. })));
}
