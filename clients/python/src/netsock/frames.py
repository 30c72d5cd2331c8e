"""The wire format: frames, the header (envelope) at the start of each body,
and the handshake, reject, close and failure reasons.

A frame is a 4-byte big-endian body length, then the body: the postcard
encoding of a :class:`Header` (its variant index is the frame's
:class:`Kind`), then, for ``Event``, ``Request``, ``Response``,
``StreamItem``, ``Volatile`` and ``UploadItem``, the payload running to the end. The Rust source of truth is
``netsock/src/wire/frame.rs``; the book's *Wire protocol* chapter is the
specification.

Every wire enum here (:class:`Header`, :class:`RejectReason`,
:class:`CloseReason`, :class:`RemoteError`) is a :class:`Tagged` value
described by a table of variants, so that adding a frame kind (protocol
versions only ever append) is one line here and one handler in
:mod:`netsock.connection`. A variant index this table does not know
decodes as a :class:`~netsock.DecodeError`, which a connection treats as a
protocol error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple

from .errors import DecodeError, FrameTooLarge
from .postcard import Reader, write_bytes, write_str, write_varint

__all__ = [
    "MAGIC",
    "PROTOCOL_VERSION",
    "DEFAULT_MAX_FRAME",
    "MIN_MAX_FRAME",
    "PREFIX_LEN",
    "STREAM_WINDOW_ITEMS",
    "STREAM_WINDOW_BYTES",
    "Kind",
    "Tagged",
    "Header",
    "RejectReason",
    "CloseReason",
    "RemoteError",
    "encode_frame",
    "encode_control",
    "decode_body",
    "schema_id",
]

MAGIC = b"NSCK"
"""The magic bytes that open every ``Hello``."""
PROTOCOL_VERSION = 1
"""The wire protocol version this package speaks."""
DEFAULT_MAX_FRAME = 8 * 1024 * 1024
"""The default largest frame body this side accepts: 8 MiB."""
MIN_MAX_FRAME = 1024
"""The smallest frame limit a peer may announce."""
PREFIX_LEN = 4
"""The length prefix: 4 bytes, big-endian."""
STREAM_WINDOW_ITEMS = 1024
"""The credit in items each stream starts with (``STREAM_WINDOW_ITEMS`` in Rust)."""
STREAM_WINDOW_BYTES = 256 * 1024
"""The credit in bytes (of item frame bodies) each stream starts with."""


def schema_id(text: str) -> int:
    """The ``SchemaId`` of a schema text: 64-bit FNV-1a of its UTF-8 bytes.

    >>> f"{schema_id('SumApi{Sum(Vec<i64>)->i64}'):016x}"
    '76548073a8190951'
    """
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class Kind(IntEnum):
    """A frame's kind: its header's variant index."""

    HELLO = 0
    WELCOME = 1
    REJECT = 2
    EVENT = 3
    REQUEST = 4
    RESPONSE = 5
    FAILURE = 6
    CANCEL = 7
    PING = 8
    PONG = 9
    CLOSE = 10
    STREAM_ITEM = 11
    STREAM_END = 12
    CREDIT = 13
    ACK = 14
    VOLATILE = 15
    UPLOAD_ITEM = 16
    UPLOAD_END = 17
    UPLOAD_CREDIT = 18


# --- field encodings --------------------------------------------------------------


class Field(NamedTuple):
    """How one header field is written and read; ``name`` is its Rust type,
    for messages."""

    name: str
    write: Callable[[bytearray, Any], None]
    read: Callable[[Reader], Any]


def _uint(bits: int) -> Field:
    def write(out: bytearray, v: int) -> None:
        if not 0 <= v < 1 << bits:
            raise ValueError(f"{v} is out of range for a u{bits}")
        write_varint(out, v)

    return Field(f"u{bits}", write, lambda r: r.varint(bits))


def _write_bool(out: bytearray, v: bool) -> None:
    out.append(1 if v else 0)


def _write_magic(out: bytearray, v: bytes) -> None:
    if len(v) != 4:
        raise ValueError("the magic is 4 bytes")
    out += v


def _write_opt_bytes(out: bytearray, v: bytes | None) -> None:
    if v is None:
        out.append(0)
    else:
        out.append(1)
        write_bytes(out, v)


def _read_opt_bytes(r: Reader) -> bytes | None:
    return r.bytes() if r.bool() else None


def _pair(item: Field) -> Field:
    def write(out: bytearray, v: tuple[Any, Any]) -> None:
        item.write(out, v[0])
        item.write(out, v[1])

    return Field(f"({item.name}, {item.name})", write, lambda r: (item.read(r), item.read(r)))


U16 = _uint(16)
U32 = _uint(32)
U64 = _uint(64)
SCHEMA_ID = Field("SchemaId", U64.write, U64.read)
BOOL = Field("bool", _write_bool, Reader.bool)
STR = Field("String", write_str, Reader.str)
MAGIC_FIELD = Field("[u8; 4]", _write_magic, lambda r: r.take(4))
OPT_BYTES = Field("Option<Vec<u8>>", _write_opt_bytes, _read_opt_bytes)
ID_PAIR = _pair(SCHEMA_ID)
STR_PAIR = _pair(STR)


def _nested(cls: type[Tagged]) -> Field:
    return Field(cls.__name__, lambda out, v: v.write(out), cls.read)


# --- tagged wire enums -------------------------------------------------------------------


class VariantSpec(NamedTuple):
    """One variant of a wire enum: its name, its fields in order, and
    whether Rust writes it as a tuple variant (``Other(String)``) rather
    than a struct variant (``VersionMismatch { server, client }``)."""

    name: str
    fields: tuple[tuple[str, Field], ...] = ()
    tuple_like: bool = False
    # The variant has a payload after its fields (Event, Request, Response).
    payload: bool = False


class Tagged:
    """A value of a wire enum: ``kind`` (the variant's name), ``index`` and
    its fields, read as attributes (``reason.server``).

    >>> CloseReason("FrameTooLarge", size=2048, max=1024).max
    1024
    """

    VARIANTS: ClassVar[tuple[VariantSpec, ...]] = ()
    _BY_NAME: ClassVar[dict[str, int]] = {}

    __slots__ = ("kind", "index", "fields")

    def __init_subclass__(cls) -> None:
        cls._BY_NAME = {v.name: i for i, v in enumerate(cls.VARIANTS)}

    def __init__(self, kind: str, /, **fields: Any) -> None:
        index = self._BY_NAME.get(kind)
        if index is None:
            raise ValueError(f"{type(self).__name__} has no variant {kind}")
        spec = self.VARIANTS[index]
        names = [n for n, _ in spec.fields]
        if sorted(names) != sorted(fields):
            raise ValueError(f"{type(self).__name__}.{kind} has the fields {names}, not {sorted(fields)}")
        self.kind = kind
        self.index = index
        self.fields = {n: fields[n] for n in names}

    def __getattr__(self, name: str) -> Any:
        if name in Tagged.__slots__:
            raise AttributeError(name)
        try:
            return self.fields[name]
        except (KeyError, TypeError):
            raise AttributeError(f"{type(self).__name__}.{self.kind} has no field {name}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tagged) and type(other) is type(self) and (self.kind, self.fields) == (other.kind, other.fields)

    def __hash__(self) -> int:
        return hash((self.kind, tuple(self.fields.items())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{type(self).__name__}.{self.kind}({inner})"

    @property
    def spec(self) -> VariantSpec:
        """The variant's description."""
        return self.VARIANTS[self.index]

    def write(self, out: bytearray) -> None:
        """Appends the postcard encoding: the index, then the fields."""
        write_varint(out, self.index)
        for name, f in self.spec.fields:
            try:
                f.write(out, self.fields[name])
            except (TypeError, ValueError, AttributeError) as e:
                raise ValueError(f"{type(self).__name__}.{self.kind}.{name}: expected {f.name}: {e}") from None

    @classmethod
    def read(cls, r: Reader) -> Tagged:
        """Reads one value; a variant index this side does not know is a
        :class:`~netsock.DecodeError`."""
        index = r.varint(32)
        if index >= len(cls.VARIANTS):
            raise DecodeError(f"unknown {cls.__name__} variant {index}")
        spec = cls.VARIANTS[index]
        value = cls.__new__(cls)
        value.kind = spec.name
        value.index = index
        value.fields = {name: f.read(r) for name, f in spec.fields}
        return value


def _ids(*names: str) -> tuple[tuple[str, Field], ...]:
    return tuple((n, ID_PAIR) for n in names)


class RejectReason(Tagged):
    """Why a server refused a connection (``Reject``'s reason)."""

    VARIANTS = (
        VariantSpec("BadMagic"),
        VariantSpec("VersionMismatch", (("server", U16), ("client", U16))),
        VariantSpec("SchemaMismatch", _ids("server", "client")),
        VariantSpec("Other", (("message", STR),), tuple_like=True),
        VariantSpec("Refused", (("message", STR),), tuple_like=True),
        VariantSpec("HandshakeTimeout", (("after_ms", U64),)),
        VariantSpec("FrameLimitTooSmall", (("max_frame", U32), ("min", U32))),
        VariantSpec("SchemaDiffers", (*_ids("server", "client"), ("server_schema", STR_PAIR))),
    )

    def __str__(self) -> str:
        f = self.fields
        match self.kind:
            case "BadMagic":
                return "the first frame is not a netsock handshake"
            case "VersionMismatch":
                return f"the server speaks protocol version {f['server']}, the client {f['client']}"
            case "SchemaMismatch" | "SchemaDiffers":
                return "schema mismatch"
            case "Other":
                return str(f["message"])
            case "Refused":
                return f"refused: {f['message']}"
            case "HandshakeTimeout":
                return f"no handshake within {f['after_ms']} ms"
            case "FrameLimitTooSmall":
                return (
                    f"the client's frame limit of {f['max_frame']} bytes is below the protocol "
                    f"minimum of {f['min']}"
                )
        return self.kind


class CloseReason(Tagged):
    """Why a peer closes the connection (``Close``'s reason)."""

    VARIANTS = (
        VariantSpec("Normal"),
        VariantSpec("FrameTooLarge", (("size", U64), ("max", U64))),
        VariantSpec("Protocol", (("message", STR),), tuple_like=True),
        VariantSpec("Shutdown", (("message", STR),), tuple_like=True),
        VariantSpec("Application", (("message", STR),), tuple_like=True),
    )

    def __str__(self) -> str:
        f = self.fields
        match self.kind:
            case "Normal":
                return "closed normally"
            case "FrameTooLarge":
                return f"a frame of {f['size']} bytes exceeded the peer's limit of {f['max']} bytes"
            case "Protocol":
                return f"protocol error: {f['message']}"
            case "Shutdown":
                return f"server shutting down: {f['message']}"
            case "Application":
                return f"closed by the application: {f['message']}"
        return self.kind


class RemoteError(Tagged):
    """Why a request failed on the peer (``Failure``'s error)."""

    VARIANTS = (
        VariantSpec("NoHandler", (("event", STR),)),
        VariantSpec("NotARequest", (("event", STR),)),
        VariantSpec("HandlerPanicked", (("message", STR),)),
        VariantSpec("BadRequest", (("message", STR),)),
        VariantSpec("ResponseTooLarge", (("size", U64), ("max", U64))),
        VariantSpec("Encode", (("message", STR),)),
        VariantSpec("HandlerFailed", (("message", STR),)),
        VariantSpec("StreamProtocol", (("message", STR),)),
    )


def _write_opt_error(out: bytearray, v: RemoteError | None) -> None:
    if v is None:
        out.append(0)
    else:
        out.append(1)
        v.write(out)


def _read_opt_error(r: Reader) -> Tagged | None:
    return RemoteError.read(r) if r.bool() else None


OPT_REMOTE_ERROR = Field("Option<RemoteError>", _write_opt_error, _read_opt_error)


class Header(Tagged):
    """The envelope at the start of every frame body; ``kind`` is the
    frame's kind (``"Hello"``, ``"Event"``, ...). ``Hello``'s fields are
    those of the Rust ``Hello`` struct, flattened."""

    VARIANTS = (
        VariantSpec(
            "Hello",
            (
                ("magic", MAGIC_FIELD),
                ("version", U16),
                ("sends", SCHEMA_ID),
                ("receives", SCHEMA_ID),
                ("max_frame", U32),
                ("lenient", BOOL),
                ("auth", OPT_BYTES),
            ),
        ),
        VariantSpec("Welcome", (("id", U64), ("max_frame", U32))),
        VariantSpec("Reject", (("reason", _nested(RejectReason)),), tuple_like=True),
        VariantSpec("Event", payload=True),
        VariantSpec("Request", (("id", U64), ("timeout_ms", U32)), payload=True),
        VariantSpec("Response", (("id", U64),), payload=True),
        VariantSpec("Failure", (("id", U64), ("error", _nested(RemoteError)))),
        VariantSpec("Cancel", (("id", U64),)),
        VariantSpec("Ping"),
        VariantSpec("Pong"),
        VariantSpec("Close", (("reason", _nested(CloseReason)),), tuple_like=True),
        VariantSpec("StreamItem", (("id", U64),), payload=True),
        VariantSpec("StreamEnd", (("id", U64), ("error", OPT_REMOTE_ERROR))),
        VariantSpec("Credit", (("id", U64), ("items", U32), ("bytes", U64))),
        VariantSpec("Ack", (("received", U64),)),
        VariantSpec("Volatile", payload=True),
        # Uploads: a stream from a request's caller to its handler. This
        # package sends none and takes none, but knows their frames.
        VariantSpec("UploadItem", (("id", U64),), payload=True),
        VariantSpec("UploadEnd", (("id", U64), ("error", OPT_REMOTE_ERROR))),
        VariantSpec("UploadCredit", (("id", U64), ("items", U32), ("bytes", U64))),
    )


# Kind and Header agree.
assert [v.name.upper() for v in Header.VARIANTS] == [k.name.replace("_", "") for k in Kind]


def encode_frame(header: Header, payload: bytes = b"", max_frame: int | None = None) -> bytes:
    """A whole frame: the length prefix, the header, the payload. Raises
    :class:`~netsock.FrameTooLarge` when the body is over ``max_frame``."""
    body = bytearray(PREFIX_LEN)
    header.write(body)
    body += payload
    size = len(body) - PREFIX_LEN
    if max_frame is not None and size > max_frame:
        raise FrameTooLarge(size, max_frame)
    struct.pack_into(">I", body, 0, size)
    return bytes(body)


def _text_field(header: Header) -> tuple[Tagged, str] | None:
    """The free text a control frame carries (an error message, a reason),
    as (the value holding it, its field name)."""
    inner = header.fields.get("reason") or header.fields.get("error")
    if isinstance(inner, Tagged):
        for name in ("message", "event"):
            if isinstance(inner.fields.get(name), str):
                return inner, name
    return None


def encode_control(header: Header, max_frame: int) -> bytes:
    """A control frame (``Failure``, ``Close``, ``Reject``) within
    ``max_frame``, its text shortened to fit and ended with ``…``, as
    netsock does."""
    while True:
        try:
            return encode_frame(header, b"", max_frame)
        except FrameTooLarge as e:
            found = _text_field(header)
            if found is None or not found[0].fields[found[1]]:
                raise
            value, name = found
            raw = value.fields[name].encode("utf-8")
            keep = max(0, len(raw) - (e.size - e.max) - len("…".encode()))
            text = raw[:keep].decode("utf-8", errors="ignore")
            value.fields[name] = text + "…" if text else ""


def decode_body(body: bytes) -> tuple[Header, bytes]:
    """A frame body as its header and payload (the bytes after the header;
    empty for kinds without one). Raises :class:`~netsock.DecodeError`."""
    r = Reader(body)
    header = Header.read(r)
    return header, r.rest()  # type: ignore[return-value]
