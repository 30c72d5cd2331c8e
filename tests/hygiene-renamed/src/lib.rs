//! A derived enum and a service compiled against `netsock` renamed to
//! `renamed_netsock` in `Cargo.toml`, with no prelude: the macros must name
//! everything by absolute path, and through `crate = ".."` when told to.
//! `tests/tests/hygiene.rs` serves and calls them.
#![no_implicit_prelude]

use ::renamed_netsock::service::Context;
use ::std::string::String;
use ::std::vec::Vec;

/// Events and a request, derived with the crate path.
#[derive(
    ::renamed_netsock::Events, ::serde::Serialize, ::serde::Deserialize, ::std::fmt::Debug,
)]
#[netsock(crate = "::renamed_netsock")]
pub enum Api {
    /// A unit event.
    Ping,
    /// A struct event.
    Message {
        /// The text.
        text: String,
    },
    /// A request.
    #[request(response = i64)]
    Sum(Vec<i64>),
}

/// A service, with the crate path.
#[::renamed_netsock::service(crate = "::renamed_netsock")]
pub trait Summing {
    /// Adds.
    async fn sum(&self, numbers: Vec<i64>) -> i64;
    /// The first number, or the service's own error.
    async fn first(&self, numbers: Vec<i64>) -> ::std::result::Result<i64, String>;
    /// The caller's connection id, from the context.
    async fn who(&self, ctx: &Context) -> u64;
}

/// The implementation.
#[derive(::std::fmt::Debug)]
pub struct Summer;

impl Summing for Summer {
    async fn sum(&self, numbers: Vec<i64>) -> i64 {
        ::std::iter::Iterator::sum(numbers.iter())
    }

    async fn first(&self, numbers: Vec<i64>) -> ::std::result::Result<i64, String> {
        match numbers.first() {
            ::std::option::Option::Some(n) => ::std::result::Result::Ok(*n),
            ::std::option::Option::None => {
                ::std::result::Result::Err(::std::string::ToString::to_string("empty"))
            }
        }
    }

    async fn who(&self, ctx: &Context) -> u64 {
        ctx.id().0
    }
}
