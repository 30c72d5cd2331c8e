//! Variant names become snake_case methods; keywords become raw identifiers.

use netsock::{Events, Socket};
use serde::{Deserialize, Serialize};

#[derive(Events, Serialize, Deserialize, Debug)]
enum Api {
    HTTPRequest(String),
    V2Api,
    UserLoggedIn {
        name: String,
    },
    #[request(response = String)]
    Type(u32),
    #[request(response = u32)]
    GetUserId {
        name: String,
    },
}

#[allow(dead_code)]
async fn uses(socket: Socket<Api>) -> Result<(), Box<dyn std::error::Error>> {
    socket.emit_http_request("GET /".into()).await?;
    socket.emit_v2_api().await?;
    socket.emit_user_logged_in("ann".into()).await?;
    socket.on_user_logged_in(|name| async move { drop(name) });
    let _: String = socket.r#type(1).await?;
    socket.on_type(|n| async move { n.to_string() });
    let _: u32 = socket.get_user_id("ann".into()).await?;
    socket.on_get_user_id(|name| async move { name.len() as u32 });
    Ok(())
}

fn main() {}
