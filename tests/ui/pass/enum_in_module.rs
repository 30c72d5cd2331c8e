//! An enum declared in another module: its generated traits are imported
//! with it.

mod api {
    use netsock::Events;
    use serde::{Deserialize, Serialize};

    #[derive(Events, Serialize, Deserialize, Debug)]
    pub enum Api {
        Note(String),
        #[request(response = usize)]
        Len(String),
    }
}

use api::{Api, ApiEmit, ApiHandle};
use netsock::Socket;

#[allow(dead_code)]
async fn uses(socket: Socket<Api>) -> Result<(), Box<dyn std::error::Error>> {
    socket.on_note(|note| async move { println!("{note}") });
    socket.on_len(|s| async move { s.len() });
    socket.emit_note("n".into()).await?;
    let _: usize = socket.len("abc".into()).await?;
    Ok(())
}

fn main() {}
