//! The wire: bytes only. How frames are laid out, encoded and decoded, and
//! the messages of the handshake. Nothing here touches a socket, a task or
//! a clock; the public [`frame`] module is the specification in code, and
//! [`codec`] keeps the serializer's errors behind netsock's own type.

pub(crate) mod codec;
pub mod frame;
