"""What the tests share: the fixture schema, the Rust interop binary, a raw
peer that writes and reads frames by hand, and a bound on every test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import netsock
from netsock.frames import MAGIC, Header, decode_body, encode_frame

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
FIXTURE = HERE / "interop.json"
WIRE_VECTORS = REPO / "book" / "src" / "wire-vectors.txt"

# Every test finishes well within this, or fails (never hangs CI).
TEST_BOUND = 60.0


def interop_schema() -> netsock.Schema:
    """The Interop enum of examples/interop.rs."""
    return netsock.Schema.load(FIXTURE)


def schema_with(text_change: str, **variant_changes: Any) -> netsock.Schema:
    """The fixture with another schema text (and so another id)."""
    import json

    doc = json.loads(FIXTURE.read_text())
    doc["schema_text"] = text_change
    doc["schema_id"] = f"{netsock.schema_id(text_change):016x}"
    return netsock.Schema.from_json(doc)


def sample_shape() -> dict[str, Any]:
    """The `Shape` examples/interop.rs sends: every field set, extremes included."""
    return {
        "small": 255,
        "signed": -32768,
        "big": 2**64 - 1,
        "huge": -(2**127),
        "ratio": -1.5e300,
        "single": 3.25,
        "flag": True,
        "letter": "é",
        "label": "grüße 🌍",
        "bytes": [0, 1, 127, 128, 255],
        "counts": {"a": 1, "b": 300},
        "pair": (-128, 2**128 - 1),
        "kind": {"Named": {"z": "z"}},
        "kinds": ["Plain", {"Wrapped": 7}, {"Pair": (-1, "p")}],
        "nothing": None,
    }


_interop_bin: str | None = None


def interop_bin() -> str:
    """The Rust interop example: $NETSOCK_INTEROP_BIN, or built with cargo
    (into $CARGO_TARGET_DIR or ./target). Skips the test when neither is
    available."""
    global _interop_bin
    if _interop_bin is not None:
        return _interop_bin
    env = os.environ.get("NETSOCK_INTEROP_BIN")
    if env:
        _interop_bin = env
        return env
    cargo = shutil.which("cargo")
    if cargo is None:
        raise unittest.SkipTest("no NETSOCK_INTEROP_BIN and no cargo to build the interop example")
    subprocess.run(
        [cargo, "build", "-q", "-p", "examples", "--example", "interop"], cwd=REPO, check=True
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    _interop_bin = str(target / "debug" / "examples" / "interop")
    return _interop_bin


@contextlib.asynccontextmanager
async def rust_server(addr: str) -> AsyncIterator[str]:
    """`interop serve ADDR`, until the block ends; yields the address it
    listens on."""
    proc = await asyncio.create_subprocess_exec(
        interop_bin(), "serve", addr, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        if not line.startswith("listening on "):
            raise AssertionError(f"the interop server did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def rust_call(addr: str) -> tuple[int, str]:
    """`interop call ADDR`: its exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        interop_bin(), "call", addr, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


class TempDir:
    """A temporary directory for Unix sockets (short paths: the limit is ~100 bytes)."""

    def __enter__(self) -> str:
        self.path = tempfile.mkdtemp(prefix="ns-py-")
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class RawPeer:
    """A hand-driven peer: writes any bytes, reads frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, addr: str) -> RawPeer:
        parsed = netsock.addr.parse(addr)
        if parsed.kind == "unix":
            r, w = await asyncio.open_unix_connection(parsed.path)
        else:
            r, w = await asyncio.open_connection(parsed.host, parsed.port)
        return cls(r, w)

    async def handshake(self, schema: netsock.Schema, max_frame: int = 1 << 20) -> Header:
        """Sends a Hello for `schema`; returns the answer (Welcome or Reject)."""
        self.send(
            Header(
                "Hello",
                magic=MAGIC,
                version=1,
                sends=schema.id,
                receives=schema.id,
                max_frame=max_frame,
                lenient=False,
                auth=None,
            )
        )
        header, _ = await self.recv()
        return header

    def send(self, header: Header, payload: bytes = b"") -> None:
        self.writer.write(encode_frame(header, payload))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send_body(self, body: bytes) -> None:
        self.writer.write(struct.pack(">I", len(body)) + body)

    async def recv(self, timeout: float = 10) -> tuple[Header, bytes]:
        async with asyncio.timeout(timeout):
            n = int.from_bytes(await self.reader.readexactly(4), "big")
            return decode_body(await self.reader.readexactly(n))

    async def recv_kind(self, kind: str, timeout: float = 10) -> tuple[Header, bytes]:
        """The next frame of this kind, answering Pings on the way."""
        while True:
            header, payload = await self.recv(timeout)
            if header.kind == kind:
                return header, payload
            if header.kind == "Ping":
                self.send(Header("Pong"))

    async def at_eof(self, timeout: float = 10) -> bool:
        """Whether the peer closes the connection (after any frames)."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    chunk = await self.reader.read(65536)
                except ConnectionError:
                    return True
                if not chunk:
                    return True

    def close(self) -> None:
        self.writer.close()


class AsyncTest(unittest.IsolatedAsyncioTestCase):
    """Each test bounded in time, with a server on both transports at hand."""

    async def asyncSetUp(self) -> None:
        # unittest runs the loop in debug mode: keep its checks, not its
        # notes on callbacks slower than 0.1 s (a loaded CI machine has many).
        asyncio.get_running_loop().slow_callback_duration = 2.0
        self._dir = TempDir()
        self.dir = self._dir.__enter__()
        self.schema = interop_schema()

    async def asyncTearDown(self) -> None:
        self._dir.__exit__()

    def unix_addr(self, name: str = "s.sock") -> str:
        return os.path.join(self.dir, name)

    def _callTestMethod(self, method: Any) -> None:
        # IsolatedAsyncioTestCase's own hook (3.11 to 3.13); without it, unbounded.
        if not hasattr(self, "_callAsync"):
            return super()._callTestMethod(method)  # type: ignore[misc]

        async def bounded() -> None:
            async with asyncio.timeout(TEST_BOUND):
                await method()

        self._callAsync(bounded)


def interop_handlers(socket: netsock.Socket) -> None:
    """What `interop serve` does, in Python: the server's handlers."""
    socket.on("Sum", lambda numbers: sum(numbers))
    socket.on("Greet", lambda name: f"hello, {name}")
    socket.on("Mirror", lambda shape: shape)

    async def slow(ms: int) -> None:
        await asyncio.sleep(ms / 1000)

    socket.on("Slow", slow)

    async def note(text: str) -> None:
        await socket.emit("Note", f"echo: {text}")

    socket.on("Note", note)

    async def point(x: int, y: int) -> None:
        try:
            note = f"sum from client: {await socket.request('Sum', [x, y])}"
        except netsock.CallError as e:
            note = f"the client's Sum failed: {e}"
        await socket.emit("Note", note)

    socket.on("Point", point)
