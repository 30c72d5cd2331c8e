"""This package's client against its own server (and against raw peers
that write frames by hand), over TCP and Unix sockets: events, requests
both ways, timeouts and cancellation, errors, limits, garbage, heartbeat,
reconnecting."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import netsock
from netsock.frames import MAGIC, Header, encode_frame

from support import AsyncTest, RawPeer, interop_handlers, sample_shape, schema_with

logging.getLogger("netsock").setLevel(logging.ERROR)


class Base(AsyncTest):
    async def serve(self, addr: str | None = None, setup: Any = interop_handlers, **options: Any) -> netsock.Server:
        server = await netsock.Server.bind(addr or self.unix_addr(), self.schema, **options)
        if setup is not None:
            server.on_connection(setup)
        self.addAsyncCleanup(server.close)
        return server

    async def client(self, server: netsock.Server | str, **options: Any) -> netsock.ClientSocket:
        addr = server if isinstance(server, str) else server.local_addr
        socket = await netsock.connect(addr, self.schema, **options)
        self.addAsyncCleanup(socket.close)
        return socket


class EventsAndRequests(Base):
    async def both_ways(self, addr: str) -> None:
        server = await self.serve(addr)
        socket = await self.client(server)
        socket.on("Sum", lambda numbers: sum(numbers))
        events = socket.events()
        await socket.emit("Note", "hi")
        self.assertEqual(await events.next(timeout=10), ("Note", "echo: hi"))
        await socket.emit("Point", 2, 40)
        self.assertEqual(await events.next(timeout=10), ("Note", "sum from client: 42"))
        self.assertEqual(await socket.request("Sum", [1, 2, 3]), 6)
        self.assertEqual(await socket.request("Greet", name="ada"), "hello, ada")
        self.assertEqual(await socket.request("Mirror", sample_shape()), sample_shape())
        self.assertIsNone(await socket.request("Slow", ms=0))
        with self.assertRaises(netsock.NoHandler):
            await socket.request("Fail")
        self.assertEqual(len(server.sockets()), 1)
        self.assertEqual(server.sockets()[0].id, socket.id)

    async def test_tcp(self) -> None:
        await self.both_ways("tcp://127.0.0.1:0")

    async def test_unix(self) -> None:
        await self.both_ways(self.unix_addr())

    async def test_many_requests_at_once_get_their_own_replies(self) -> None:
        server = await self.serve()
        socket = await self.client(server)
        replies = await asyncio.gather(*(socket.request("Sum", [i, i]) for i in range(300)))
        self.assertEqual(replies, [2 * i for i in range(300)])

    async def test_handlers_as_decorators_and_once(self) -> None:
        got: list[str] = []

        def setup(socket: netsock.Socket) -> None:
            @socket.on("Note")
            async def note(text: str) -> None:
                got.append(text)
                await socket.emit("Note", text.upper())

        server = await self.serve(setup=setup)
        socket = await self.client(server)
        waiting = socket.once("Note", timeout=10)
        await socket.emit("Note", "quiet")
        self.assertEqual(await waiting, "QUIET")
        self.assertEqual(got, ["quiet"])

    async def test_server_emit_reaches_every_socket(self) -> None:
        server = await self.serve(setup=None)
        a, b = await self.client(server), await self.client(server)
        ea, eb = a.events(), b.events()
        self.assertEqual(await server.emit("Note", "all"), 2)
        self.assertEqual(await ea.next(timeout=10), ("Note", "all"))
        self.assertEqual(await eb.next(timeout=10), ("Note", "all"))
        self.assertNotEqual(a.id, b.id)

    async def test_deadline_is_seen_by_the_handler(self) -> None:
        seen: list[float | None] = []

        def setup(socket: netsock.Socket) -> None:
            def greet(name: str) -> str:
                seen.append(netsock.deadline())
                return name

            socket.on("Greet", greet)

        server = await self.serve(setup=setup)
        socket = await self.client(server)
        await socket.timeout(5).request("Greet", name="x")
        await socket.timeout(None).request("Greet", name="y")
        self.assertIsNotNone(seen[0])
        self.assertIsNone(seen[1])


class TimeoutsAndCancellation(Base):
    async def slow_server(self) -> tuple[netsock.Server, asyncio.Queue[str]]:
        what: asyncio.Queue[str] = asyncio.Queue()

        def setup(socket: netsock.Socket) -> None:
            async def slow(ms: int) -> None:
                what.put_nowait("started")
                try:
                    await asyncio.sleep(ms / 1000)
                except asyncio.CancelledError:
                    what.put_nowait("cancelled")
                    raise

            socket.on("Slow", slow)

        return await self.serve(setup=setup), what

    async def test_a_timeout_cancels_the_handler(self) -> None:
        server, what = await self.slow_server()
        socket = await self.client(server)
        with self.assertRaises(netsock.Timeout) as caught:
            await socket.timeout(0.05).request("Slow", ms=60000)
        self.assertIn("no reply within 0.05 s", str(caught.exception))
        self.assertIsInstance(caught.exception, TimeoutError)
        self.assertEqual(await asyncio.wait_for(what.get(), 10), "started")
        self.assertEqual(await asyncio.wait_for(what.get(), 10), "cancelled")

    async def test_cancelling_the_caller_cancels_the_handler(self) -> None:
        server, what = await self.slow_server()
        socket = await self.client(server)
        call = asyncio.ensure_future(socket.timeout(None).request("Slow", ms=60000))
        self.assertEqual(await asyncio.wait_for(what.get(), 10), "started")
        call.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await call
        self.assertEqual(await asyncio.wait_for(what.get(), 10), "cancelled")

    async def test_a_closing_connection_fails_the_calls_waiting(self) -> None:
        server, what = await self.slow_server()
        socket = await self.client(server, reconnect=False)
        call = asyncio.ensure_future(socket.request("Slow", ms=60000))
        self.assertEqual(await asyncio.wait_for(what.get(), 10), "started")
        await server.close()
        with self.assertRaises(netsock.Disconnected) as caught:
            await call
        self.assertEqual(caught.exception.reason.kind, "ClosedByPeer")
        self.assertEqual(caught.exception.reason.close.kind, "Shutdown")
        with self.assertRaises(netsock.Disconnected):
            await socket.request("Sum", [1])


class Bounds(Base):
    """What a peer sends faster than this side handles waits unread; none of it is lost."""

    async def test_events_wait_for_a_slow_connection_handler(self) -> None:
        gate = asyncio.Event()
        got: list[str] = []

        async def setup(socket: netsock.Socket) -> None:
            socket.on("Note", got.append)
            await gate.wait()

        server = await self.serve(setup=setup, max_concurrent_requests=2)
        socket = await self.client(server)
        for i in range(5):
            await socket.emit("Note", str(i))
        reply = asyncio.ensure_future(socket.request("Greet", name="late"))
        gate.set()
        with self.assertRaises(netsock.NoHandler):
            await reply
        self.assertEqual(got, ["0", "1", "2", "3", "4"])

    async def test_handshakes_beyond_the_bound_wait_their_turn(self) -> None:
        server = await self.serve(max_handshakes=1)
        silent = await RawPeer.open(server.local_addr)  # holds the only slot...
        clients = asyncio.gather(*(netsock.connect(server.local_addr, self.schema) for _ in range(5)))
        header = await silent.handshake(self.schema)  # ...until it speaks
        self.assertEqual(header.kind, "Welcome")
        sockets = await clients
        self.assertEqual(sorted(s.id for s in sockets), [2, 3, 4, 5, 6])
        self.assertEqual(header.id, 1)
        for s in sockets:
            await s.close()
        silent.close()

    async def test_at_most_so_many_event_handlers_run_at_once(self) -> None:
        gate = asyncio.Event()
        started: asyncio.Queue[str] = asyncio.Queue()
        running = 0
        most = 0
        done: list[str] = []

        def setup(socket: netsock.Socket) -> None:
            async def note(text: str) -> None:
                nonlocal running, most
                running += 1
                most = max(most, running)
                started.put_nowait(text)
                await gate.wait()
                running -= 1
                done.append(text)
                if len(done) == 5:
                    await socket.emit("Note", "all done")

            socket.on("Note", note)

        server = await self.serve(setup=setup, max_concurrent_events=2)
        socket = await self.client(server)
        events = socket.events()
        for i in range(5):
            await socket.emit("Note", str(i))
        self.assertEqual([await asyncio.wait_for(started.get(), 10) for _ in range(2)], ["0", "1"])
        gate.set()
        self.assertEqual(await events.next(timeout=10), ("Note", "all done"))
        self.assertEqual(sorted(done), ["0", "1", "2", "3", "4"])
        self.assertLessEqual(most, 2)


class RemoteErrors(Base):
    async def test_each_failure_has_its_error(self) -> None:
        def setup(socket: netsock.Socket) -> None:
            def boom(numbers: list[int]) -> int:
                raise ValueError("boom")

            socket.on("Sum", boom)
            socket.on("Greet", lambda name: 42)  # not a String
            socket.on("Mirror", lambda shape: {**shape, "label": "x" * 5000})

        server = await self.serve(setup=setup)
        socket = await self.client(server, max_frame=1024)
        with self.assertRaises(netsock.HandlerPanicked) as panicked:
            await socket.request("Sum", [1])
        self.assertEqual(panicked.exception.message, "ValueError: boom")
        with self.assertRaises(netsock.EncodeFailed) as encode:
            await socket.request("Greet", name="x")
        self.assertIn("Greet reply: expected String, got int 42", str(encode.exception))
        self.assertEqual(encode.exception.kind, "Encode")
        with self.assertRaises(netsock.ResponseTooLarge) as large:
            await socket.request("Mirror", sample_shape())
        self.assertEqual(large.exception.max, 1024)
        self.assertGreater(large.exception.size, 5000)
        with self.assertRaises(netsock.NoHandler):
            await socket.request("Slow", ms=1)
        # The connection is fine after all of them.
        self.assertTrue(socket.connected)

    async def test_raw_requests_get_not_a_request_and_bad_request(self) -> None:
        server = await self.serve()
        raw = await RawPeer.open(server.local_addr)
        self.assertEqual((await raw.handshake(self.schema)).kind, "Welcome")
        raw.send(Header("Request", id=1, timeout_ms=0), self.schema.encode("Note", "x")[1])
        header, _ = await raw.recv_kind("Failure")
        self.assertEqual((header.id, header.error), (1, netsock.RemoteError("NotARequest", event="Note")))
        raw.send(Header("Request", id=2, timeout_ms=0), b"\x02\x09")
        header, _ = await raw.recv_kind("Failure")
        self.assertEqual((header.id, header.error.kind), (2, "BadRequest"))
        self.assertIn("runs past the end", header.error.message)
        raw.send(Header("Request", id=3, timeout_ms=0), b"\x02\x01\x02")
        header, payload = await raw.recv_kind("Response")
        self.assertEqual((header.id, payload), (3, b"\x02"))
        raw.close()


class FrameLimits(Base):
    async def test_an_event_over_the_peers_limit_is_not_sent(self) -> None:
        server = await self.serve(max_frame=1024)
        socket = await self.client(server)
        self.assertEqual(socket.peer_max_frame, 1024)
        with self.assertRaises(netsock.FrameTooLarge) as caught:
            await socket.emit("Note", "x" * 2000)
        self.assertEqual(caught.exception.max, 1024)
        with self.assertRaises(netsock.FrameTooLarge):
            await socket.request("Greet", name="x" * 2000)
        self.assertEqual(await socket.request("Greet", name="fits"), "hello, fits")

    async def test_a_peer_sending_an_oversized_frame_is_closed(self) -> None:
        closed: asyncio.Queue[netsock.DisconnectReason] = asyncio.Queue()

        def setup(socket: netsock.Socket) -> None:
            socket.on_disconnect(closed.put_nowait)

        server = await self.serve(setup=setup, max_frame=2048)
        raw = await RawPeer.open(server.local_addr)
        await raw.handshake(self.schema)
        raw.send_raw((1 << 30).to_bytes(4, "big"))  # 1 GiB announced, never sent
        header, _ = await raw.recv_kind("Close")
        self.assertEqual(header.reason, netsock.CloseReason("FrameTooLarge", size=1 << 30, max=2048))
        self.assertTrue(await raw.at_eof())
        reason = await asyncio.wait_for(closed.get(), 10)
        self.assertEqual((reason.kind, reason.size, reason.max), ("FrameTooLarge", 1 << 30, 2048))
        raw.close()

    async def test_long_error_texts_are_shortened_to_fit(self) -> None:
        def setup(socket: netsock.Socket) -> None:
            def boom(numbers: list[int]) -> int:
                raise RuntimeError("é" * 3000)

            socket.on("Sum", boom)

        server = await self.serve(setup=setup)
        socket = await self.client(server, max_frame=1024)
        with self.assertRaises(netsock.HandlerPanicked) as caught:
            await socket.request("Sum", [1])
        self.assertTrue(caught.exception.message.endswith("…"))
        self.assertLess(len(caught.exception.message.encode()), 1024)


class Garbage(Base):
    """What a peer sends never crashes this side: its connection alone
    fails, with a clear reason, and the server serves on."""

    async def assert_still_serving(self, server: netsock.Server) -> None:
        socket = await self.client(server)
        self.assertEqual(await socket.request("Sum", [1, 2]), 3)

    async def test_strangers_are_rejected_before_the_handshake(self) -> None:
        server = await self.serve()
        for junk in (b"GET / HTTP/1.1\r\n\r\n", b"\x00\x00\x00\x02\x05\x01", b"\xff\xff\xff\xff"):
            with self.subTest(junk=junk):
                raw = await RawPeer.open(server.local_addr)
                raw.send_raw(junk)
                header, _ = await raw.recv()
                self.assertEqual(header, Header("Reject", reason=netsock.RejectReason("BadMagic")))
                self.assertTrue(await raw.at_eof())
                raw.close()
        await self.assert_still_serving(server)

    async def test_handshake_refusals(self) -> None:
        server = await self.serve()

        async def answer(**changes: Any) -> netsock.RejectReason:
            hello = dict(magic=MAGIC, version=1, sends=self.schema.id, receives=self.schema.id,
                         max_frame=65536, lenient=False, auth=None)
            hello.update(changes)
            raw = await RawPeer.open(server.local_addr)
            raw.send(Header("Hello", **hello))
            header, _ = await raw.recv()
            raw.close()
            self.assertEqual(header.kind, "Reject")
            return header.reason  # type: ignore[no-any-return]

        self.assertEqual(await answer(version=2), netsock.RejectReason("VersionMismatch", server=1, client=2))
        self.assertEqual(await answer(max_frame=100),
                         netsock.RejectReason("FrameLimitTooSmall", max_frame=100, min=1024))
        self.assertEqual(await answer(magic=b"XXXX"), netsock.RejectReason("BadMagic"))
        differs = await answer(sends=1)
        self.assertEqual(differs.kind, "SchemaDiffers")
        self.assertEqual(differs.server_schema, (self.schema.text, self.schema.text))
        self.assertEqual(differs.client, (1, self.schema.id))
        await self.assert_still_serving(server)

    async def test_schema_texts_too_long_for_the_client_are_not_sent(self) -> None:
        long_text = self.schema.text + " " * 600
        server = await netsock.Server.bind(self.unix_addr("long.sock"), schema_with(long_text))
        self.addAsyncCleanup(server.close)
        raw = await RawPeer.open(server.local_addr)
        header = await raw.handshake(self.schema, max_frame=1024)
        self.assertEqual(header.reason.kind, "SchemaMismatch")
        raw.close()

    async def test_garbage_after_the_handshake_closes_with_protocol(self) -> None:
        server = await self.serve()
        cases = {
            "an unknown frame kind": b"\x0b",
            "a Hello after the handshake": encode_frame(Header("Hello", magic=MAGIC, version=1, sends=0, receives=0,
                                                               max_frame=2048, lenient=False, auth=None))[4:],
            "a truncated header": b"\x04\x80",
            "an unknown close reason": b"\x0a\x09",
        }
        for what, body in cases.items():
            with self.subTest(what):
                raw = await RawPeer.open(server.local_addr)
                await raw.handshake(self.schema)
                raw.send_body(body)
                header, _ = await raw.recv_kind("Close")
                self.assertEqual(header.reason.kind, "Protocol", header)
                self.assertTrue(await raw.at_eof())
                raw.close()
        await self.assert_still_serving(server)

    async def test_bad_events_are_reported_and_the_connection_stays(self) -> None:
        errors: asyncio.Queue[netsock.SocketError] = asyncio.Queue()

        def setup(socket: netsock.Socket) -> None:
            socket.on_error(errors.put_nowait)
            socket.on("Sum", lambda numbers: sum(numbers))

            def bad_handler(text: str) -> None:
                raise KeyError(text)

            socket.on("Note", bad_handler)

        server = await self.serve(setup=setup)
        raw = await RawPeer.open(server.local_addr)
        await raw.handshake(self.schema)
        raw.send(Header("Event"), b"\x09")  # no such variant
        raw.send(Header("Event"), self.schema.encode("Sum", [1])[1])  # a request as an event
        raw.send(Header("Event"), self.schema.encode("Point", 1, 2)[1])  # no handler
        raw.send(Header("Event"), self.schema.encode("Note", "k")[1])  # the handler raises
        kinds = [(await asyncio.wait_for(errors.get(), 10)).kind for _ in range(4)]
        self.assertEqual(kinds, ["DecodeEvent", "RequestAsEvent", "NoHandler", "HandlerFailed"])
        raw.send(Header("Request", id=5, timeout_ms=0), self.schema.encode("Sum", [2, 2])[1])
        header, payload = await raw.recv_kind("Response")
        self.assertEqual((header.id, payload), (5, b"\x08"))
        raw.close()

    async def test_a_peer_cut_mid_frame_says_so(self) -> None:
        closed: asyncio.Queue[netsock.DisconnectReason] = asyncio.Queue()

        def setup(socket: netsock.Socket) -> None:
            socket.on_disconnect(closed.put_nowait)

        server = await self.serve(setup=setup)
        raw = await RawPeer.open(server.local_addr)
        await raw.handshake(self.schema)
        raw.send_raw(b"\x00\x00\x00\x0a\x03\x00")  # 6 of 14 bytes, then gone
        await raw.writer.drain()
        raw.close()
        reason = await asyncio.wait_for(closed.get(), 10)
        self.assertEqual((reason.kind, reason.size, reason.max), ("CutMidFrame", 6, 14))
        self.assertIn("6 of its 14 bytes had arrived", str(reason))

    async def test_a_garbage_server_fails_the_client_clearly(self) -> None:
        async def junk_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.write(b"\x00\x00\x00\x03\x63\x63\x63")
            await writer.drain()
            writer.close()

        srv = await asyncio.start_unix_server(junk_server, self.unix_addr("junk.sock"))
        async with srv:
            with self.assertRaises(netsock.ProtocolError) as caught:
                await netsock.connect(self.unix_addr("junk.sock"), self.schema)
        self.assertIn("not a netsock handshake", str(caught.exception))

    async def test_garbage_after_welcome_ends_the_client_connection(self) -> None:
        async def bad_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = RawPeer(reader, writer)
            await peer.recv()
            peer.send(Header("Welcome", id=7, max_frame=4096))
            peer.send_body(b"\x13\x01\x02")  # 19: no such frame kind
            await peer.recv_kind("Close")
            await peer.at_eof()
            writer.close()

        srv = await asyncio.start_unix_server(bad_server, self.unix_addr("bad.sock"))
        async with srv:
            socket = await netsock.connect(self.unix_addr("bad.sock"), self.schema)
            self.assertEqual(socket.id, 7)
            reason = await asyncio.wait_for(socket.closed(), 10)
        self.assertEqual(reason.kind, "Protocol")
        self.assertIn("unknown Header variant 19", reason.message)


class Handshakes(Base):
    async def test_schema_mismatch_between_python_peers(self) -> None:
        server = await self.serve()
        other = schema_with(self.schema.text.replace("Point{x:i32,y:i32}", "Point{x:i64,y:i32}"))
        with self.assertRaises(netsock.SchemaMismatch) as caught:
            await netsock.connect(server.local_addr, other)
        self.assertEqual(
            caught.exception.differences,
            ["the server's Interop has Point{x:i32,y:i32}, this client's has Point{x:i64,y:i32}"],
        )
        lenient = await netsock.connect(server.local_addr, other, lenient=True)
        self.assertEqual(await lenient.request("Sum", [1]), 1)
        await lenient.close()

    async def test_authorize_sees_the_auth_bytes(self) -> None:
        seen: list[bytes | None] = []

        async def authorize(auth: bytes | None) -> str | None:
            seen.append(auth)
            return None if auth == b"\x03ada" else "send your nick as the auth value"

        server = await self.serve(authorize=authorize)
        with self.assertRaises(netsock.Rejected) as caught:
            await netsock.connect(server.local_addr, self.schema)
        self.assertEqual(caught.exception.reason, netsock.RejectReason("Refused", message="send your nick as the auth value"))
        self.assertEqual(str(caught.exception), "the server rejected the connection: refused: send your nick as the auth value")
        socket = await self.client(server, auth="ada")
        self.assertEqual(await socket.request("Sum", [4]), 4)
        self.assertEqual(seen, [None, b"\x03ada"])

    async def test_nobody_listening(self) -> None:
        with self.assertRaises(netsock.ConnectFailed):
            await netsock.connect(self.unix_addr("nobody.sock"), self.schema)
        with self.assertRaises(netsock.InvalidAddr):
            await netsock.connect("localhost", self.schema)

    async def test_a_silent_server_times_the_handshake_out(self) -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()
            writer.close()

        srv = await asyncio.start_unix_server(silent, self.unix_addr("silent.sock"))
        async with srv:
            with self.assertRaises(netsock.HandshakeTimeout):
                await netsock.connect(self.unix_addr("silent.sock"), self.schema, handshake_timeout=0.05)

    async def test_a_silent_client_is_rejected_with_handshake_timeout(self) -> None:
        server = await self.serve(handshake_timeout=0.05)
        raw = await RawPeer.open(server.local_addr)
        header, _ = await raw.recv()
        self.assertEqual(header.reason, netsock.RejectReason("HandshakeTimeout", after_ms=50))
        raw.close()

    async def test_unix_socket_paths(self) -> None:
        server = await self.serve()
        with self.assertRaises(netsock.BindFailed) as caught:
            await netsock.Server.bind(server.local_addr, self.schema)
        self.assertIn("another server is already listening", str(caught.exception))
        await server.close()
        # A stale socket file is replaced.
        import socket as pysocket

        stale = pysocket.socket(pysocket.AF_UNIX)
        stale.bind(self.unix_addr("stale.sock"))
        stale.close()
        again = await self.serve(self.unix_addr("stale.sock"))
        await self.assert_connects(again)

    async def assert_connects(self, server: netsock.Server) -> None:
        socket = await self.client(server)
        self.assertEqual(await socket.request("Sum", [1]), 1)


class Heartbeat(Base):
    async def test_ping_is_answered_on_both_sides(self) -> None:
        server = await self.serve()
        raw = await RawPeer.open(server.local_addr)
        await raw.handshake(self.schema)
        raw.send(Header("Ping"))
        self.assertEqual((await raw.recv_kind("Pong"))[0].kind, "Pong")
        raw.close()

        async def pinging(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = RawPeer(reader, writer)
            await peer.recv()
            peer.send(Header("Welcome", id=1, max_frame=4096))
            peer.send(Header("Ping"))
            pongs.put_nowait((await peer.recv())[0].kind)
            await peer.at_eof()
            writer.close()

        pongs: asyncio.Queue[str] = asyncio.Queue()
        srv = await asyncio.start_unix_server(pinging, self.unix_addr("ping.sock"))
        async with srv:
            socket = await netsock.connect(self.unix_addr("ping.sock"), self.schema)
            self.assertEqual(await asyncio.wait_for(pongs.get(), 10), "Pong")
            await socket.close()

    async def test_a_silent_peer_is_dropped(self) -> None:
        closed: asyncio.Queue[netsock.DisconnectReason] = asyncio.Queue()

        def setup(socket: netsock.Socket) -> None:
            socket.on_disconnect(closed.put_nowait)

        server = await self.serve(setup=setup, heartbeat=(0.05, 0.05))
        raw = await RawPeer.open(server.local_addr)
        await raw.handshake(self.schema)
        # The raw peer reads nothing and answers nothing.
        reason = await asyncio.wait_for(closed.get(), 10)
        self.assertEqual(reason.kind, "HeartbeatTimeout")
        self.assertEqual(server.sockets(), [])
        raw.close()

    async def test_an_answering_peer_is_kept(self) -> None:
        # A peer that answers is pinged again `timeout` after each ping.
        server = await self.serve(heartbeat=(0.01, 1.0))
        socket = await self.client(server, heartbeat=(0.01, 1.0))
        pongs = 0
        raw = await RawPeer.open(server.local_addr)
        await raw.handshake(self.schema)
        while pongs < 2:  # the server pings the raw peer, which answers
            header, _ = await raw.recv()
            self.assertEqual(header.kind, "Ping")
            raw.send(Header("Pong"))
            pongs += 1
        self.assertEqual(len(server.sockets()), 2)
        self.assertTrue(socket.connected)
        raw.close()


class Reconnecting(Base):
    async def test_the_client_comes_back_and_sends_what_was_emitted_offline(self) -> None:
        notes: asyncio.Queue[str] = asyncio.Queue()

        def setup(socket: netsock.Socket) -> None:
            interop_handlers(socket)
            socket.on("Point", lambda x, y: notes.put_nowait(f"point {x} {y}"))

        addr = self.unix_addr()
        server = await self.serve(addr, setup=setup)
        socket = await self.client(server, reconnect=netsock.Reconnect(initial_delay=0.01, max_delay=0.05))
        reconnected: asyncio.Queue[int] = asyncio.Queue()
        socket.on_reconnect(lambda s: reconnected.put_nowait(s.id))
        lost: asyncio.Queue[netsock.DisconnectReason] = asyncio.Queue()
        socket.on_disconnect(lost.put_nowait)
        first_id = socket.id
        await socket.emit("Point", 0, 0)
        self.assertEqual(await asyncio.wait_for(notes.get(), 10), "point 0 0")

        await server.close()  # Close(Shutdown): the client reconnects
        self.assertEqual((await asyncio.wait_for(lost.get(), 10)).close.kind, "Shutdown")
        self.assertFalse(socket.connected)
        await socket.emit("Point", 1, 1)  # buffered while offline
        await socket.emit("Point", 2, 2)
        with self.assertRaises(netsock.Disconnected):
            await socket.request("Sum", [1])

        server = await self.serve(addr, setup=setup)
        await asyncio.wait_for(reconnected.get(), 10)
        self.assertTrue(socket.connected)
        self.assertEqual(socket.id, 1)  # a new server counts from 1 again
        self.assertEqual(first_id, 1)
        self.assertEqual([await asyncio.wait_for(notes.get(), 10) for _ in range(2)], ["point 1 1", "point 2 2"])
        self.assertEqual(await socket.request("Sum", [2, 3]), 5)

    async def test_a_normal_close_by_the_server_is_final(self) -> None:
        def setup(socket: netsock.Socket) -> None:
            async def close_soon(text: str) -> None:
                await socket.close()

            socket.on("Note", close_soon)

        server = await self.serve(setup=setup)
        socket = await self.client(server, reconnect=netsock.Reconnect(initial_delay=0.01))
        await socket.emit("Note", "bye")
        reason = await asyncio.wait_for(socket.closed(), 10)
        self.assertEqual((reason.kind, reason.close), ("ClosedByPeer", netsock.CloseReason("Normal")))
        with self.assertRaises(netsock.Disconnected):
            await socket.emit("Note", "gone")

    async def test_a_failing_connection_handler_closes_with_application(self) -> None:
        def setup(socket: netsock.Socket) -> None:
            raise PermissionError("not you")

        server = await self.serve(setup=setup)
        socket = await self.client(server)
        reason = await asyncio.wait_for(socket.closed(), 10)
        self.assertEqual(reason.close.kind, "Application")
        self.assertIn("not you", reason.close.message)

    async def test_giving_up_after_max_attempts(self) -> None:
        server = await self.serve()
        socket = await self.client(
            server, reconnect=netsock.Reconnect(initial_delay=0.01, max_delay=0.01, max_attempts=3)
        )
        await server.close()
        reason = await asyncio.wait_for(socket.closed(), 10)
        self.assertEqual((reason.kind, reason.attempts), ("ReconnectFailed", 3))
        self.assertIn("cannot connect", reason.message)


class Addresses(AsyncTest):
    async def test_spellings(self) -> None:
        from netsock.addr import Addr, parse

        self.assertEqual(parse(3000), Addr("tcp", "127.0.0.1", 3000))
        self.assertEqual(parse("3000"), Addr("tcp", "127.0.0.1", 3000))
        self.assertEqual(parse("tcp://localhost:1"), Addr("tcp", "localhost", 1))
        self.assertEqual(parse("[::1]:80"), Addr("tcp", "::1", 80))
        self.assertEqual(str(parse("[::1]:80")), "tcp://[::1]:80")
        self.assertEqual(parse("./a.sock"), Addr("unix", path="./a.sock"))
        self.assertEqual(parse("unix://a.sock"), Addr("unix", path="a.sock"))
        for bad in ("localhost", "tcp://h:99999", "tls://h:1", "ftp://x", ":80"):
            with self.subTest(bad), self.assertRaises(netsock.InvalidAddr):
                parse(bad)
