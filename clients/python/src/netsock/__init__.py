"""netsock for Python: a peer of the Rust ``netsock`` library.

Typed events and requests over TCP or Unix sockets, with the schema of
the Rust event enum loaded from its schema JSON document::

    import asyncio, netsock

    schema = netsock.Schema.load("interop.json")

    async def main():
        socket = await netsock.connect("/tmp/interop.sock", schema)
        socket.on("Note", lambda text: print(text))
        print(await socket.request("Sum", [1, 2, 3]))
        await socket.close()

    asyncio.run(main())
"""

from .addr import Addr
from .client import ClientSocket, Reconnect, connect
from .connection import Config, deadline
from .errors import (
    BadRequest,
    BindFailed,
    CallError,
    CodecError,
    ConnectError,
    ConnectFailed,
    DecodeError,
    Disconnected,
    DisconnectReason,
    EncodeFailed,
    FrameTooLarge,
    HandlerFailed,
    HandlerPanicked,
    HandshakeTimeout,
    InvalidAddr,
    NetsockError,
    NoHandler,
    NotARequest,
    OfflineBufferFull,
    ProtocolError,
    Rejected,
    ResponseTooLarge,
    SchemaError,
    SchemaMismatch,
    SocketError,
    StreamProtocol,
    Timeout,
    ValidationError,
    VersionMismatch,
)
from .frames import CloseReason, RejectReason, RemoteError, schema_id
from .schema import Schema, Variant, load_schema
from .server import Server, serve
from .socket import Socket
from .stream import ItemStream

__version__ = "0.1.0"

__all__ = [
    "Addr",
    "BadRequest",
    "BindFailed",
    "CallError",
    "ClientSocket",
    "CloseReason",
    "CodecError",
    "Config",
    "ConnectError",
    "ConnectFailed",
    "DecodeError",
    "Disconnected",
    "DisconnectReason",
    "EncodeFailed",
    "FrameTooLarge",
    "HandlerFailed",
    "HandlerPanicked",
    "HandshakeTimeout",
    "InvalidAddr",
    "ItemStream",
    "NetsockError",
    "NoHandler",
    "NotARequest",
    "OfflineBufferFull",
    "ProtocolError",
    "Reconnect",
    "Rejected",
    "RejectReason",
    "RemoteError",
    "ResponseTooLarge",
    "Schema",
    "SchemaError",
    "SchemaMismatch",
    "Server",
    "Socket",
    "SocketError",
    "StreamProtocol",
    "Timeout",
    "ValidationError",
    "Variant",
    "VersionMismatch",
    "connect",
    "deadline",
    "load_schema",
    "schema_id",
    "serve",
]
