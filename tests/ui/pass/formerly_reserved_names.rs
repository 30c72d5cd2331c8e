//! `on`, `on_request` and `on_event` are no methods of `Socket` (handlers
//! are registered by index only through the hidden `netsock::__private`),
//! so variants generating them are accepted, and calls to them are not
//! ambiguous.

use netsock::{Events, Socket};
use serde::{Deserialize, Serialize};

#[derive(Events, Serialize, Deserialize, Debug)]
enum Api {
    /// `emit_request` and `on_request`.
    Request(String),
    /// `emit_event` and `on_event`.
    Event,
    /// The request stub `on`, and `on_on`.
    #[request(response = bool)]
    On,
}

#[allow(dead_code)]
async fn uses(socket: Socket<Api>) -> Result<(), Box<dyn std::error::Error>> {
    socket.on_request(|text| async move { drop(text) });
    socket.on_event(|| async {});
    socket.on_on(|| async { true });
    socket.emit_request("hi".into()).await?;
    socket.emit_event().await?;
    let _: bool = socket.on().await?;
    Ok(())
}

fn main() {}
