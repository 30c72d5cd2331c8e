"""One live connection, after the handshake: the reader that routes each
frame by its kind, the calls waiting for replies, the requests being
served, the heartbeat, and the end of the connection.

A :class:`Connection` knows nothing about reconnecting or servers: it
serves a *host* (a :class:`~netsock.Socket`) that holds the handlers,
hears of errors, and is told when the connection ends.

Adding a frame kind means a variant in :class:`~netsock.frames.Header`
and a method in :data:`Connection.FRAME_HANDLERS`; a kind with no handler
(``Hello``, ``Welcome``, ``Reject`` after the handshake) or one the header
table does not know ends the connection with ``Close(Protocol)``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .errors import (
    BadRequest,
    CallError,
    CodecError,
    DecodeError,
    Disconnected,
    DisconnectReason,
    EncodeFailed,
    FrameTooLarge,
    HandlerFailed,
    HandlerPanicked,
    NoHandler,
    NotARequest,
    ResponseTooLarge,
    SocketError,
    StreamProtocol,
    Timeout,
    ValidationError,
)
from .frames import (
    DEFAULT_MAX_FRAME,
    MIN_MAX_FRAME,
    PREFIX_LEN,
    CloseReason,
    Header,
    RemoteError,
    decode_body,
    encode_control,
    encode_frame,
)

from .stream import ItemStream

if TYPE_CHECKING:
    from .schema import Schema, Variant

__all__ = ["Config", "Connection", "deadline"]

log = logging.getLogger("netsock")

_U32_MAX = (1 << 32) - 1
_U64_MAX = (1 << 64) - 1


@dataclass
class Config:
    """A connection's settings (the keyword arguments of ``connect`` and
    ``Server.bind``), with netsock's defaults. Times are in seconds."""

    max_frame: int = DEFAULT_MAX_FRAME
    """The largest frame body this side accepts, announced in the handshake."""
    request_timeout: float | None = 10.0
    """How long a request waits for its reply by default (``None``: forever)."""
    heartbeat: tuple[float, float] | None = (25.0, 20.0)
    """(interval, timeout): a ``Ping`` after ``interval`` of silence, and
    the peer dropped when nothing arrives ``timeout`` after it. ``None``: off."""
    write_timeout: float = 30.0
    """A peer that takes none of what this side writes for this long is dropped."""
    handshake_timeout: float = 10.0
    """How long the handshake may take."""
    max_handshake_frame: int = 4 * 1024
    """(Server) the largest first frame taken before the handshake."""
    max_handshakes: int = 256
    """(Server) how many handshakes run at once; more connections wait."""
    max_concurrent_requests: int = 1024
    """How many of the peer's requests run at once; more wait (unread)."""
    max_concurrent_events: int = 1024
    """How many coroutine event handlers run at once; more events wait (unread)."""
    lenient: bool = False
    """Accept a peer whose schema differs."""
    close_grace: float = 2.0
    """After sending ``Close``, how long to keep reading what the peer still sends."""

    def __post_init__(self) -> None:
        self.max_frame = max(MIN_MAX_FRAME, min(int(self.max_frame), _U32_MAX))


class Host(Protocol):
    """What a connection asks of the socket it serves."""

    def _dispatch_event(self, variant: Variant, values: list[Any]) -> int | None:
        """Delivers an event; returns how many event handlers are running
        when it started one."""

    async def _event_room(self, limit: int) -> None:
        """Waits until fewer than ``limit`` event handlers run."""

    def _request_handler(self, name: str) -> Callable[..., Any] | None: ...

    def _report(self, error: SocketError) -> None: ...

    def _connection_ended(self, conn: Connection, reason: DisconnectReason) -> None: ...


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


class _CutMidFrame(Exception):
    def __init__(self, received: int, expected: int) -> None:
        self.received = received
        self.expected = expected


async def read_frame(reader: asyncio.StreamReader, max_frame: int) -> bytes:
    """One frame's body. Raises :class:`_TooLarge` without reading a body
    over ``max_frame``, ``asyncio.IncompleteReadError`` at the end of the
    stream between frames, :class:`_CutMidFrame` inside one."""
    try:
        prefix = await reader.readexactly(PREFIX_LEN)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise _CutMidFrame(len(e.partial), PREFIX_LEN) from None
        raise
    size = int.from_bytes(prefix, "big")
    if size > max_frame:
        raise _TooLarge(size)
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as e:
        raise _CutMidFrame(PREFIX_LEN + len(e.partial), PREFIX_LEN + size) from None


def disconnect_from_os(err: BaseException) -> DisconnectReason:
    """The reason for an I/O failure."""
    if isinstance(err, (ConnectionError, asyncio.IncompleteReadError, EOFError)):
        return DisconnectReason("PeerHungUp")
    return DisconnectReason("Io", message=str(err) or type(err).__name__)


def call_error(error: RemoteError) -> CallError:
    """The :class:`~netsock.CallError` for a ``Failure`` from the peer."""
    f = error.fields
    match error.kind:
        case "NoHandler":
            return NoHandler(f["event"])
        case "NotARequest":
            return NotARequest(f["event"])
        case "HandlerPanicked":
            return HandlerPanicked(f["message"])
        case "BadRequest":
            return BadRequest(f["message"])
        case "ResponseTooLarge":
            return ResponseTooLarge(f["size"], f["max"])
        case "Encode":
            return EncodeFailed(f["message"])
        case "HandlerFailed":
            return HandlerFailed(f["message"])
        case "StreamProtocol":
            return StreamProtocol(f["message"])
    return CallError(f"the peer failed the request: {error!r}")


_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("netsock_deadline", default=None)


def deadline() -> float | None:
    """Inside a request handler: when the caller stops waiting, in the
    event loop's clock (``asyncio.get_running_loop().time()``), or ``None``
    if it set no timeout. Outside one: ``None``."""
    return _deadline.get()


Handler = Callable[["Connection", Header, bytes], Awaitable[DisconnectReason | None]]


class Connection:
    """A live connection: frames in, frames out."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        schema: Schema,
        config: Config,
        host: Host,
        conn_id: int,
        peer_max: int,
        peer: str,
    ) -> None:
        self.schema = schema
        self.config = config
        self.host = host
        self.id = conn_id
        self.peer = peer
        self.peer_max = peer_max
        self.send_limit = min(peer_max, config.max_frame)
        """The largest body this side sends: the smaller of both limits."""
        self._reader = reader
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, tuple[asyncio.Future[Any], Variant]] = {}
        self._next_id = 0
        self._streams: dict[int, ItemStream] = {}
        self._running: dict[int, asyncio.Task[None]] = {}
        self._requests = asyncio.Semaphore(config.max_concurrent_requests)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._held: list[tuple[Header, bytes]] | None = None
        self._released = asyncio.Event()
        self._closing = False
        self._eof = False
        self._reason: DisconnectReason | None = None
        self.ended: asyncio.Future[DisconnectReason] = self._loop.create_future()
        self._last_seen = self._loop.time()

    # --- life -----------------------------------------------------------------

    def start(self, hold: bool = False) -> None:
        """Starts reading (and the heartbeat). With ``hold``, incoming events
        and requests wait until :meth:`release` (while a server's connection
        handler registers its handlers)."""
        if hold:
            self._held = []
        self._spawn(self._read_loop())
        if self.config.heartbeat is not None:
            self._spawn(self._heartbeat(*self.config.heartbeat))

    async def release(self) -> None:
        """Delivers what :meth:`start` held, then delivers as it comes."""
        # In order; the reader may add to the list while a handler waits.
        while self._held and self._reason is None:
            header, payload = self._held.pop(0)
            await self.FRAME_HANDLERS[header.kind](self, header, payload)
        self._held = None
        self._released.set()

    @property
    def reason(self) -> DisconnectReason | None:
        """Why the connection ended, or ``None`` while it is open."""
        return self._reason

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _end(self, reason: DisconnectReason, abort: bool = False) -> None:
        """Ends the connection (once): fails the calls waiting, stops the
        handlers of the peer's requests, closes the transport."""
        if self._reason is not None:
            return
        self._reason = reason
        pending, self._pending = self._pending, {}
        for fut, _ in pending.values():
            if not fut.done():
                fut.set_exception(Disconnected(reason))
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream._finish(Disconnected(reason))
        running, self._running = self._running, {}
        for task in running.values():
            task.cancel()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if abort:
            self._writer.transport.abort()
        else:
            self._writer.close()
        if not self.ended.done():
            self.ended.set_result(reason)
        self.host._connection_ended(self, reason)

    def _fail(self, close: CloseReason, reason: DisconnectReason) -> DisconnectReason:
        """Sends ``Close(close)`` and ends with ``reason``."""
        self._write_control(Header("Close", reason=close))
        return reason

    async def close(self, reason: CloseReason | None = None) -> DisconnectReason:
        """An orderly close: sends ``Close`` (``Normal`` unless said
        otherwise) after what was written, stops writing, and keeps reading
        what the peer still sends until it hangs up (at most
        ``close_grace``)."""
        if self._reason is None and not self._closing:
            self._closing = True
            self._write_control(Header("Close", reason=reason or CloseReason("Normal")))
            try:
                if self._writer.can_write_eof():
                    self._writer.write_eof()
                    self._eof = True
            except OSError:
                pass
            try:
                async with asyncio.timeout(self.config.close_grace):
                    await asyncio.shield(self.ended)
            except TimeoutError:
                self._end(DisconnectReason("ClosedLocally"))
        return await asyncio.shield(self.ended)

    # --- writing ----------------------------------------------------------------

    def _write_control(self, header: Header) -> None:
        """Queues a control frame, its text shortened to fit the peer."""
        if self._reason is None and not self._eof and not self._writer.is_closing():
            self._writer.write(encode_control(header, self.send_limit))

    async def _send(self, frame: bytes) -> None:
        """Writes a frame and waits for room in the socket's buffer."""
        if self._reason is not None:
            raise Disconnected(self._reason)
        if self._closing:
            raise Disconnected(DisconnectReason("ClosedLocally"))
        self._writer.write(frame)
        await self._drain()

    async def _drain(self) -> None:
        # Not asyncio.wait_for: in Python 3.11 it can swallow the caller's
        # cancellation when the drain is already done.
        try:
            async with asyncio.timeout(self.config.write_timeout):
                await self._writer.drain()
        except TimeoutError:
            self._end(DisconnectReason("WriteTimeout", after=self.config.write_timeout), abort=True)
        except OSError as e:
            self._end(disconnect_from_os(e))
        if self._reason is not None:
            raise Disconnected(self._reason)

    async def emit(self, payload: bytes) -> None:
        """Sends an ``Event`` frame. Raises :class:`~netsock.FrameTooLarge`
        or :class:`~netsock.Disconnected`."""
        await self._send(encode_frame(Header("Event"), payload, self.send_limit))

    async def call(self, variant: Variant, payload: bytes, timeout: float | None) -> Any:
        """Sends a ``Request`` and waits for its reply; on a timeout, or when
        the caller is cancelled, sends ``Cancel``."""
        rid = self._new_id()
        timeout_ms = 0 if timeout is None else min(_U32_MAX, max(1, round(timeout * 1000)))
        frame = encode_frame(Header("Request", id=rid, timeout_ms=timeout_ms), payload, self.send_limit)
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._pending[rid] = (fut, variant)
        try:
            await self._send(frame)
            done, _ = await asyncio.wait({fut}, timeout=timeout)
            if not done:
                self._cancel_call(rid)
                raise Timeout(timeout or 0.0)
            return fut.result()
        except asyncio.CancelledError:
            self._cancel_call(rid)
            raise
        finally:
            self._pending.pop(rid, None)

    async def open_stream(self, variant: Variant, payload: bytes, timeout: float | None) -> ItemStream:
        """Sends a stream ``Request`` and waits (within ``timeout``) until
        the peer accepts it; the same timeout, from now, bounds the wait for
        the first item. On a timeout, or when the caller is cancelled,
        sends ``Cancel``."""
        rid = self._new_id()
        timeout_ms = 0 if timeout is None else min(_U32_MAX, max(1, round(timeout * 1000)))
        frame = encode_frame(Header("Request", id=rid, timeout_ms=timeout_ms), payload, self.send_limit)
        fut: asyncio.Future[Any] = self._loop.create_future()
        stream = ItemStream(self, rid, variant)
        start = self._loop.time()
        stream._set_first_deadline(None if timeout is None else start + timeout, timeout)
        self._pending[rid] = (fut, variant)
        self._streams[rid] = stream  # items may follow the acceptance at once
        try:
            await self._send(frame)
            done, _ = await asyncio.wait({fut}, timeout=timeout)
            if not done:
                self._cancel_call(rid)
                self._streams.pop(rid, None)
                raise Timeout(timeout or 0.0)
            fut.result()
            return stream
        except BaseException:
            if self._streams.pop(rid, None) is not None and self._pending.get(rid) is not None:
                self._cancel_call(rid)
            raise
        finally:
            self._pending.pop(rid, None)

    def _cancel_stream(self, rid: int) -> None:
        """The reader stopped a stream: ``Cancel``, and what comes for it
        is ignored."""
        if self._streams.pop(rid, None) is not None:
            self._write_control(Header("Cancel", id=rid))

    def _new_id(self) -> int:
        while True:
            self._next_id = self._next_id % _U64_MAX + 1
            if self._next_id not in self._pending and self._next_id not in self._streams:
                return self._next_id

    def _cancel_call(self, rid: int) -> None:
        if self._pending.pop(rid, None) is not None:
            self._write_control(Header("Cancel", id=rid))

    # --- reading ------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            reason = await self._read_frames()
        except asyncio.CancelledError:
            raise
        except (OSError, asyncio.IncompleteReadError, EOFError) as e:
            reason = DisconnectReason("ClosedLocally") if self._closing else disconnect_from_os(e)
        except Exception as e:  # a bug here must end this connection, not the program
            log.exception("netsock: the connection's reader failed")
            reason = DisconnectReason("Io", message=f"internal error: {e!r}")
        self._end(reason)

    async def _read_frames(self) -> DisconnectReason:
        while True:
            try:
                body = await read_frame(self._reader, self.config.max_frame)
            except _CutMidFrame as e:
                if self._closing:
                    return DisconnectReason("ClosedLocally")
                return DisconnectReason("CutMidFrame", size=e.received, max=e.expected)
            except _TooLarge as e:
                log.warning("netsock: the peer sent a frame of %d bytes, over the limit of %d", e.size, self.config.max_frame)
                return self._fail(
                    CloseReason("FrameTooLarge", size=e.size, max=self.config.max_frame),
                    DisconnectReason("FrameTooLarge", size=e.size, max=self.config.max_frame),
                )
            self._last_seen = self._loop.time()
            try:
                header, payload = decode_body(body)
            except DecodeError as e:
                message = f"cannot decode a frame header: {e}"
                log.warning("netsock: protocol error: %s", message)
                return self._fail(CloseReason("Protocol", message=message), DisconnectReason("Protocol", message=message))
            if self._held is not None and header.kind in self.HELD_KINDS:
                if len(self._held) < self.config.max_concurrent_requests:
                    self._held.append((header, payload))
                    continue
                await self._released.wait()  # then handled, after all those held
            handler = self.FRAME_HANDLERS.get(header.kind)
            if handler is None:
                message = f"unexpected {header.kind} frame after the handshake"
                return self._fail(CloseReason("Protocol", message=message), DisconnectReason("Protocol", message=message))
            stop = await handler(self, header, payload)
            if stop is not None:
                return stop

    async def _heartbeat(self, interval: float, timeout: float) -> None:
        while self._reason is None:
            wait = self._last_seen + interval - self._loop.time()
            if wait > 0 or self._closing:
                await asyncio.sleep(max(wait, interval / 4))
                continue
            ping_at = self._loop.time()
            self._write_control(Header("Ping"))
            await asyncio.sleep(timeout)
            if self._last_seen < ping_at and not self._closing:
                log.warning("netsock: the peer stopped answering heartbeats")
                self._end(DisconnectReason("HeartbeatTimeout", after=interval + timeout), abort=True)

    # --- one handler per frame kind -------------------------------------------------

    async def _on_event(self, header: Header, payload: bytes) -> None:
        try:
            variant, values = self.schema.decode(payload)
        except DecodeError as e:
            self.host._report(SocketError("DecodeEvent", f"cannot decode an incoming event: {e}"))
            return None
        if variant.request:
            self.host._report(
                SocketError(
                    "RequestAsEvent",
                    f"{variant.name} is a request, but the peer sent it as a one-way event; it was dropped",
                    variant.name,
                )
            )
            return None
        running = self.host._dispatch_event(variant, values)
        if running is not None and running >= self.config.max_concurrent_events:
            await self.host._event_room(self.config.max_concurrent_events)
        return None

    async def _on_request(self, header: Header, payload: bytes) -> None:
        rid: int = header.id
        try:
            variant, values = self.schema.decode(payload)
        except DecodeError as e:
            return self._reply_failure(rid, RemoteError("BadRequest", message=str(e)))
        if not variant.request:
            return self._reply_failure(rid, RemoteError("NotARequest", event=variant.name))
        if variant.stream is not None:  # this package consumes streams, it does not serve them
            return self._reply_failure(rid, RemoteError("NoHandler", event=variant.name))
        if variant.upload is not None:  # nor does it take uploads; their items are then ignored
            return self._reply_failure(rid, RemoteError("NoHandler", event=variant.name))
        handler = self.host._request_handler(variant.name)
        if handler is None:
            return self._reply_failure(rid, RemoteError("NoHandler", event=variant.name))
        earlier = self._running.pop(rid, None)
        if earlier is not None:  # the caller reused the id of a running request
            earlier.cancel()
        await self._requests.acquire()
        when = None if header.timeout_ms == 0 else self._loop.time() + header.timeout_ms / 1000
        task = self._loop.create_task(self._serve(rid, variant, handler, values), context=_context(when))
        # Released when the task ends, even if it is cancelled before it starts.
        task.add_done_callback(lambda _: self._requests.release())
        self._running[rid] = task
        return None

    async def _serve(self, rid: int, variant: Variant, handler: Callable[..., Any], values: list[Any]) -> None:
        try:
            try:
                result = handler(*values)
                if inspect.isawaitable(result):
                    result = await result
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._reply_failure(rid, RemoteError("HandlerPanicked", message=_describe(e)))
                return
            try:
                payload = variant.encode_response(result)
            except ValidationError as e:
                self._reply_failure(rid, RemoteError("Encode", message=str(e)))
                return
            try:
                frame = encode_frame(Header("Response", id=rid), payload, self.send_limit)
            except FrameTooLarge as e:
                self._reply_failure(rid, RemoteError("ResponseTooLarge", size=e.size, max=self.send_limit))
                return
            if self._running.get(rid) is asyncio.current_task():
                del self._running[rid]
                await self._send(frame)
        except Disconnected:
            pass
        finally:
            if self._running.get(rid) is asyncio.current_task():
                del self._running[rid]

    def _reply_failure(self, rid: int, error: RemoteError) -> None:
        self._write_control(Header("Failure", id=rid, error=error))

    async def _on_response(self, header: Header, payload: bytes) -> None:
        entry = self._pending.pop(header.id, None)
        if entry is None:
            return None  # cancelled, timed out: ignored
        fut, variant = entry
        if fut.done():
            return None
        if variant.stream is not None:  # an empty Response accepts the stream
            fut.set_result(None)
            return None
        try:
            fut.set_result(variant.decode_response(payload))
        except DecodeError as e:
            fut.set_exception(CodecError(str(e)))
        return None

    async def _on_failure(self, header: Header, payload: bytes) -> None:
        entry = self._pending.pop(header.id, None)
        if entry is not None and not entry[0].done():
            self._streams.pop(header.id, None)
            entry[0].set_exception(call_error(header.error))
        return None

    async def _on_cancel(self, header: Header, payload: bytes) -> None:
        task = self._running.pop(header.id, None)
        if task is not None:
            task.cancel()
        return None

    async def _on_stream_item(self, header: Header, payload: bytes) -> None:
        stream = self._streams.get(header.id)
        if stream is not None:  # else ended or cancelled: ignored
            stream._push(payload, 1 + _varint_len(header.id) + len(payload))
        return None

    async def _on_stream_end(self, header: Header, payload: bytes) -> None:
        stream = self._streams.pop(header.id, None)
        if stream is not None:
            stream._finish(None if header.error is None else call_error(header.error))
        return None

    async def _on_credit(self, header: Header, payload: bytes) -> None:
        return None  # this side sends no streams

    async def _on_ack(self, header: Header, payload: bytes) -> None:
        return None  # sessions only; this side never asks for one

    async def _on_upload(self, header: Header, payload: bytes) -> None:
        # UploadItem, UploadEnd, UploadCredit: this side sends no uploads
        # and takes none (an upload request is answered NoHandler), so no
        # upload is ever tracked, and these are ignored, as the protocol
        # says of frames for an id with no open stream.
        return None

    async def _on_ping(self, header: Header, payload: bytes) -> None:
        self._write_control(Header("Pong"))
        if self._reason is None and not self._eof and not self._writer.is_closing():
            try:
                await self._drain()
            except Disconnected:
                pass
        return None

    async def _on_pong(self, header: Header, payload: bytes) -> None:
        return None

    async def _on_close(self, header: Header, payload: bytes) -> DisconnectReason:
        if self._closing:
            return DisconnectReason("ClosedLocally")
        return DisconnectReason("ClosedByPeer", close=header.reason)

    HELD_KINDS: ClassVar[frozenset[str]] = frozenset({"Event", "Request", "Volatile"})
    """The kinds :meth:`start` with ``hold`` keeps until :meth:`release`
    (at most ``max_concurrent_requests`` of them; then reading waits)."""

    FRAME_HANDLERS: ClassVar[dict[str, Handler]] = {
        "Event": _on_event,
        "Request": _on_request,
        "Response": _on_response,
        "Failure": _on_failure,
        "Cancel": _on_cancel,
        "Ping": _on_ping,
        "Pong": _on_pong,
        "Close": _on_close,
        "StreamItem": _on_stream_item,
        "StreamEnd": _on_stream_end,
        "Credit": _on_credit,
        "Ack": _on_ack,
        "Volatile": _on_event,
        "UploadItem": _on_upload,
        "UploadEnd": _on_upload,
        "UploadCredit": _on_upload,
    }
    """The handler of each frame kind after the handshake."""


def _varint_len(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def _context(when: float | None) -> contextvars.Context:
    ctx = contextvars.copy_context()
    ctx.run(_deadline.set, when)
    return ctx


def _describe(e: BaseException) -> str:
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
