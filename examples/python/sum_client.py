#!/usr/bin/env python3
"""A netsock client in Python, written from the book's wire protocol chapter.

Connects to the Rust sum-numbers service over a Unix socket, performs the
handshake, calls Sum([1, 2, 3, 4, 5, 6]) and prints the reply (21).

    python3 examples/python/sum_client.py /path/to/sum_numbers.sock

Standard library only. The service's enum, on the Rust side:

    #[derive(Events, Serialize, Deserialize)]
    enum SumApi {
        #[request(response = i64)]
        Sum(Vec<i64>),
    }
"""

import socket
import struct
import sys

# The canonical schema text #[derive(Events)] makes of SumApi; its FNV-1a 64
# hash is the SchemaId both sides send in the handshake.
SUM_API_SCHEMA = "SumApi{Sum(Vec<i64>)->i64}"

MAGIC = b"NSCK"
PROTOCOL_VERSION = 1
MAX_FRAME = 8 * 1024 * 1024

# Frame kinds: the varint tag that opens every frame body.
HELLO, WELCOME, REJECT, EVENT, REQUEST, RESPONSE, FAILURE, CANCEL, PING, PONG, CLOSE = range(11)

REMOTE_ERRORS = ["NoHandler", "NotARequest", "HandlerPanicked", "BadRequest",
                 "ResponseTooLarge", "Encode"]
REJECT_REASONS = [
    "BadMagic",
    "VersionMismatch",
    "SchemaMismatch",
    "Other",
    "Refused",
    "HandshakeTimeout",
    "FrameLimitTooSmall",
    "SchemaDiffers",
]


def schema_id(text):
    """64-bit FNV-1a of the text's UTF-8 bytes."""
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


# --- postcard, the little of it this client needs -------------------------

def varint(n):
    """An unsigned LEB128 varint."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def zigzag(n):
    """A signed integer as postcard writes it: zigzag, then a varint."""
    return varint((n << 1) ^ (n >> 63))


class Reader:
    """Reads postcard values from a frame body."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def byte(self):
        if self.pos >= len(self.data):
            raise ValueError("frame body ends too early")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self):
        n, shift = 0, 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def zigzag(self):
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def string(self):
        length = self.varint()
        if self.pos + length > len(self.data):
            raise ValueError("string runs past the frame")
        text = self.data[self.pos:self.pos + length].decode("utf-8")
        self.pos += length
        return text


# --- frames -----------------------------------------------------------------

def send_frame(sock, body):
    """A 4-byte big-endian length, then the body."""
    sock.sendall(struct.pack(">I", len(body)) + body)


def recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return bytes(data)


def recv_frame(sock):
    (length,) = struct.unpack(">I", recv_exact(sock, 4))
    if length > MAX_FRAME:
        raise ValueError("frame of %d bytes is over our limit" % length)
    return Reader(recv_exact(sock, length))


def hello(sends, receives):
    return (varint(HELLO) + MAGIC + varint(PROTOCOL_VERSION) + varint(sends)
            + varint(receives) + varint(MAX_FRAME)
            + b"\x00"   # lenient: false
            + b"\x00")  # auth: None


def request_sum(request_id, numbers, timeout_ms=10_000):
    header = varint(REQUEST) + varint(request_id) + varint(timeout_ms)
    # SumApi::Sum(Vec<i64>): variant index 0, then the Vec: length, elements.
    payload = varint(0) + varint(len(numbers)) + b"".join(zigzag(n) for n in numbers)
    return header + payload


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: sum_client.py SOCKET_PATH")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(sys.argv[1])

    # Handshake: this client sends and receives SumApi.
    ours = schema_id(SUM_API_SCHEMA)
    send_frame(sock, hello(ours, ours))
    reply = recv_frame(sock)
    kind = reply.varint()
    if kind == REJECT:
        index = reply.varint()
        name = REJECT_REASONS[index] if index < len(REJECT_REASONS) else index
        sys.exit("the server rejected the handshake: %s" % name)
    if kind != WELCOME:
        sys.exit("expected Welcome, got frame kind %d" % kind)
    reply.varint()  # the connection's id
    server_max_frame = reply.varint()

    # One request, id 1.
    body = request_sum(1, [1, 2, 3, 4, 5, 6])
    if len(body) > server_max_frame:
        sys.exit("the request is over the server's frame limit")
    send_frame(sock, body)
    while True:
        frame = recv_frame(sock)
        kind = frame.varint()
        if kind == PING:
            send_frame(sock, varint(PONG))
            continue
        if kind in (RESPONSE, FAILURE) and frame.varint() == 1:
            break
        if kind == CLOSE:
            sys.exit("the server closed the connection")
    if kind == FAILURE:
        index = frame.varint()
        name = REMOTE_ERRORS[index] if index < len(REMOTE_ERRORS) else index
        sys.exit("the request failed: %s" % name)
    total = frame.zigzag()  # the payload: the i64 reply

    # An orderly close: Close(Normal), then wait for the server to hang up.
    send_frame(sock, varint(CLOSE) + varint(0))
    sock.shutdown(socket.SHUT_WR)
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
    sock.close()
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
