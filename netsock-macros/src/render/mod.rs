//! Rendering each macro's [model](crate::model) into Rust: one renderer per
//! macro, each writing one generated item per function.
//!
//! Generated code names everything by absolute path (`::core::..`,
//! `::std::..`, and netsock by the model's `CratePath`), so that it compiles
//! whatever the user's code has in scope, even under
//! `#![no_implicit_prelude]`; the locals it binds next to the user's names
//! are hidden from them (`names::hidden`).

mod describe;
mod events;
mod service;
mod services;

pub(crate) use self::describe::describe;
pub(crate) use self::events::events;
pub(crate) use self::service::service;
pub(crate) use self::services::services;
