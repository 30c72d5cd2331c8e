"""Errors, mirroring the Rust crate's.

* :class:`ConnectError` and its kinds for what ``connect`` and ``serve``
  raise: a bad address, a refused connection, a handshake rejected
  (:class:`Rejected`, :class:`SchemaMismatch`, :class:`VersionMismatch`).
* :class:`CallError` and its kinds for one request, as ``CallError`` in Rust:
  :class:`Timeout`, :class:`Disconnected`, :class:`NoHandler`,
  :class:`NotARequest`, :class:`HandlerPanicked`, :class:`BadRequest`,
  :class:`ResponseTooLarge`, :class:`EncodeFailed`, :class:`HandlerFailed`,
  :class:`StreamProtocol`, plus
  :class:`FrameTooLarge` and :class:`CodecError`. Each has a ``kind``, the
  Rust variant's name.
* :class:`ValidationError` when a value does not match the schema (raised
  before anything is sent), :class:`DecodeError` when bytes from the peer do
  not decode, :class:`ProtocolError` when the peer breaks the protocol,
  :class:`SchemaError` for a schema document that cannot be used.
* :class:`DisconnectReason`: why a connection ended.

Everything derives from :class:`NetsockError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .frames import CloseReason, RejectReason

__all__ = [
    "NetsockError",
    "SchemaError",
    "ValidationError",
    "DecodeError",
    "ProtocolError",
    "ConnectError",
    "InvalidAddr",
    "ConnectFailed",
    "BindFailed",
    "HandshakeTimeout",
    "Rejected",
    "SchemaMismatch",
    "VersionMismatch",
    "CallError",
    "Timeout",
    "Disconnected",
    "NoHandler",
    "NotARequest",
    "HandlerPanicked",
    "HandlerFailed",
    "StreamProtocol",
    "BadRequest",
    "ResponseTooLarge",
    "EncodeFailed",
    "FrameTooLarge",
    "CodecError",
    "OfflineBufferFull",
    "SocketError",
    "DisconnectReason",
]


class NetsockError(Exception):
    """The base of every error this package raises."""


class SchemaError(NetsockError, ValueError):
    """A schema JSON document that cannot be used: not format 1, a type
    this client does not know, a ``schema_id`` that is not the hash of its
    ``schema_text``, a reference to an undefined type."""


class ValidationError(NetsockError, TypeError, ValueError):
    """A value does not match the schema; nothing was sent.

    ``path`` names where (``"Point.x"``, ``"Mirror.0.counts['a']"``),
    ``expected`` the schema's type, ``got`` the value found.
    """

    def __init__(self, path: str, expected: str, got: Any, why: str = "") -> None:
        self.path = path
        self.expected = expected
        self.got = got
        shown = repr(got)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        detail = f" ({why})" if why else ""
        super().__init__(f"{path}: expected {expected}, got {type(got).__name__} {shown}{detail}")


class DecodeError(NetsockError, ValueError):
    """Bytes from the peer that do not decode as the schema says."""


class ProtocolError(NetsockError):
    """The peer sent something that is not netsock's protocol."""


# --- connecting and serving --------------------------------------------------


class ConnectError(NetsockError):
    """Connecting (or binding) failed."""


class InvalidAddr(ConnectError, ValueError):
    """An address that cannot be parsed."""

    def __init__(self, addr: object, reason: str) -> None:
        self.addr = addr
        self.reason = reason
        super().__init__(f"invalid address {addr!r}: {reason}")


class ConnectFailed(ConnectError):
    """The socket could not connect (nobody listens, permission denied...)."""

    def __init__(self, addr: str, cause: OSError) -> None:
        self.addr = addr
        self.cause = cause
        super().__init__(f"cannot connect to {addr}: {cause}")


class BindFailed(ConnectError):
    """The server could not listen on the address."""

    def __init__(self, addr: str, cause: OSError | str) -> None:
        self.addr = addr
        self.cause = cause
        super().__init__(f"cannot listen on {addr}: {cause}")


class HandshakeTimeout(ConnectError, TimeoutError):
    """The handshake did not complete in time."""

    def __init__(self, addr: str, after: float) -> None:
        self.addr = addr
        self.after = after
        super().__init__(f"the handshake with {addr} did not complete within {after:g} s")


class Rejected(ConnectError):
    """The server refused the connection; ``reason`` is the
    :class:`~netsock.frames.RejectReason` it sent (``reason.kind`` is
    ``"BadMagic"``, ``"Refused"``, ``"HandshakeTimeout"``, ...)."""

    def __init__(self, reason: RejectReason, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or f"the server rejected the connection: {reason}")


class SchemaMismatch(Rejected):
    """The two programs were built from different event enums (the server
    sent ``SchemaMismatch`` or ``SchemaDiffers``). ``differences`` says, one
    sentence each, which variants differ, when the server sent its schema."""

    def __init__(
        self,
        reason: RejectReason,
        local: tuple[int, int],
        remote: tuple[int, int],
        differences: list[str],
    ) -> None:
        self.local_sends, self.local_receives = local
        self.remote_sends, self.remote_receives = remote
        self.differences = differences
        said = "".join(f"{d}; " for d in differences)
        super().__init__(
            reason,
            f"schema mismatch: {said}this side sends {local[0]:016x} and receives {local[1]:016x}, "
            f"the peer sends {remote[0]:016x} and receives {remote[1]:016x}; generate both from the "
            "same event enums, or make the connection lenient for a rolling upgrade",
        )


class VersionMismatch(Rejected):
    """The peer speaks another version of the wire protocol."""

    def __init__(self, reason: RejectReason, local: int, remote: int) -> None:
        self.local = local
        self.remote = remote
        super().__init__(
            reason,
            f"protocol version mismatch: this side speaks version {local}, the peer version "
            f"{remote}; upgrade the older program",
        )


# --- one request ---------------------------------------------------------------


class CallError(NetsockError):
    """A request failed; the connection may still be open. ``kind`` is the
    name of the Rust ``CallError`` variant."""

    kind: str = "CallError"


class Timeout(CallError, TimeoutError):
    """No reply within the timeout; the peer was sent a ``Cancel``."""

    kind = "Timeout"

    def __init__(self, after: float) -> None:
        self.after = after
        super().__init__(f"no reply within {after:g} s; the request was cancelled")


class Disconnected(CallError):
    """The connection is closed, or closed before the reply arrived.
    ``reason`` is a :class:`DisconnectReason`. Also what ``emit`` raises on a
    closed socket."""

    kind = "Disconnected"

    def __init__(self, reason: DisconnectReason) -> None:
        self.reason = reason
        super().__init__(f"the connection is closed: {reason}")


class NoHandler(CallError):
    """The peer has no handler for this request."""

    kind = "NoHandler"

    def __init__(self, event: str) -> None:
        self.event = event
        super().__init__(f"the peer has no handler for request {event}")


class NotARequest(CallError):
    """The variant sent as a request is a one-way event."""

    kind = "NotARequest"

    def __init__(self, event: str) -> None:
        self.event = event
        super().__init__(f"{event} is an event, not a request; emit it instead")


class HandlerPanicked(CallError):
    """The peer's handler failed (panicked, or raised)."""

    kind = "HandlerPanicked"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"the peer's handler panicked: {message}")


class BadRequest(CallError):
    """The peer could not decode the request."""

    kind = "BadRequest"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"the peer could not decode the request: {message}")


class ResponseTooLarge(CallError):
    """The reply was over this side's frame limit; the peer did not send it."""

    kind = "ResponseTooLarge"

    def __init__(self, size: int, max: int) -> None:
        self.size = size
        self.max = max
        super().__init__(f"the reply of {size} bytes exceeds this side's limit of {max} bytes (see max_frame)")


class EncodeFailed(CallError):
    """The peer could not encode its reply (``RemoteError::Encode``)."""

    kind = "Encode"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"the peer could not encode its reply: {message}")


class HandlerFailed(CallError):
    """The peer's stream handler ended its stream with an error (its text)."""

    kind = "HandlerFailed"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"the peer's stream failed: {message}")


class StreamProtocol(CallError):
    """A stream broke the protocol: the peer sent an item beyond the credit
    granted (the stream is cancelled), or the variant is not a stream."""

    kind = "StreamProtocol"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"stream protocol error: {message}")


class FrameTooLarge(CallError):
    """A frame (an event or a request) is over the receiver's limit, or
    this side's: it was not sent."""

    kind = "FrameTooLarge"

    def __init__(self, size: int, max: int) -> None:
        self.size = size
        self.max = max
        super().__init__(f"frame of {size} bytes exceeds the limit of {max} bytes (see max_frame)")


class CodecError(CallError):
    """The reply could not be decoded as the schema's response type."""

    kind = "Codec"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class OfflineBufferFull(NetsockError):
    """A client socket is reconnecting and its buffer of emits made while
    offline is full: the event was not sent."""

    def __init__(self, event: str, capacity: int) -> None:
        self.event = event
        self.capacity = capacity
        super().__init__(f"offline, and the buffer of {capacity} events is full: event {event} was not sent")


class SocketError(NetsockError):
    """Something that went wrong on a socket that no call returns, and
    that leaves the connection open: what ``Socket.on_error`` hooks receive
    (without a hook, it is logged). ``kind`` is the Rust ``SocketError``
    variant's name: ``DecodeEvent``, ``NoHandler``, ``RequestAsEvent``,
    ``HandlerFailed``; ``event`` the variant's name when known."""

    def __init__(self, kind: str, message: str, event: str | None = None) -> None:
        self.kind = kind
        self.event = event
        super().__init__(message)


# --- why a connection ended ------------------------------------------------------


@dataclass(frozen=True)
class DisconnectReason:
    """Why a connection ended. ``kind`` is the Rust variant's name:

    ``ClosedLocally``, ``ClosedByPeer`` (``close`` is the peer's
    :class:`~netsock.frames.CloseReason`), ``PeerHungUp``, ``Io``
    (``message``), ``CutMidFrame`` (``size`` bytes of a frame of ``max``
    had arrived), ``Protocol`` (``message``), ``HeartbeatTimeout``
    (``after``, seconds), ``FrameTooLarge`` (``size``, ``max``),
    ``WriteTimeout`` (``after``), ``ReconnectFailed`` (``attempts``,
    ``message``).
    """

    kind: str
    message: str = ""
    close: CloseReason | None = None
    size: int = 0
    max: int = 0
    after: float = 0.0
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        match self.kind:
            case "ClosedLocally":
                return "closed by this side"
            case "ClosedByPeer":
                return f"closed by the peer: {self.close}"
            case "PeerHungUp":
                return "the peer hung up without closing"
            case "CutMidFrame":
                return (
                    f"the connection broke in the middle of a frame ({self.size} of its {self.max} bytes had arrived)"
                )
            case "Io":
                return f"I/O error: {self.message}"
            case "Protocol":
                return f"protocol error: {self.message}"
            case "HeartbeatTimeout":
                return f"the peer sent nothing for {self.after:g} s, not even a heartbeat answer"
            case "FrameTooLarge":
                return f"the peer sent a frame of {self.size} bytes, over the limit of {self.max} bytes"
            case "WriteTimeout":
                return f"the peer took nothing this side wrote for {self.after:g} s: it stopped reading"
            case "ReconnectFailed":
                return f"gave up reconnecting after {self.attempts} attempts: {self.message}"
        return self.kind
