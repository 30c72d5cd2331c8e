"""The server: listens on TCP or a Unix socket, handshakes each client,
and hands each accepted connection, as a :class:`~netsock.Socket`, to the
``on_connection`` handler."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from typing import Any, Self

from .addr import Addr, parse
from .connection import Config, Connection
from .errors import BindFailed, NetsockError, ProtocolError, Rejected
from .frames import MIN_MAX_FRAME, CloseReason, Header, RejectReason, encode_control, encode_frame
from .handshake import Accepted, server_handshake
from .schema import Schema
from .socket import Socket

__all__ = ["Server", "serve"]

log = logging.getLogger("netsock")

Authorize = Callable[[bytes | None], Awaitable[str | None] | str | None]


class Server:
    """A netsock server for one schema.

    ::

        server = await netsock.Server.bind("/tmp/app.sock", schema)

        @server.on_connection
        async def setup(socket):
            socket.on("Sum", lambda numbers: sum(numbers))
            await socket.emit("Note", f"{len(server.sockets())} clients")

        await server.run()   # until server.close()

    Events and requests a new socket receives wait until its
    ``on_connection`` handler returns, so the handlers it registers see
    everything. An exception from the handler closes that connection with
    ``Close(Application)``.
    """

    def __init__(self, schema: Schema, config: Config, authorize: Authorize | None) -> None:
        self.schema = schema
        self.config = config
        self._authorize = authorize
        self._on_connection: Callable[[Socket], Any] | None = None
        self._sockets: dict[int, Socket] = {}
        self._next_id = 0
        self._server: asyncio.AbstractServer | None = None
        self._addr: Addr | None = None
        self._closed = asyncio.Event()
        self._closing = False
        self._handshakes: set[asyncio.Task[Any]] = set()
        self._handshake_slots = asyncio.Semaphore(max(1, config.max_handshakes))
        self.local_addr = ""
        """Where the server listens: ``tcp://127.0.0.1:PORT`` (the port
        chosen, for port 0) or the Unix socket's path."""

    @classmethod
    async def bind(
        cls,
        addr: str | int | os.PathLike[str] | Addr,
        schema: Schema,
        *,
        authorize: Authorize | None = None,
        **options: Any,
    ) -> Server:
        """Listens on ``addr`` (``"tcp://127.0.0.1:0"``, ``3000``, a Unix
        socket path). ``authorize(auth)`` (optional, may be async) sees
        each client's handshake auth bytes and returns ``None`` to accept or
        a reason to refuse (``Reject(Refused)``). Other keywords are
        :class:`~netsock.Config` fields. Raises :class:`~netsock.BindFailed`."""
        parsed = parse(addr)
        server = cls(schema, Config(**options), authorize)
        await server._listen(parsed)
        return server

    async def _listen(self, addr: Addr) -> None:
        try:
            if addr.kind == "unix":
                await _clear_stale_socket(addr)
                self._server = await asyncio.start_unix_server(self._accept, addr.path)
                self.local_addr = addr.path
            else:
                self._server = await asyncio.start_server(self._accept, addr.host, addr.port)
                host, port = self._server.sockets[0].getsockname()[:2]
                self.local_addr = str(Addr("tcp", host=host, port=port))
        except OSError as e:
            raise BindFailed(str(addr), e) from None
        self._addr = addr

    def on_connection(self, handler: Callable[[Socket], Any]) -> Callable[[Socket], Any]:
        """Sets the handler each accepted socket is given to (it may be a
        coroutine function). Usable as a decorator."""
        self._on_connection = handler
        return handler

    def sockets(self) -> list[Socket]:
        """The connected sockets."""
        return list(self._sockets.values())

    async def emit(self, name: str, /, *args: Any, **fields: Any) -> int:
        """Sends the event to every connected socket; returns how many got
        it (a socket that fails is skipped)."""
        variant, payload = self.schema.encode(name, *args, **fields)
        sent = 0
        for socket in self.sockets():
            with contextlib.suppress(NetsockError):
                await socket._emit_payload(variant, payload)
                sent += 1
        return sent

    async def run(self) -> None:
        """Serves until :meth:`close`."""
        await self._closed.wait()

    async def close(self) -> None:
        """Stops listening and closes every connection with
        ``Close(Shutdown)``."""
        if self._server is None or self._closing:
            return
        self._closing = True
        # Let connections asyncio has already accepted reach `_accept`
        # (closing under them makes asyncio 3.11 log an AssertionError).
        await asyncio.sleep(0)
        self._server.close()
        for task in list(self._handshakes):
            task.cancel()
        reason = CloseReason("Shutdown", message="the server is shutting down")
        await asyncio.gather(
            *(s._conn.close(reason) for s in self.sockets() if s._conn is not None), return_exceptions=True
        )
        if self._addr is not None and self._addr.kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(self._addr.path)
        self._closed.set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handshakes.add(task)
        try:
            async with self._handshake_slots:
                accepted = await self._handshake(reader, writer)
            if accepted is not None:
                await self._start(accepted, reader, writer)
        except asyncio.CancelledError:
            # The server is shutting down during this handshake.
            with contextlib.suppress(Exception):
                reason = RejectReason("Other", message="the server is shutting down")
                writer.write(encode_control(Header("Reject", reason=reason), MIN_MAX_FRAME))
            writer.close()
        except Exception:  # a bug here must end this connection, not the server
            log.exception("netsock: accepting a connection failed")
            writer.transport.abort()
        finally:
            if task is not None:
                self._handshakes.discard(task)

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Accepted | None:
        try:
            return await server_handshake(
                reader, writer, self.schema.id, self.schema.text, self.config, self._authorize
            )
        except (Rejected, ProtocolError, OSError) as e:
            log.info("netsock: refused a connection: %s", e)
            writer.close()
            return None

    async def _start(self, hello: Accepted, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Lists an accepted connection, welcomes it, and runs ``on_connection``."""
        if self._closing:
            reason = RejectReason("Other", message="the server is shutting down")
            writer.write(encode_control(Header("Reject", reason=reason), MIN_MAX_FRAME))
            writer.close()
            return
        self._next_id += 1
        conn_id = self._next_id
        socket = Socket(self.schema, self.config)
        peer = writer.get_extra_info("peername")
        conn = Connection(reader, writer, self.schema, self.config, socket, conn_id, hello.max_frame, str(peer or ""))
        socket._attach(conn)
        self._sockets[conn_id] = socket
        socket._closed.add_done_callback(lambda _: self._sockets.pop(conn_id, None))
        writer.write(encode_frame(Header("Welcome", id=conn_id, max_frame=self.config.max_frame)))
        handler = self._on_connection
        conn.start(hold=handler is not None)
        if handler is None:
            return
        try:
            result = handler(socket)
            if inspect.isawaitable(result):
                await result
        except Exception as e:
            log.warning("netsock: the connection handler failed: %s", e)
            await conn.close(CloseReason("Application", message=f"the connection handler failed: {e}"))
            return
        await conn.release()


async def _clear_stale_socket(addr: Addr) -> None:
    """Removes a Unix socket file nobody listens on; refuses one a live
    server holds."""
    try:
        mode = os.stat(addr.path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise BindFailed(addr.path, "the path exists and is not a socket")
    try:
        _, writer = await asyncio.open_unix_connection(addr.path)
    except OSError:
        os.unlink(addr.path)
        return
    writer.transport.abort()
    raise BindFailed(addr.path, "another server is already listening; stop it or choose another path")


async def serve(addr: str | int | os.PathLike[str] | Addr, schema: Schema, **options: Any) -> Server:
    """Same as :meth:`Server.bind`."""
    return await Server.bind(addr, schema, **options)
