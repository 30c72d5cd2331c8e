"""How a connection starts: ``Hello`` from the connecting side,
``Welcome`` or ``Reject`` back (the book's *Wire protocol*, "The
handshake"), both sides; and what a client says of a schema mismatch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .connection import Config, _CutMidFrame, _TooLarge, read_frame
from .errors import DecodeError, HandshakeTimeout, ProtocolError, Rejected, SchemaMismatch, VersionMismatch
from .frames import (
    MAGIC,
    MIN_MAX_FRAME,
    PROTOCOL_VERSION,
    Header,
    RejectReason,
    decode_body,
    encode_control,
    encode_frame,
)

__all__ = ["client_handshake", "server_handshake", "differences", "Accepted"]

MAX_SCHEMA_REPLY = 64 * 1024
"""The largest ``Reject`` carrying the server's schema texts."""


async def _first_frame(reader: asyncio.StreamReader, limit: int) -> Header:
    """The peer's first frame; :class:`~netsock.ProtocolError` if it is not one."""
    try:
        body = await read_frame(reader, limit)
    except (asyncio.IncompleteReadError, _CutMidFrame):
        raise ProtocolError("the peer closed the connection during the handshake") from None
    except _TooLarge as e:
        raise ProtocolError(f"the peer's first frame ({e.size} bytes) is not a netsock handshake") from None
    try:
        return decode_body(body)[0]
    except DecodeError as e:
        raise ProtocolError(f"the peer's first frame is not a netsock handshake: {e}") from None


async def client_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    schema_id: int,
    schema_text: str,
    config: Config,
    auth: bytes | None,
    addr: str,
) -> tuple[int, int]:
    """Sends ``Hello``, waits for the answer: (connection id, the server's
    frame limit), or raises :class:`~netsock.Rejected` (or a subclass),
    :class:`~netsock.ProtocolError`, :class:`~netsock.HandshakeTimeout`."""
    hello = Header(
        "Hello",
        magic=MAGIC,
        version=PROTOCOL_VERSION,
        sends=schema_id,
        receives=schema_id,
        max_frame=config.max_frame,
        lenient=config.lenient,
        auth=auth,
    )
    writer.write(encode_frame(hello))
    try:
        async with asyncio.timeout(config.handshake_timeout):
            await writer.drain()
            answer = await _first_frame(reader, config.max_frame)
    except TimeoutError:
        raise HandshakeTimeout(addr, config.handshake_timeout) from None
    ours = (schema_id, schema_id)
    if answer.kind == "Welcome":
        if answer.max_frame < MIN_MAX_FRAME:
            raise ProtocolError(
                f"the server announced a frame limit of {answer.max_frame} bytes, below the protocol minimum of {MIN_MAX_FRAME}"
            )
        return answer.id, answer.max_frame
    if answer.kind != "Reject":
        raise ProtocolError(f"expected a handshake reply, got {answer.kind}")
    reason: RejectReason = answer.reason
    match reason.kind:
        case "SchemaMismatch":
            raise SchemaMismatch(reason, ours, reason.server, [])
        case "SchemaDiffers":
            sends, receives = reason.server_schema
            # What the server receives is what this side sends.
            said = differences(receives, schema_text)
            if sends != receives:
                said += differences(sends, schema_text)
            raise SchemaMismatch(reason, ours, reason.server, said)
        case "VersionMismatch":
            raise VersionMismatch(reason, reason.client, reason.server)
    raise Rejected(reason)


@dataclass
class Accepted:
    """A ``Hello`` the server accepts."""

    hello: Header

    @property
    def auth(self) -> bytes | None:
        """The client's auth bytes."""
        return self.hello.auth  # type: ignore[no-any-return]

    @property
    def max_frame(self) -> int:
        """The client's frame limit."""
        return self.hello.max_frame  # type: ignore[no-any-return]


async def server_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    schema_id: int,
    schema_text: str,
    config: Config,
    authorize: Callable[[bytes | None], Awaitable[str | None] | str | None] | None,
) -> Accepted:
    """Reads the ``Hello``; answers ``Reject`` and raises
    :class:`~netsock.Rejected` (or :class:`~netsock.ProtocolError`), or
    returns it (the caller sends ``Welcome`` once it lists the socket)."""

    def reject(reason: RejectReason, limit: int = MIN_MAX_FRAME) -> Rejected:
        writer.write(encode_control(Header("Reject", reason=reason), limit))
        return Rejected(reason)

    limit = min(config.max_handshake_frame, config.max_frame)
    try:
        async with asyncio.timeout(config.handshake_timeout):
            try:
                hello = await _first_frame(reader, limit)
            except ProtocolError:
                raise reject(RejectReason("BadMagic")) from None
    except TimeoutError:
        raise reject(RejectReason("HandshakeTimeout", after_ms=round(config.handshake_timeout * 1000))) from None
    if hello.kind != "Hello" or hello.magic != MAGIC:
        raise reject(RejectReason("BadMagic"))
    ours = (schema_id, schema_id)
    if hello.version != PROTOCOL_VERSION:
        raise reject(RejectReason("VersionMismatch", server=PROTOCOL_VERSION, client=hello.version))
    if hello.max_frame < MIN_MAX_FRAME:
        raise reject(RejectReason("FrameLimitTooSmall", max_frame=hello.max_frame, min=MIN_MAX_FRAME))
    if (hello.receives, hello.sends) != ours and not (config.lenient or hello.lenient):
        client = (hello.sends, hello.receives)
        detailed = RejectReason("SchemaDiffers", server=ours, client=client, server_schema=(schema_text, schema_text))
        limit = max(MIN_MAX_FRAME, min(hello.max_frame, MAX_SCHEMA_REPLY))
        try:
            writer.write(encode_frame(Header("Reject", reason=detailed), b"", limit))
        except Exception:
            raise reject(RejectReason("SchemaMismatch", server=ours, client=client)) from None
        raise Rejected(detailed)
    if authorize is not None:
        try:
            async with asyncio.timeout(config.handshake_timeout):
                verdict: Any = authorize(hello.auth)
                if asyncio.iscoroutine(verdict) or isinstance(verdict, asyncio.Future):
                    verdict = await verdict
        except TimeoutError:
            verdict = "the server's checks timed out"
        except Exception as e:
            verdict = f"the server's check failed: {e}"
        if verdict is not None:
            raise reject(RejectReason("Refused", message=str(verdict)))
    return Accepted(hello)


# --- saying how two schema texts differ -------------------------------------------

_SAID_MAX = 6
_QUOTE_MAX = 160


def _parse(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """``Name{a,b(..),c{..}}`` as its name and its items (each with its
    leading name); ``None`` for another shape."""
    open_at = text.find("{")
    if open_at < 0 or not text.endswith("}"):
        return None
    name, body = text[:open_at], text[open_at + 1 : -1]
    items, depth, start, i = [], 0, 0, 0
    while i < len(body):
        c = body[i]
        if c == "-" and body[i + 1 : i + 2] == ">":
            i += 1
        elif c in "({<[":
            depth += 1
        elif c in ")}>]":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
        if depth < 0:
            return None
        i += 1
    if depth != 0:
        return None
    if body:
        items.append(body[start:])
    out = []
    for item in items:
        end = 0
        while end < len(item) and (item[end].isalnum() or item[end] == "_"):
            end += 1
        out.append((item[:end], item))
    return name, out


def _quote(text: str) -> str:
    return text if len(text) <= _QUOTE_MAX else text[:_QUOTE_MAX] + "…"


def differences(theirs: str, ours: str) -> list[str]:
    """How the server's schema text differs from this client's, one
    sentence each, as the Rust client says it.

    >>> differences("SumApi{Sum(Vec<i64>)->i64}", "SumApi{Sum(Vec<i32>)->i64}")
    ["the server's SumApi has Sum(Vec<i64>)->i64, this client's has Sum(Vec<i32>)->i64"]
    """
    out: list[str] = []
    _compare(theirs, ours, out)
    if len(out) > _SAID_MAX:
        more = len(out) - (_SAID_MAX - 1)
        out = out[: _SAID_MAX - 1] + [f"and {more} more differences"]
    return out


def _compare(theirs: str, ours: str, out: list[str]) -> None:
    if theirs == ours:
        return
    t, o = _parse(theirs), _parse(ours)
    if t is None or o is None:
        out.append(f"the server's schema is {_quote(theirs)}, this client's is {_quote(ours)}")
        return
    (tname, titems), (oname, oitems) = t, o
    if tname != oname:
        out.append(f"the server's enum is {_quote(tname)}, this client's is {_quote(oname)}")
    before = len(out)
    ours_by = dict(oitems)
    theirs_by = dict(titems)
    for key, their_item in titems:
        our_item = ours_by.get(key)
        if our_item is None:
            out.append(f"this client's {oname} has no {key} (the server's has {_quote(their_item)})")
        elif our_item != their_item:
            tp, op = their_item.removeprefix(key + ":"), our_item.removeprefix(key + ":")
            if tp != their_item and op != our_item:
                _compare(tp, op, out)
            else:
                out.append(f"the server's {oname} has {_quote(their_item)}, this client's has {_quote(our_item)}")
    for key, our_item in oitems:
        if key not in theirs_by:
            out.append(f"the server's {oname} has no {key} (this client's has {_quote(our_item)})")
    if len(out) == before and len(titems) == len(oitems):
        def order(items: list[tuple[str, str]]) -> str:
            return ", ".join(k for k, _ in items)

        out.append(
            f"{oname}'s variants are in another order: the server's {_quote(order(titems))}, "
            f"this client's {_quote(order(oitems))}"
        )
