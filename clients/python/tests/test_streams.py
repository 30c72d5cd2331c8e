"""Consuming streams: against the Rust `stream_producer` test binary
(tests/src/bin/stream_producer.rs, serving the `Feed` enum of
tests/src/feed.rs, whose schema JSON is feed.json here), and against a
hand-driven peer for what a well-behaved Rust server never does (items
beyond the credit) and for the exact frames this side sends (Credit,
Cancel)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import unittest
from collections.abc import AsyncIterator
from pathlib import Path

import netsock
from netsock.frames import STREAM_WINDOW_BYTES, STREAM_WINDOW_ITEMS, Header, decode_body, encode_frame

from support import HERE, REPO, AsyncTest, RawPeer

FEED = HERE / "feed.json"

_producer_bin: str | None = None


def producer_bin() -> str:
    """The Rust `stream_producer`: $NETSOCK_STREAM_PRODUCER_BIN, next to
    $NETSOCK_INTEROP_BIN's target directory, or built with cargo. Skips
    the test when none is available."""
    global _producer_bin
    if _producer_bin is not None:
        return _producer_bin
    env = os.environ.get("NETSOCK_STREAM_PRODUCER_BIN")
    if env:
        _producer_bin = env
        return env
    interop = os.environ.get("NETSOCK_INTEROP_BIN")
    if interop:  # <target>/debug/examples/interop -> <target>/debug/stream_producer
        candidate = Path(interop).resolve().parent.parent / "stream_producer"
        if candidate.exists():
            _producer_bin = str(candidate)
            return _producer_bin
    cargo = shutil.which("cargo")
    if cargo is None:
        raise unittest.SkipTest("no stream_producer binary and no cargo to build it")
    subprocess.run([cargo, "build", "-q", "-p", "tests", "--bin", "stream_producer"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    _producer_bin = str(target / "debug" / "stream_producer")
    return _producer_bin


@contextlib.asynccontextmanager
async def producer(transport: str, path: str | None = None) -> AsyncIterator[str]:
    """`stream_producer tcp|unix [PATH]` until the block ends; yields its address."""
    args = [transport] + ([path] if path else [])
    proc = await asyncio.create_subprocess_exec(
        producer_bin(), *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        if not line:
            raise AssertionError("stream_producer did not start")
        yield line if "://" in line or line.startswith("/") else f"tcp://{line}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class StreamsFromRust(AsyncTest):
    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.feed = netsock.Schema.load(FEED)

    @contextlib.asynccontextmanager
    async def client(self, transport: str = "tcp") -> AsyncIterator[netsock.ClientSocket]:
        path = self.unix_addr("feed.sock") if transport == "unix" else None
        async with producer(transport, path) as addr:
            sock = await netsock.connect(addr, self.feed)
            try:
                yield sock
            finally:
                await sock.close()

    async def test_items_come_in_order_then_the_end(self) -> None:
        for transport in ("tcp", "unix"):
            with self.subTest(transport):
                async with self.client(transport) as sock:
                    stream = await sock.request_stream("Count", 5)
                    self.assertEqual([x async for x in stream], [0, 1, 2, 3, 4])
                    self.assertTrue(stream.done)
                    # Ended: iterating again yields nothing.
                    self.assertEqual([x async for x in stream], [])
                    empty = await sock.request_stream("Count", 0)
                    self.assertEqual([x async for x in empty], [])
                    self.assertEqual(await sock.request("Sum", [1, 2, 3]), 6)

    async def test_a_long_stream_completes_on_the_credit_granted(self) -> None:
        # 10,000 items is ten windows: the server stops at each until the
        # reader grants more.
        async with self.client() as sock:
            stream = await sock.request_stream("Count", 10_000)
            n = 0
            async for item in stream:
                self.assertEqual(item, n)
                n += 1
            self.assertEqual(n, 10_000)

    async def test_large_items_complete_on_byte_credit(self) -> None:
        # 300 items of 4 KiB: over four times the byte window.
        async with self.client("unix") as sock:
            stream = await sock.request_stream("Blobs", n=300, size=4096)
            items = [x async for x in stream]
            self.assertEqual(len(items), 300)
            self.assertTrue(all(len(x) == 4096 for x in items))
            self.assertTrue(items[7].startswith("7x"))

    async def test_several_streams_at_once(self) -> None:
        async with self.client() as sock:
            a = await sock.request_stream("Count", 3000)
            b = await sock.request_stream("Count", 2000)
            got_a, got_b = await asyncio.gather(_collect(a), _collect(b))
            self.assertEqual(got_a, list(range(3000)))
            self.assertEqual(got_b, list(range(2000)))

    async def test_a_handler_error_ends_the_stream_after_its_items(self) -> None:
        async with self.client() as sock:
            stream = await sock.request_stream("FailAfter", 3)
            got = []
            with self.assertRaises(netsock.HandlerFailed) as caught:
                async for item in stream:
                    got.append(item)
            self.assertEqual(got, [0, 1, 2])
            self.assertEqual(caught.exception.message, "boom")
            self.assertEqual(caught.exception.kind, "HandlerFailed")
            self.assertIsInstance(caught.exception, netsock.CallError)
            # Raised once; then the stream is over.
            self.assertEqual([x async for x in stream], [])
            self.assertEqual(await sock.request("Sum", [2]), 2)

    async def test_closing_early_cancels_and_the_connection_goes_on(self) -> None:
        async with self.client() as sock:
            stream = await sock.request_stream("Endless")
            async with stream:
                async for item in stream:
                    if item == 4:
                        break
            self.assertTrue(stream.done)
            self.assertEqual([x async for x in stream], [])
            # The server stopped producing: the connection serves on.
            again = await sock.request_stream("Count", 3)
            self.assertEqual([x async for x in again], [0, 1, 2])
            self.assertEqual(await sock.request("Sum", [40, 2]), 42)

    async def test_the_timeout_bounds_the_first_item(self) -> None:
        async with self.client() as sock:
            stream = await sock.timeout(0.3).request_stream("Silent")
            start = asyncio.get_running_loop().time()
            with self.assertRaises(netsock.Timeout):
                await stream.next()
            self.assertLess(asyncio.get_running_loop().time() - start, 5)
            self.assertEqual([x async for x in stream], [])
            # Items after the first may take longer than the timeout.
            slow = await sock.timeout(0.3).request_stream("StallAfter", 2)
            self.assertEqual(await slow.next(), 0)
            self.assertEqual(await slow.next(), 1)
            with self.assertRaises(TimeoutError):
                async with asyncio.timeout(0.6):
                    await slow.next()
            await slow.aclose()
            self.assertEqual(await sock.request("Sum", [1]), 1)

    async def test_request_and_request_stream_refuse_the_other_kind(self) -> None:
        async with self.client() as sock:
            with self.assertRaisesRegex(netsock.ValidationError, "request_stream"):
                await sock.request("Count", 3)
            with self.assertRaisesRegex(netsock.ValidationError, "not a stream"):
                await sock.request_stream("Sum", [1])
            with self.assertRaisesRegex(netsock.ValidationError, "not a stream"):
                await sock.request_stream("Note", 1)
            with self.assertRaises(netsock.ValidationError):
                sock.on("Count", lambda n: n)
            self.assertEqual(await sock.request("Sum", [5]), 5)


async def _collect(stream: netsock.ItemStream) -> list[object]:
    return [x async for x in stream]


# --- a hand-driven server ------------------------------------------------------------


class HandServer:
    """Accepts one client, answers its Hello, then is driven by the test."""

    def __init__(self) -> None:
        self.peer: asyncio.Future[RawPeer] = asyncio.get_running_loop().create_future()

    async def start(self, schema: netsock.Schema) -> str:
        async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            peer = RawPeer(r, w)
            hello, _ = await peer.recv()
            assert hello.kind == "Hello" and hello.sends == schema.id
            peer.send(Header("Welcome", id=1, max_frame=1 << 20))
            self.peer.set_result(peer)

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"tcp://{host}:{port}"

    def close(self) -> None:
        self.server.close()


def item_frame(rid: int, value: int) -> tuple[bytes, int]:
    """A StreamItem of a u64, and its body's length (what it costs in credit)."""
    payload = bytearray()
    netsock.postcard.write_varint(payload, value)
    frame = encode_frame(Header("StreamItem", id=rid), bytes(payload))
    return frame, len(frame) - 4


class StreamsFromAHandPeer(AsyncTest):
    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.feed = netsock.Schema.load(FEED)
        self.hand = HandServer()
        addr = await self.hand.start(self.feed)
        self.sock = await netsock.connect(addr, self.feed, heartbeat=None, reconnect=None)
        self.peer = await self.hand.peer

    async def asyncTearDown(self) -> None:
        self.peer.close()
        await self.sock.close()
        self.hand.close()
        await super().asyncTearDown()

    async def open(self, name: str, *args: object) -> tuple[netsock.ItemStream, int]:
        """Asks for a stream; the peer accepts it with an empty Response."""
        opening = asyncio.ensure_future(self.sock.request_stream(name, *args))
        request, payload = await self.peer.recv_kind("Request")
        variant, values = self.feed.decode(payload)
        self.assertEqual((variant.name, values), (name, list(args)))
        self.peer.send(Header("Response", id=request.id))
        return await opening, request.id

    async def test_credit_is_granted_as_items_are_read(self) -> None:
        stream, rid = await self.open("Count", 2000)
        sizes = []
        for i in range(STREAM_WINDOW_ITEMS):  # the whole window, at once
            frame, size = item_frame(rid, i)
            self.peer.send_raw(frame)
            sizes.append(size)
        for i in range(STREAM_WINDOW_ITEMS // 2 - 1):
            self.assertEqual(await stream.next(), i)
        with self.assertRaises(TimeoutError):  # nothing granted yet
            await self.peer.recv_kind("Credit", timeout=0.2)
        self.assertEqual(await stream.next(), STREAM_WINDOW_ITEMS // 2 - 1)
        credit, _ = await self.peer.recv_kind("Credit")
        self.assertEqual(credit.id, rid)
        self.assertEqual(credit.items, STREAM_WINDOW_ITEMS // 2)
        self.assertEqual(credit.bytes, sum(sizes[: STREAM_WINDOW_ITEMS // 2]))
        # Within the new credit: more items are taken.
        for i in range(STREAM_WINDOW_ITEMS, STREAM_WINDOW_ITEMS + 10):
            self.peer.send_raw(item_frame(rid, i)[0])
        self.peer.send(Header("StreamEnd", id=rid, error=None))
        rest = [x async for x in stream]
        self.assertEqual(rest, list(range(STREAM_WINDOW_ITEMS // 2, STREAM_WINDOW_ITEMS + 10)))

    async def test_byte_credit_is_granted_at_half_the_byte_window(self) -> None:
        stream, rid = await self.open("Blobs", 10, 8)  # fields don't matter: the peer sends what it likes
        payload = bytearray()
        text = "y" * 40_000
        netsock.postcard.write_str(payload, text)
        frame = encode_frame(Header("StreamItem", id=rid), bytes(payload))
        size = len(frame) - 4
        for _ in range(4):
            self.peer.send_raw(frame)
        for _ in range(3):
            self.assertEqual(await stream.next(), text)
        with self.assertRaises(TimeoutError):
            await self.peer.recv_kind("Credit", timeout=0.2)
        self.assertEqual(await stream.next(), text)  # 4 x 40 KB >= 128 KiB
        credit, _ = await self.peer.recv_kind("Credit")
        self.assertEqual((credit.id, credit.items, credit.bytes), (rid, 4, 4 * size))
        self.assertGreaterEqual(4 * size, STREAM_WINDOW_BYTES // 2)
        await stream.aclose()

    async def test_cancel_sends_cancel_and_later_frames_are_ignored(self) -> None:
        stream, rid = await self.open("Endless")
        self.peer.send_raw(item_frame(rid, 0)[0])
        self.assertEqual(await stream.next(), 0)
        await stream.aclose()
        cancel, _ = await self.peer.recv_kind("Cancel")
        self.assertEqual(cancel.id, rid)
        # What was in flight is ignored.
        self.peer.send_raw(item_frame(rid, 1)[0])
        self.peer.send(Header("StreamEnd", id=rid, error=None))
        self.assertEqual([x async for x in stream], [])
        self.assertTrue(self.sock.connected)

    async def test_the_first_item_timeout_sends_cancel(self) -> None:
        opening = asyncio.ensure_future(self.sock.timeout(0.2).request_stream("Silent"))
        request, _ = await self.peer.recv_kind("Request")
        self.assertEqual(request.timeout_ms, 200)
        self.peer.send(Header("Response", id=request.id))
        stream = await opening
        with self.assertRaises(netsock.Timeout):
            await stream.next()
        cancel, _ = await self.peer.recv_kind("Cancel")
        self.assertEqual(cancel.id, request.id)

    async def test_no_acceptance_within_the_timeout_sends_cancel(self) -> None:
        opening = asyncio.ensure_future(self.sock.timeout(0.2).request_stream("Count", 1))
        request, _ = await self.peer.recv_kind("Request")
        with self.assertRaises(netsock.Timeout):
            await opening
        cancel, _ = await self.peer.recv_kind("Cancel")
        self.assertEqual(cancel.id, request.id)

    async def test_a_refusal_raises_its_error(self) -> None:
        opening = asyncio.ensure_future(self.sock.request_stream("Count", 1))
        request, _ = await self.peer.recv_kind("Request")
        self.peer.send(Header("Failure", id=request.id, error=netsock.RemoteError("NoHandler", event="Count")))
        with self.assertRaises(netsock.NoHandler):
            await opening
        # Items for it are ignored.
        self.peer.send_raw(item_frame(request.id, 0)[0])
        self.peer.send(Header("StreamEnd", id=request.id, error=None))
        self.assertTrue(self.sock.connected)

    async def test_every_end_error_is_typed(self) -> None:
        errors = {
            "HandlerFailed": (netsock.RemoteError("HandlerFailed", message="m"), netsock.HandlerFailed),
            "HandlerPanicked": (netsock.RemoteError("HandlerPanicked", message="p"), netsock.HandlerPanicked),
            "ResponseTooLarge": (netsock.RemoteError("ResponseTooLarge", size=9, max=8), netsock.ResponseTooLarge),
            "StreamProtocol": (netsock.RemoteError("StreamProtocol", message="x"), netsock.StreamProtocol),
        }
        for name, (remote, cls) in errors.items():
            with self.subTest(name):
                stream, rid = await self.open("Count", 1)
                self.peer.send_raw(item_frame(rid, 7)[0])
                self.peer.send(Header("StreamEnd", id=rid, error=remote))
                self.assertEqual(await stream.next(), 7)
                with self.assertRaises(cls) as caught:
                    await stream.next()
                self.assertEqual(caught.exception.kind, name)

    async def test_an_item_beyond_the_credit_ends_the_stream(self) -> None:
        stream, rid = await self.open("Count", 5000)
        for i in range(STREAM_WINDOW_ITEMS + 1):  # one more than granted
            self.peer.send_raw(item_frame(rid, i)[0])
        cancel, _ = await self.peer.recv_kind("Cancel")
        self.assertEqual(cancel.id, rid)
        got = []
        with self.assertRaises(netsock.StreamProtocol):
            async for item in stream:
                got.append(item)
        self.assertEqual(got, list(range(STREAM_WINDOW_ITEMS)))
        self.assertTrue(self.sock.connected)

    async def test_a_disconnect_ends_the_stream(self) -> None:
        stream, rid = await self.open("Endless")
        self.peer.send_raw(item_frame(rid, 0)[0])
        await asyncio.sleep(0.05)
        self.peer.writer.transport.abort()
        self.assertEqual(await stream.next(), 0)
        with self.assertRaises(netsock.Disconnected):
            await stream.next()

    async def test_the_python_side_refuses_to_serve_a_stream(self) -> None:
        self.peer.send(Header("Request", id=9, timeout_ms=0), self.feed.encode("Count", 3)[1])
        failure, _ = await self.peer.recv_kind("Failure")
        self.assertEqual((failure.id, failure.error.kind), (9, "NoHandler"))


class StreamFrames(unittest.TestCase):
    def test_stream_frames_round_trip(self) -> None:
        for header in (
            Header("StreamItem", id=1),
            Header("StreamEnd", id=2, error=None),
            Header("StreamEnd", id=3, error=netsock.RemoteError("StreamProtocol", message="x")),
            Header("Credit", id=1, items=32, bytes=131072),
            Header("Ack", received=5),
            Header("Volatile"),
        ):
            with self.subTest(header.kind):
                decoded, _ = decode_body(encode_frame(header)[4:])
                self.assertEqual(decoded, header)

    def test_schema_variants_know_their_stream(self) -> None:
        feed = netsock.Schema.load(FEED)
        count = feed.variant("Count")
        self.assertTrue(count.request)
        self.assertIsNone(count.response)
        self.assertEqual(count.decode_item(b"\x2a"), 42)
        self.assertIsNone(feed.variant("Sum").stream)
        self.assertIn("=>", repr(count))

    def test_a_bad_stream_entry_is_refused(self) -> None:
        import json

        doc = json.loads(FEED.read_text())
        doc["variants"][0]["response"] = {"type": "u64"}
        with self.assertRaises(netsock.SchemaError):
            netsock.Schema.from_json(doc)
        doc = json.loads(FEED.read_text())
        doc["variants"][0]["request"] = False
        with self.assertRaises(netsock.SchemaError):
            netsock.Schema.from_json(doc)
