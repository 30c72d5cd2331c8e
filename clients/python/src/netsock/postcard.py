"""Postcard's byte-level encodings: varints, zigzag, strings, floats.

These are the building blocks both the frame headers (:mod:`netsock.frames`)
and the schema-driven value codec (:mod:`netsock.codec`) write and read.
See https://postcard.jamesmunns.com/wire-format.html.
"""

from __future__ import annotations

import struct

from .errors import DecodeError

__all__ = ["Reader", "write_varint", "write_zigzag", "write_bytes", "write_str", "zigzag", "unzigzag"]

# The longest varint of each width: ceil(bits / 7) bytes.
_VARINT_MAX_BYTES = {16: 3, 32: 5, 64: 10, 128: 19}


def zigzag(n: int, bits: int) -> int:
    """A signed integer of ``bits`` bits as postcard maps it to an unsigned one."""
    return ((n << 1) ^ (n >> (bits - 1))) & ((1 << bits) - 1)


def unzigzag(n: int) -> int:
    """The inverse of :func:`zigzag`."""
    return (n >> 1) ^ -(n & 1)


def write_varint(out: bytearray, n: int) -> None:
    """Appends ``n`` (>= 0) as an unsigned LEB128 varint."""
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def write_zigzag(out: bytearray, n: int, bits: int) -> None:
    """Appends a signed integer: zigzag, then a varint."""
    write_varint(out, zigzag(n, bits))


def write_bytes(out: bytearray, data: bytes | bytearray | memoryview) -> None:
    """Appends a byte string: its length as a varint, then the bytes."""
    write_varint(out, len(data))
    out += data


def write_str(out: bytearray, text: str) -> None:
    """Appends a string: its UTF-8 length as a varint, then the bytes."""
    write_bytes(out, text.encode("utf-8"))


class Reader:
    """Reads postcard values from a byte string, front to back.

    Every method raises :class:`~netsock.DecodeError` on bytes that do not
    decode (too short, an overlong varint, invalid UTF-8), never anything
    else: the bytes come from a peer.
    """

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self.data = bytes(data)
        self.pos = pos

    def remaining(self) -> int:
        """How many bytes are left."""
        return len(self.data) - self.pos

    def rest(self) -> bytes:
        """The bytes not read yet (and consumes them)."""
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    def byte(self) -> int:
        """One byte."""
        if self.pos >= len(self.data):
            raise DecodeError("the data ends too early")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        """``n`` bytes."""
        if n > len(self.data) - self.pos:
            raise DecodeError(f"the data ends too early: {n} bytes announced, {self.remaining()} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def varint(self, bits: int = 64) -> int:
        """An unsigned varint of at most ``bits`` bits."""
        n = 0
        shift = 0
        for _ in range(_VARINT_MAX_BYTES[bits]):
            b = self.byte()
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                if n >> bits:
                    raise DecodeError(f"varint out of range for a u{bits}")
                return n
            shift += 7
        raise DecodeError(f"varint too long for a u{bits}")

    def zigzag(self, bits: int = 64) -> int:
        """A signed integer of ``bits`` bits: a varint, then zigzag."""
        return unzigzag(self.varint(bits))

    def bool(self) -> bool:
        """A bool: one byte, 0 or 1."""
        b = self.byte()
        if b > 1:
            raise DecodeError(f"invalid bool byte {b}")
        return b == 1

    def bytes(self) -> bytes:
        """A byte string: a varint length, then the bytes."""
        return self.take(self.length())

    def str(self) -> str:
        """A string: a varint length, then UTF-8."""
        raw = self.bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid UTF-8 in a string: {e.reason}") from None

    def length(self) -> int:
        """A byte length (a ``usize`` varint), no larger than the bytes left."""
        return self.count(1)

    def count(self, min_size: int) -> int:
        """An element count (a ``usize`` varint) of elements that take at
        least ``min_size`` bytes each: it must fit in the bytes left, so a
        peer cannot make the decoder loop for a count it never sends. Items
        that take no bytes (``()``) are allowed as many as the data is long."""
        n = self.varint(64)
        room = self.remaining() // min_size if min_size else len(self.data)
        if n > room:
            raise DecodeError(f"a length of {n} runs past the end of the data ({self.remaining()} bytes left)")
        return n

    def f32(self) -> float:
        """A little-endian IEEE 754 single."""
        value: float = struct.unpack("<f", self.take(4))[0]
        return value

    def f64(self) -> float:
        """A little-endian IEEE 754 double."""
        value: float = struct.unpack("<d", self.take(8))[0]
        return value
