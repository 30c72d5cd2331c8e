//! Parsing and checking each macro's input into its [model](crate::model):
//! one parser per macro, and `attrs` for the attributes they share.
//!
//! Every check pushes its error (pointing at the offending token) into
//! [`Errors`](crate::error::Errors) and carries on, so one compile reports
//! every mistake. The parsers import `attrs`; `attrs` imports no parser.

mod attrs;
mod describe;
mod events;
mod service;
mod services;

pub(crate) use self::describe::describe;
pub(crate) use self::events::events;
pub(crate) use self::service::service;
pub(crate) use self::services::services;
