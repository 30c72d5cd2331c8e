//! Unit, tuple and struct variants, events and requests: the schema text,
//! the variant list, and every generated method.

use netsock::{Events, Server, Socket, Variant};
use serde::{Deserialize, Serialize};

#[derive(Events, Serialize, Deserialize, Debug)]
enum Api {
    Ping,
    Pair(u8, String),
    Message {
        text: String,
        total_clients: usize,
    },
    #[request(response = i64)]
    Sum(Vec<i64>),
    #[request(response = Option<String>)]
    Lookup {
        key: String,
    },
    #[request(response = ())]
    Reset,
}

#[allow(dead_code)]
async fn uses(socket: Socket<Api>, io: Server<Api>) -> netsock::Result<()> {
    socket.on_ping(|| async {});
    socket.on_pair(|_n: u8, _s: String| async move {});
    socket.on_message(|text, total_clients| async move { println!("{text} {total_clients}") });
    socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
    socket.on_lookup(|key| async move { Some(key) });
    socket.on_reset(|| async {});
    socket.emit_ping().await?;
    socket.emit_pair(1, "one".into()).await?;
    socket.emit_message("hi".into(), 2).await?;
    io.emit_message("to everyone".into(), 2).await?;
    let _: i64 = socket.sum(vec![1, 2]).await?;
    let _: Option<String> = socket.lookup("k".into()).await?;
    socket.reset().await?;
    Ok(())
}

fn main() {
    assert_eq!(
        Api::SCHEMA,
        "Api{Ping,Pair(u8,String),Message{text:String,total_clients:usize},\
         Sum(Vec<i64>)->i64,Lookup{key:String}->Option<String>,Reset->()}"
    );
    assert_eq!(Api::VARIANTS.len(), 6);
    assert_eq!(Api::VARIANTS[0], Variant::event("Ping"));
    assert_eq!(Api::VARIANTS[3], Variant::request("Sum", "i64"));
    assert_eq!(Api::Lookup { key: String::new() }.variant_index(), 4);
    assert_eq!(Api::Pair(0, String::new()).variant_name(), "Pair");
}
