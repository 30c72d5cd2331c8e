//! [`CodecError`]: the serializer's errors, behind a type of netsock's own.

use std::fmt;

/// A value could not be encoded in netsock's wire format, or decoded from
/// it: the value's `serde` implementation failed, or the bytes are not a
/// value of that type.
///
/// Its message is the serializer's. The serializer itself (postcard) stays
/// hidden, so that netsock can upgrade it without breaking code that
/// handles this error; there is nothing to match on, and
/// [`source`](std::error::Error::source) is `None` (the message already says
/// everything).
///
/// ```
/// use netsock::frame::{encode, FrameError, Header};
///
/// /// A value whose `Serialize` implementation always fails.
/// struct Unsendable;
/// impl serde::Serialize for Unsendable {
///     fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
///         Err(serde::ser::Error::custom("not today"))
///     }
/// }
///
/// let err = encode(&Header::Event, Some(&Unsendable), 1024).unwrap_err();
/// let FrameError::Encode { what, source } = err else { panic!("{err}") };
/// assert_eq!(what, "the payload");
/// let codec: &netsock::CodecError = &source;
/// assert!(!codec.to_string().is_empty());
/// assert!(std::error::Error::source(codec).is_none());
/// ```
#[derive(Clone, Debug)]
pub struct CodecError(postcard::Error);

impl CodecError {
    pub(crate) fn new(err: postcard::Error) -> Self {
        CodecError(err)
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for CodecError {}
