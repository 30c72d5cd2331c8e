//! Macro hygiene: generated code names everything by absolute path.
//!
//! * `hygiene-renamed` (a workspace member) compiles a derived enum and a
//!   service against `netsock` renamed to `renamed_netsock`, under
//!   `#![no_implicit_prelude]`, using the `crate = ".."` attribute; here they
//!   are served and called.
//! * The module `no_prelude` below declares an enum and a service with the
//!   default `::netsock` path and no prelude. (Only the module: the test
//!   harness's `#[tokio::test]` itself needs the prelude.)

use hygiene_renamed::{Api, ApiEmit, ApiHandle, Summer, SummingClient, SummingServer};
use netsock::{Server, Socket};

#[no_implicit_prelude]
mod no_prelude {
    use ::std::string::String;

    #[derive(::netsock::Events, ::serde::Serialize, ::serde::Deserialize)]
    pub enum Local {
        #[request(response = usize)]
        Len(String),
        Note {
            text: String,
        },
    }

    #[::netsock::service]
    pub trait Echo {
        async fn echo(&self, text: String) -> String;
        async fn peer(&self, ctx: &::netsock::service::Context) -> String;
    }

    pub struct Echoer;

    impl Echo for Echoer {
        async fn echo(&self, text: String) -> String {
            text
        }
        async fn peer(&self, ctx: &::netsock::service::Context) -> String {
            ::std::string::ToString::to_string(ctx.peer_addr())
        }
    }
}

use no_prelude::{EchoClient, EchoServer, Echoer, Local, LocalEmit, LocalHandle};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn renamed_dependency_enum_round_trip() -> TestResult {
    let io = Server::<Api>::bind(0).await?;
    io.on_connection(|socket: Socket<Api>| async move {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        Ok(())
    });
    io.spawn();
    let socket = Socket::<Api>::connect(io.local_addr()).await?;
    assert_eq!(socket.sum(vec![1, 2, 3, 4, 5, 6]).await?, 21);
    socket.emit_ping().await?;
    io.close().await;
    Ok(())
}

#[tokio::test]
async fn renamed_dependency_service_round_trip() -> TestResult {
    let server = SummingServer::new(Summer).bind(0).await?;
    server.spawn();
    let client = SummingClient::connect(server.local_addr()).await?;
    assert_eq!(client.sum(vec![1, 2, 3, 4, 5, 6]).await?, 21);
    assert_eq!(client.first(vec![7, 8]).await?, Ok(7));
    assert_eq!(client.first(vec![]).await?, Err("empty".to_string()));
    assert_eq!(client.who().await?, client.socket().id().0);
    server.close().await;
    Ok(())
}

#[tokio::test]
async fn no_prelude_enum_and_service() -> TestResult {
    let io = Server::<Local>::bind(0).await?;
    io.on_connection(|socket: Socket<Local>| async move {
        socket.on_len(|text| async move { text.len() });
        socket.on_note(|_text| async move {});
        Ok(())
    });
    io.spawn();
    let socket = Socket::<Local>::connect(io.local_addr()).await?;
    assert_eq!(socket.len("four".to_string()).await?, 4);
    socket.emit_note("n".to_string()).await?;
    io.close().await;

    let server = EchoServer::new(Echoer).bind(0).await?;
    server.spawn();
    let client = EchoClient::connect(server.local_addr()).await?;
    assert_eq!(client.echo("hi".to_string()).await?, "hi");
    assert!(client.peer().await?.starts_with("tcp://"));
    server.close().await;
    Ok(())
}
