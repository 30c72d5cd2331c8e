"""The socket: what a user holds, on either side. It sends events and
requests by variant name, keeps the handlers, and runs them for what the
peer sends.

A server's sockets are plain :class:`Socket`\\ s; a client's is a
:class:`~netsock.client.ClientSocket`, which also reconnects.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Self, TypeVar

from .connection import Config, Connection
from .errors import Disconnected, DisconnectReason, SocketError, ValidationError

if TYPE_CHECKING:
    from .schema import Schema, Variant
    from .stream import ItemStream

__all__ = ["Socket", "EventStream"]

log = logging.getLogger("netsock")

F = TypeVar("F", bound=Callable[..., Any])

_UNSET: Any = object()
_STREAM: Any = object()  # _encode's `request` for a stream request


class Socket:
    """One end of a netsock connection.

    Events and requests are named by their variant, their fields given in
    order (or by name for a struct variant), and checked against the
    schema before anything is sent::

        await socket.emit("Note", "hi")
        await socket.emit("Point", x=2, y=40)
        total = await socket.request("Sum", [1, 2, 3])
        await socket.timeout(0.1).request("Slow", ms=5000)   # raises netsock.Timeout

        socket.on("Note", lambda text: print(text))          # an event handler
        socket.on("Sum", lambda numbers: sum(numbers))       # a request handler: its result is the reply

    A handler gets the variant's fields as arguments, in order; it may be a
    coroutine function. An event handler's coroutine runs in a task of its
    own; a request handler's result (awaited if it is awaitable) is the
    reply, and an exception it raises reaches the caller as
    ``HandlerPanicked``.
    """

    def __init__(self, schema: Schema, config: Config) -> None:
        self.schema = schema
        self.config = config
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._once: dict[str, list[asyncio.Future[Any]]] = {}
        self._streams: list[EventStream] = []
        self._error_hooks: list[Callable[[SocketError], Any]] = []
        self._disconnect_hooks: list[Callable[[DisconnectReason], Any]] = []
        self._conn: Connection | None = None
        self._id = 0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._room = asyncio.Event()  # set when an event handler's task ends
        self._closed: asyncio.Future[DisconnectReason] = asyncio.get_running_loop().create_future()
        self.data: dict[str, Any] = {}
        """Anything the application keeps with this socket."""

    # --- what the user sees --------------------------------------------------------

    @property
    def id(self) -> int:
        """The connection's id, given by the server (a client's changes when
        it reconnects)."""
        return self._id

    @property
    def connected(self) -> bool:
        """Whether the socket has a live connection."""
        return self._conn is not None and self._conn.reason is None

    @property
    def peer_max_frame(self) -> int:
        """The largest frame body the peer accepts (0 while offline)."""
        return self._conn.peer_max if self._conn is not None else 0

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed" if self._closed.done() else "offline"
        return f"<{type(self).__name__} {self.schema.name} id={self._id} {state}>"

    def on(self, name: str, handler: Callable[..., Any] | None = None) -> Any:
        """Registers the handler of variant ``name`` (replacing any), for
        an event or a request. Usable as a decorator::

            @socket.on("Sum")
            async def total(numbers):
                return sum(numbers)
        """
        variant = self.schema.variant(name)  # a clear error for a name the schema lacks
        if variant.stream is not None:
            raise ValidationError(
                name, "an event or a request variant", name, f"{name} is a stream request; this package cannot serve streams"
            )
        if variant.upload is not None:
            raise ValidationError(
                name, "an event or a request variant", name, f"{name} carries an upload stream; this package cannot serve uploads"
            )

        def register(fn: F) -> F:
            if not callable(fn):
                raise TypeError(f"the handler for {name} must be callable, got {fn!r}")
            self._handlers[name] = fn
            return fn

        return register if handler is None else register(handler)

    def off(self, name: str) -> None:
        """Removes the handler of variant ``name``."""
        self._handlers.pop(name, None)

    def once(self, name: str, timeout: float | None = None) -> Coroutine[Any, Any, Any]:
        """The next event ``name``, from the moment of this call: await it
        for its value (``None`` for a unit variant, the value of a newtype,
        a tuple, a dict of a struct's fields)::

            echo = socket.once("Note")
            await socket.emit("Note", "hi")
            print(await echo)

        Raises :class:`~netsock.Disconnected` if the socket closes first,
        ``TimeoutError`` after ``timeout`` seconds."""
        if self.schema.variant(name).request:
            raise ValidationError(name, "an event variant", name, "requests are answered by a handler (on)")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._closed.done():
            fut.set_exception(Disconnected(self._closed.result()))
        else:
            self._once.setdefault(name, []).append(fut)
        return self._await_once(name, fut, timeout)

    async def _await_once(self, name: str, fut: asyncio.Future[Any], timeout: float | None) -> Any:
        try:
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            waiting = self._once.get(name)
            if waiting and fut in waiting:
                waiting.remove(fut)

    def events(self, capacity: int = 1024) -> EventStream:
        """The events that have no handler of their own, as values, from
        now on: ``(name, value)`` pairs (the value as :meth:`once` gives
        it). Make it before what triggers the events::

            events = socket.events()
            await socket.emit("Note", "hi")
            name, text = await events.next(timeout=5)

        At most ``capacity`` wait unread; more are dropped and reported."""
        stream = EventStream(self, capacity)
        if self._closed.done():
            stream._end()
        else:
            self._streams.append(stream)
        return stream

    def on_error(self, hook: Callable[[SocketError], Any]) -> None:
        """Hears of what goes wrong without failing a call: an event that
        does not decode, one without a handler, a failing event handler.
        Without a hook these are logged (logger ``netsock``)."""
        self._error_hooks.append(hook)

    def on_disconnect(self, hook: Callable[[DisconnectReason], Any]) -> None:
        """Called with the reason whenever a connection of this socket ends."""
        self._disconnect_hooks.append(hook)

    async def emit(self, name: str, /, *args: Any, **fields: Any) -> None:
        """Sends the event ``name``. Raises :class:`~netsock.ValidationError`
        for values that do not fit the schema, :class:`~netsock.FrameTooLarge`
        for an event over the peer's (or this side's) frame limit,
        :class:`~netsock.Disconnected` when closed."""
        variant, payload = self._encode(name, args, fields, request=False)
        await self._emit_payload(variant, payload)

    async def request(self, name: str, /, *args: Any, **fields: Any) -> Any:
        """Sends the request ``name`` and returns the peer's reply, decoded.
        Waits at most ``request_timeout`` (see :meth:`timeout` for another);
        raises a :class:`~netsock.CallError`: :class:`~netsock.Timeout` (the
        peer was sent ``Cancel``), :class:`~netsock.NoHandler`,
        :class:`~netsock.Disconnected`, ... Cancelling the awaiting task
        sends ``Cancel`` too."""
        return await self._request(name, args, fields, self.config.request_timeout)

    async def request_stream(self, name: str, /, *args: Any, **fields: Any) -> ItemStream:
        """Sends the stream request ``name`` (a variant with a ``stream``
        item type) and returns, once the peer accepts it, an
        :class:`~netsock.ItemStream` of its items::

            stream = await socket.request_stream("Watch", "AAPL")
            async with stream:
                async for price in stream:
                    ...

        Raises a :class:`~netsock.CallError` if the peer refuses it
        (:class:`~netsock.NoHandler`, ...) or does not answer within
        ``request_timeout`` (:class:`~netsock.Timeout`, the peer was sent
        ``Cancel``); that timeout also bounds the wait for the first item."""
        return await self._request_stream(name, args, fields, self.config.request_timeout)

    def timeout(self, seconds: float | None) -> _Timed:
        """This socket with another request timeout (``None``: wait
        forever): ``await socket.timeout(0.5).request("Sum", [1])``."""
        return _Timed(self, seconds)

    async def close(self) -> None:
        """Closes the connection in order (``Close(Normal)``, then what the
        peer still sends is read for up to 2 s), for good."""
        conn = self._conn
        self._closing_for_good()
        if conn is not None:
            await conn.close()
        self._finish(DisconnectReason("ClosedLocally"))

    async def closed(self) -> DisconnectReason:
        """Waits until the socket is closed for good; returns why."""
        return await asyncio.shield(self._closed)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- sending -------------------------------------------------------------------

    def _encode(self, name: str, args: Any, fields: Any, request: Any) -> tuple[Variant, bytes]:
        variant, payload = self.schema.encode(name, *args, **fields)
        if variant.upload is not None:
            raise ValidationError(
                name,
                "a variant without an upload",
                name,
                f"{name} carries an upload stream from the caller, which this package does not send",
            )
        if variant.stream is not None and request is not _STREAM:
            raise ValidationError(name, "a request variant", name, f"{name} is a stream request; use request_stream()")
        if request is _STREAM:
            if variant.stream is None:
                what = "request" if variant.request else "event"
                raise ValidationError(name, "a stream request variant", name, f"{name} is not a stream (it is an {what})")
            return variant, payload
        if variant.request != request:
            if request:
                raise ValidationError(name, "a request variant", name, f"{name} is an event; emit it instead")
            raise ValidationError(name, "an event variant", name, f"{name} is a request; use request()")
        return variant, payload

    async def _emit_payload(self, variant: Variant, payload: bytes) -> None:
        conn = self._live()
        await conn.emit(payload)

    async def _request(self, name: str, args: Any, fields: Any, timeout: float | None) -> Any:
        variant, payload = self._encode(name, args, fields, request=True)
        conn = self._live()
        return await conn.call(variant, payload, timeout)

    async def _request_stream(self, name: str, args: Any, fields: Any, timeout: float | None) -> ItemStream:
        variant, payload = self._encode(name, args, fields, request=_STREAM)
        conn = self._live()
        return await conn.open_stream(variant, payload, timeout)

    def _live(self) -> Connection:
        conn = self._conn
        if conn is None or conn.reason is not None:
            reason = (
                self._closed.result()
                if self._closed.done()
                else (conn.reason if conn is not None and conn.reason else DisconnectReason("PeerHungUp"))
            )
            raise Disconnected(reason)
        return conn

    # --- what the connection asks (the Host protocol) ----------------------------------

    def _attach(self, conn: Connection) -> None:
        self._conn = conn
        self._id = conn.id

    def _dispatch_event(self, variant: Variant, values: list[Any]) -> int | None:
        waiting = self._once.pop(variant.name, None)
        if waiting:
            value = variant.value(values)
            for fut in waiting:
                if not fut.done():
                    fut.set_result(value)
        handler = self._handlers.get(variant.name)
        if handler is None:
            for stream in self._streams:
                stream._put(variant.name, variant.value(values))
            if not waiting and not self._streams:
                self._report(SocketError("NoHandler", f"no handler for incoming event {variant.name}", variant.name))
            return None
        try:
            result = handler(*values)
        except Exception as e:
            self._handler_failed(variant.name, e)
            return None
        if not inspect.isawaitable(result):
            return None
        task = asyncio.ensure_future(result)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._event_task_done(variant.name, t))
        return len(self._tasks)

    async def _event_room(self, limit: int) -> None:
        while len(self._tasks) >= limit:
            self._room.clear()
            await self._room.wait()

    def _event_task_done(self, name: str, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        self._room.set()
        if not task.cancelled() and task.exception() is not None:
            self._handler_failed(name, task.exception())  # type: ignore[arg-type]

    def _handler_failed(self, name: str, e: BaseException) -> None:
        self._report(
            SocketError("HandlerFailed", f"the handler for event {name} failed: {type(e).__name__}: {e}", name)
        )

    def _request_handler(self, name: str) -> Callable[..., Any] | None:
        return self._handlers.get(name)

    def _report(self, error: SocketError) -> None:
        if not self._error_hooks:
            log.warning("netsock: socket %s: %s", self._id, error)
        for hook in self._error_hooks:
            try:
                hook(error)
            except Exception:
                log.exception("netsock: an error hook failed")

    def _connection_ended(self, conn: Connection, reason: DisconnectReason) -> None:
        for hook in self._disconnect_hooks:
            try:
                hook(reason)
            except Exception:
                log.exception("netsock: a disconnect hook failed")
        self._after_disconnect(conn, reason)

    # --- the end -----------------------------------------------------------------------

    def _after_disconnect(self, conn: Connection, reason: DisconnectReason) -> None:
        """A server's socket is closed for good when its connection ends;
        a client's may reconnect (``ClientSocket`` overrides this)."""
        self._finish(reason)

    def _closing_for_good(self) -> None:
        """``close()`` was called: a client stops reconnecting."""

    def _finish(self, reason: DisconnectReason) -> None:
        if self._closed.done():
            return
        self._closed.set_result(reason)
        for waiting in self._once.values():
            for fut in waiting:
                if not fut.done():
                    fut.set_exception(Disconnected(reason))
        self._once.clear()
        streams, self._streams = self._streams, []
        for stream in streams:
            stream._end()


class _Timed:
    """A socket with its own request timeout (:meth:`Socket.timeout`)."""

    def __init__(self, socket: Socket, seconds: float | None) -> None:
        self._socket = socket
        self._seconds = seconds

    async def request(self, name: str, /, *args: Any, **fields: Any) -> Any:
        """:meth:`Socket.request` with this timeout."""
        return await self._socket._request(name, args, fields, self._seconds)

    async def request_stream(self, name: str, /, *args: Any, **fields: Any) -> ItemStream:
        """:meth:`Socket.request_stream` with this timeout (for the
        acceptance and the first item)."""
        return await self._socket._request_stream(name, args, fields, self._seconds)


class EventStream:
    """Events as values (:meth:`Socket.events`): ``await stream.next()``,
    or ``async for name, value in stream``. Ends when the socket closes
    for good."""

    def __init__(self, socket: Socket, capacity: int) -> None:
        self._socket = socket
        self._queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue(max(1, capacity) + 1)
        self._capacity = max(1, capacity)
        self._ended = False

    def _put(self, name: str, value: Any) -> None:
        if self._queue.qsize() >= self._capacity:
            self._socket._report(SocketError("Missed", f"an events() stream is full: event {name} was dropped", name))
            return
        self._queue.put_nowait((name, value))

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)

    async def next(self, timeout: float | None = None) -> tuple[str, Any]:
        """The next event; :class:`~netsock.Disconnected` once the socket
        has closed and every event was read, ``TimeoutError`` after
        ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # for the next reader
            raise Disconnected(self._socket._closed.result())
        return item

    def close(self) -> None:
        """Stops collecting events."""
        if self in self._socket._streams:
            self._socket._streams.remove(self)
        self._end()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> tuple[str, Any]:
        try:
            return await self.next()
        except Disconnected:
            raise StopAsyncIteration from None
