//! Generated code uses absolute paths only: it compiles without the prelude.
#![no_implicit_prelude]

#[derive(::netsock::Events, ::serde::Serialize, ::serde::Deserialize)]
enum Api {
    Ping,
    Message {
        text: ::std::string::String,
    },
    #[request(response = i64)]
    Sum(::std::vec::Vec<i64>),
}

#[::netsock::service]
trait SumNumbers {
    async fn sum(&self, numbers: ::std::vec::Vec<i64>) -> i64;
    async fn peer(&self, ctx: &::netsock::service::Context) -> ::std::string::String;
    async fn fallible(&self) -> ::std::result::Result<u8, ::std::string::String>;
}

fn main() {}
