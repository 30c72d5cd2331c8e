"""Consuming a stream the peer sends: the answer to a stream request
(a variant whose schema JSON entry has a ``stream`` item type).

:meth:`~netsock.Socket.request_stream` sends the ``Request``, waits for
the peer to accept it (an empty ``Response``; a ``Failure`` raises its
:class:`~netsock.CallError`), and returns an :class:`ItemStream`: the
``StreamItem`` frames' items, in order, until ``StreamEnd``.

Flow control is the protocol's credit: the sender starts with
:data:`~netsock.frames.STREAM_WINDOW_ITEMS` items and
:data:`~netsock.frames.STREAM_WINDOW_BYTES` bytes, and this side grants
back what its reader has read (a ``Credit`` frame) each time that
reaches half the window, as netsock does. So the peer is never more than
a window ahead of the reader, and the items waiting here are bounded.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from .errors import CallError, CodecError, DecodeError, StreamProtocol, Timeout
from .frames import STREAM_WINDOW_BYTES, STREAM_WINDOW_ITEMS, Header

if TYPE_CHECKING:
    from .connection import Connection
    from .schema import Variant

__all__ = ["ItemStream"]


class ItemStream:
    """The items of one stream, as an async iterator::

        stream = await sock.request_stream("Watch", symbol="ACME", count=10)
        async with stream:                 # closes it (sends Cancel) when left early
            async for tick in stream:
                print(tick)

    The iteration ends when the peer ends the stream; a stream that failed
    raises its error (:class:`~netsock.HandlerFailed`,
    :class:`~netsock.HandlerPanicked`, :class:`~netsock.ResponseTooLarge`,
    :class:`~netsock.StreamProtocol`, :class:`~netsock.Disconnected`)
    once, after the items that came before it. The request's timeout bounds
    the wait for the first item (:class:`~netsock.Timeout`, and the stream
    is cancelled); later items may take as long as they take.

    Leaving an ``async for`` early does not close a plain async iterator:
    call :meth:`aclose` (or :meth:`cancel`), or use ``async with``, so the
    peer stops producing.
    """

    def __init__(self, conn: Connection, rid: int, variant: Variant) -> None:
        self._conn = conn
        self.id = rid
        """The request's id, which the stream's frames carry."""
        self.variant = variant
        self._items: deque[tuple[bytes, int]] = deque()
        self._ended = False  # StreamEnd (or a failure) came
        self._error: CallError | None = None
        self._closed = False  # nothing more for the reader
        self._wake: asyncio.Future[None] | None = None
        # The sender's credit, as this side counts it.
        self._credit_items = STREAM_WINDOW_ITEMS
        self._credit_bytes = STREAM_WINDOW_BYTES
        # Read since the last grant.
        self._read_items = 0
        self._read_bytes = 0
        self._first_deadline: float | None = None
        self._timeout: float | None = None
        self._got_item = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ended" if self._ended else "open"
        return f"<ItemStream {self.variant.name} id={self.id} {state}, {len(self._items)} waiting>"

    # --- the reader's side ------------------------------------------------------------

    def __aiter__(self) -> ItemStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self._items:
                payload, size = self._items.popleft()
                self._consumed(size)
                try:
                    return self.variant.decode_item(payload)
                except DecodeError as e:
                    self.cancel()
                    raise CodecError(str(e)) from None
            if self._closed:
                raise StopAsyncIteration
            if self._ended:
                self._closed = True
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            await self._wait()

    async def next(self, default: Any = StopAsyncIteration) -> Any:
        """The next item; at the end, ``default`` if given, else
        ``StopAsyncIteration``."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            if default is StopAsyncIteration:
                raise
            return default

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        try:
            if self._got_item or self._first_deadline is None:
                await self._wake
                return
            left = self._first_deadline - loop.time()
            if left > 0:
                done, _ = await asyncio.wait({self._wake}, timeout=left)
                if done:
                    return
            if not self._got_item and not self._ended:
                self.cancel()
                raise Timeout(self._timeout or 0.0)
        finally:
            self._wake = None

    def _consumed(self, size: int) -> None:
        """Grants back what was read, each time it reaches half the window."""
        self._read_items += 1
        self._read_bytes += size
        if self._ended or self._closed:
            return
        if self._read_items >= STREAM_WINDOW_ITEMS // 2 or self._read_bytes >= STREAM_WINDOW_BYTES // 2:
            items, size_sum = self._read_items, self._read_bytes
            self._read_items = self._read_bytes = 0
            self._credit_items += items
            self._credit_bytes += size_sum
            self._conn._write_control(Header("Credit", id=self.id, items=items, bytes=size_sum))

    def cancel(self) -> None:
        """Stops the stream: sends ``Cancel`` unless it already ended, and
        drops the items not read. Iterating then ends."""
        if self._closed:
            return
        self._closed = True
        self._items.clear()
        self._error = None
        if not self._ended:
            self._ended = True
            self._conn._cancel_stream(self.id)
        self._notify()

    async def aclose(self) -> None:
        """Same as :meth:`cancel`."""
        self.cancel()

    async def __aenter__(self) -> ItemStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()

    @property
    def done(self) -> bool:
        """Whether the peer ended the stream (or it was cancelled)."""
        return self._ended

    # --- the connection's side ------------------------------------------------------

    def _set_first_deadline(self, when: float | None, timeout: float | None) -> None:
        self._first_deadline = when
        self._timeout = timeout

    def _push(self, payload: bytes, size: int) -> None:
        """A ``StreamItem`` whose frame body is ``size`` bytes."""
        if self._ended:
            return
        if self._credit_items <= 0 or self._credit_bytes <= 0:
            self._finish(StreamProtocol("the peer sent an item beyond the credit granted"))
            self._conn._cancel_stream(self.id)
            return
        self._credit_items -= 1
        self._credit_bytes -= size
        self._got_item = True
        self._items.append((payload, size))
        self._notify()

    def _finish(self, error: CallError | None) -> None:
        """``StreamEnd`` (or the connection ended)."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        self._notify()

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
