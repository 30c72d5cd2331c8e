//! The wire: bytes only. How frames are laid out, encoded and decoded, and
//! the messages of the handshake. Nothing here touches a socket, a task or
//! a clock; the public [`frame`] module is the specification in code.

pub mod frame;
