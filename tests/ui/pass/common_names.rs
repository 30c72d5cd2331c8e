//! The first events a socket.io user writes are named like netsock's own
//! methods (`join`, `close`, `on_error`): they work. A request stub or a
//! handler that would take such a name gets a suffix (`close_request`,
//! `on_error_event`); `emit_x`, `once_x` and `on_x_with` never clash.

use netsock::{Events, Server, Socket};
use serde::{Deserialize, Serialize};

#[derive(Events, Serialize, Deserialize, Debug)]
enum Api {
    Join(String),
    Leave(String),
    /// `emit_error`, `on_error_event`: `on_error` is the socket's error hook.
    Error(String),
    Disconnect,
    /// The stub `close_request`: `close` closes the socket.
    #[request(response = bool)]
    Close,
    #[request(response = u64)]
    Timeout(u64),
    #[request(response = String)]
    To(String),
    #[request(response = ())]
    Emit,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let io = Server::<Api>::bind("memory://common-names").await?;
    io.on_connection(|socket: Socket<Api>| async move {
        socket.on_join_with(|socket, room| async move {
            socket.join(&room);
            socket.emit_join(room).await
        });
        socket.on_leave(|_room| async {});
        socket.on_error_event(|_text| async {});
        socket.on_disconnect_event(|| async {});
        socket.on_close(|| async { true });
        socket.on_timeout(|ms| async move { ms * 2 });
        socket.on_to(|room| async move { format!("to {room}") });
        socket.on_emit(|| async {});
        Ok(())
    });
    io.spawn();

    let socket = Socket::<Api>::connect("memory://common-names").await?;
    socket.emit_join("lobby".into()).await?;
    assert_eq!(socket.once_join().await?, "lobby");
    socket.emit_leave("lobby".into()).await?;
    socket.emit_error("oops".into()).await?;
    socket.emit_disconnect().await?;
    assert!(socket.close_request().await?);
    assert_eq!(socket.timeout_request(21).await?, 42);
    assert_eq!(socket.to_request("lobby".into()).await?, "to lobby");
    socket.emit_request().await?;
    // The socket's own methods are untouched.
    let _ = socket.timeout(std::time::Duration::from_secs(1));
    socket.close().await;
    io.close().await;
    Ok(())
}
