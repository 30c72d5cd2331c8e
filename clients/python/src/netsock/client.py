"""The client: :func:`connect` dials, handshakes, and returns a
:class:`ClientSocket`, which reconnects with backoff when the connection
drops (:class:`Reconnect`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .addr import Addr, parse
from .connection import Config, Connection
from .errors import (
    ConnectError,
    ConnectFailed,
    Disconnected,
    DisconnectReason,
    NetsockError,
    OfflineBufferFull,
    ProtocolError,
    Rejected,
    SocketError,
)
from .handshake import client_handshake
from .postcard import write_str
from .socket import Socket

if TYPE_CHECKING:
    import os

    from .schema import Schema, Variant

__all__ = ["connect", "ClientSocket", "Reconnect"]

log = logging.getLogger("netsock")


@dataclass
class Reconnect:
    """How a client socket reconnects after losing its connection, as in
    Rust: attempt *n* waits ``initial_delay × 2ⁿ⁻¹``, at most ``max_delay``,
    minus a random share of up to ``jitter`` of it. Emits made while offline
    are kept (up to ``offline_buffer`` events; 0 makes them fail at once)
    and sent in order once back; requests fail at once with
    :class:`~netsock.Disconnected`.

    It does not reconnect after ``close()``, when the server closed this
    connection on purpose (``Close(Normal)`` or ``Application``), after a
    protocol error or an oversized frame, or when the server refuses the
    handshake for good (refused, schema or version mismatch)."""

    initial_delay: float = 0.1
    max_delay: float = 5.0
    max_attempts: int | None = None
    jitter: float = 0.5
    offline_buffer: int = 1024

    def delay(self, attempt: int) -> float:
        """The wait before attempt ``attempt`` (from 1)."""
        full = min(self.max_delay, self.initial_delay * 2.0 ** min(attempt - 1, 62))
        share = max(0.0, min(self.jitter, 1.0))
        return full - random.uniform(0.0, share * full)


def _retryable(reason: DisconnectReason) -> bool:
    if reason.kind in ("PeerHungUp", "CutMidFrame", "Io", "HeartbeatTimeout", "WriteTimeout"):
        return True
    return reason.kind == "ClosedByPeer" and reason.close is not None and reason.close.kind == "Shutdown"


def _for_good(err: BaseException) -> bool:
    """Whether a failed attempt means the server will never take this client."""
    if isinstance(err, Rejected):
        return err.reason.kind not in ("Other", "HandshakeTimeout")
    return isinstance(err, ProtocolError)


def _auth_bytes(auth: bytes | str | None) -> bytes | None:
    """The handshake's auth bytes: ``bytes`` as they are, a ``str`` as a
    postcard ``String`` (what a Rust server reads with ``auth::<String>()``)."""
    if auth is None or isinstance(auth, (bytes, bytearray)):
        return bytes(auth) if auth is not None else None
    if isinstance(auth, str):
        out = bytearray()
        write_str(out, auth)
        return bytes(out)
    raise TypeError(f"auth must be bytes or str, got {type(auth).__name__}")


async def _open(addr: Addr) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        if addr.kind == "unix":
            return await asyncio.open_unix_connection(addr.path)
        return await asyncio.open_connection(addr.host, addr.port)
    except OSError as e:
        raise ConnectFailed(str(addr), e) from None


async def _dial(
    addr: Addr, schema: Schema, config: Config, auth: bytes | None, socket: Socket
) -> Connection:
    reader, writer = await _open(addr)
    try:
        conn_id, peer_max = await client_handshake(reader, writer, schema.id, schema.text, config, auth, str(addr))
    except BaseException:
        writer.transport.abort()
        raise
    peer = str(addr)
    return Connection(reader, writer, schema, config, socket, conn_id, peer_max, peer)


class ClientSocket(Socket):
    """A client's socket: a :class:`~netsock.Socket` that reconnects."""

    def __init__(
        self, addr: Addr, schema: Schema, config: Config, auth: bytes | None, reconnect: Reconnect | None
    ) -> None:
        super().__init__(schema, config)
        self.addr = addr
        self._auth = auth
        self._policy = reconnect
        self._offline: deque[tuple[Variant, bytes]] = deque()
        self._flushing = False
        self._stopped = False
        self._redial_task: asyncio.Task[None] | None = None
        self._reconnect_hooks: list[Callable[[ClientSocket], Any]] = []

    def on_reconnect(self, hook: Callable[[ClientSocket], Any]) -> None:
        """Called (and awaited in a task, if it is a coroutine function)
        after each reconnect, with the socket: rebuild per-connection
        state here."""
        self._reconnect_hooks.append(hook)

    async def _emit_payload(self, variant: Variant, payload: bytes) -> None:
        if self.connected and not self._flushing:
            await super()._emit_payload(variant, payload)
            return
        if self._closed.done() or self._policy is None or self._stopped:
            raise Disconnected(self._closed.result() if self._closed.done() else DisconnectReason("ClosedLocally"))
        capacity = self._policy.offline_buffer
        if capacity <= 0:
            reason = self._conn.reason if self._conn is not None and self._conn.reason else DisconnectReason("PeerHungUp")
            raise Disconnected(reason)
        if len(self._offline) >= capacity:
            raise OfflineBufferFull(variant.name, capacity)
        self._offline.append((variant, payload))

    def _after_disconnect(self, conn: Connection, reason: DisconnectReason) -> None:
        if self._stopped or self._policy is None or not _retryable(reason):
            self._finish(reason)
            return
        log.info("netsock: connection to %s lost (%s); reconnecting", self.addr, reason)
        self._redial_task = asyncio.get_running_loop().create_task(self._redial(reason))

    async def _redial(self, lost: DisconnectReason) -> None:
        policy = self._policy
        assert policy is not None
        attempt = 0
        while not self._stopped:
            attempt += 1
            await asyncio.sleep(policy.delay(attempt))
            if self._stopped:
                return
            try:
                conn = await _dial(self.addr, self.schema, self.config, self._auth, self)
            except (ConnectError, ProtocolError, OSError) as e:
                log.info("netsock: reconnect attempt %d to %s failed: %s", attempt, self.addr, e)
                if _for_good(e) or (policy.max_attempts is not None and attempt >= policy.max_attempts):
                    self._finish(DisconnectReason("ReconnectFailed", attempts=attempt, message=str(e)))
                    return
                continue
            if self._stopped:
                conn._writer.transport.abort()
                return
            self._flushing = True
            self._attach(conn)
            conn.start()
            try:
                while self._offline:
                    _, payload = self._offline.popleft()
                    await conn.emit(payload)
            except NetsockError:
                pass  # the new connection failed too: _after_disconnect redials
            finally:
                self._flushing = False
            for hook in self._reconnect_hooks:
                try:
                    result = hook(self)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("netsock: a reconnect hook failed")
            return

    def _closing_for_good(self) -> None:
        self._stopped = True
        if self._redial_task is not None and self._redial_task is not asyncio.current_task():
            self._redial_task.cancel()

    def _finish(self, reason: DisconnectReason) -> None:
        if self._offline and not self._closed.done():
            self._report(
                SocketError("Unsent", f"{len(self._offline)} events emitted while offline were never sent: {reason}")
            )
            self._offline.clear()
        super()._finish(reason)


async def connect(
    addr: str | int | os.PathLike[str] | Addr,
    schema: Schema,
    *,
    auth: bytes | str | None = None,
    reconnect: Reconnect | bool = True,
    **options: Any,
) -> ClientSocket:
    """Connects to a netsock server and completes the handshake.

    ``addr`` is a Unix socket path or ``"tcp://host:port"`` (see
    :mod:`netsock.addr`); ``schema`` the event enum both sides speak.
    ``auth`` is sent in the handshake (a ``str`` as a postcard ``String``).
    ``reconnect``: a :class:`Reconnect` policy, ``True`` for the default,
    ``False`` for none. Other keywords are :class:`~netsock.Config` fields
    (``max_frame``, ``request_timeout``, ``heartbeat``, ``lenient``, ...).

    Raises :class:`~netsock.ConnectFailed` when nobody listens,
    :class:`~netsock.Rejected` (:class:`~netsock.SchemaMismatch`,
    :class:`~netsock.VersionMismatch`) when the server refuses,
    :class:`~netsock.ProtocolError` when the peer is not a netsock server,
    :class:`~netsock.HandshakeTimeout`.
    """
    parsed = parse(addr)
    config = Config(**options)
    policy = Reconnect() if reconnect is True else (reconnect or None)
    socket = ClientSocket(parsed, schema, config, _auth_bytes(auth), policy)
    conn = await _dial(parsed, schema, config, socket._auth, socket)
    socket._attach(conn)
    # Last, so that handlers registered right after `await connect(...)`
    # are in place before the first frame is read.
    conn.start()
    return socket
