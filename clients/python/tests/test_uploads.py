"""Upload streams (a request that carries items from its caller, frames
UploadItem 16, UploadEnd 17, UploadCredit 18): this package knows their
frames but sends none and serves none. Its server answers an upload
request NoHandler and ignores the upload frames that follow (for that id
or any other); its client refuses to call an upload variant and ignores
upload frames from its peer. uploads.json is a hand-written schema with an
upload variant (the `upload` key; the schema text's notation is made up,
its id is its own)."""

from __future__ import annotations

import asyncio
import json
import unittest

import netsock
from netsock.frames import MAGIC, Header, Kind, decode_body, encode_frame

from support import HERE, AsyncTest, RawPeer

UPLOADS = HERE / "uploads.json"
U64_MAX = (1 << 64) - 1


def bytes_item(data: bytes) -> bytes:
    """The postcard encoding of a `Vec<u8>` item: its length, then the bytes."""
    out = bytearray()
    netsock.postcard.write_varint(out, len(data))
    return bytes(out) + data


class UploadFrames(unittest.TestCase):
    CASES = [
        # tag 16, id 1, then the payload (the u64 42)
        (Header("UploadItem", id=1), b"\x2a", "00 00 00 03 10 01 2a"),
        # id 300 = ac 02; the payload runs to the end
        (Header("UploadItem", id=300), b"\x03abc", "00 00 00 07 10 ac 02 03 61 62 63"),
        # tag 17, id, None
        (Header("UploadEnd", id=300, error=None), b"", "00 00 00 04 11 ac 02 00"),
        # Some(HandlerFailed("x")): 01, variant 6, the string
        (
            Header("UploadEnd", id=2, error=netsock.RemoteError("HandlerFailed", message="x")),
            b"",
            "00 00 00 06 11 02 01 06 01 78",
        ),
        # Some(ResponseTooLarge { size 9, max 8 })
        (
            Header("UploadEnd", id=2, error=netsock.RemoteError("ResponseTooLarge", size=9, max=8)),
            b"",
            "00 00 00 06 11 02 01 04 09 08",
        ),
        # tag 18, id 1, items 512 = 80 04, bytes 131072 = 80 80 08
        (Header("UploadCredit", id=1, items=512, bytes=131072), b"", "00 00 00 07 12 01 80 04 80 80 08"),
        # the extremes: a 10-byte id, u32::MAX items (5 bytes), u64::MAX bytes
        (
            Header("UploadCredit", id=U64_MAX, items=(1 << 32) - 1, bytes=U64_MAX),
            b"",
            "00 00 00 1a 12 ff ff ff ff ff ff ff ff ff 01 ff ff ff ff 0f ff ff ff ff ff ff ff ff ff 01",
        ),
    ]

    def test_byte_exact_and_round_trip(self) -> None:
        for header, payload, expected in self.CASES:
            with self.subTest(header):
                frame = encode_frame(header, payload)
                self.assertEqual(frame.hex(" "), expected)
                decoded, rest = decode_body(frame[4:])
                self.assertEqual(decoded, header)
                self.assertEqual(rest, payload)

    def test_kinds_are_appended(self) -> None:
        self.assertEqual((Kind.UPLOAD_ITEM, Kind.UPLOAD_END, Kind.UPLOAD_CREDIT), (16, 17, 18))
        self.assertEqual(Header("UploadCredit", id=1, items=1, bytes=1).index, 18)
        with self.assertRaises(netsock.DecodeError):
            decode_body(bytes([19]))

    def test_out_of_range_fields_are_refused(self) -> None:
        with self.assertRaises(ValueError):
            encode_frame(Header("UploadCredit", id=1, items=1 << 32, bytes=0))
        with self.assertRaises(ValueError):
            encode_frame(Header("UploadItem", id=-1))


class UploadSchema(unittest.TestCase):
    def test_the_upload_key_is_read(self) -> None:
        files = netsock.Schema.load(UPLOADS)
        put = files.variant("Put")
        self.assertIsNotNone(put.upload)
        self.assertIsNone(files.variant("Sum").upload)
        # Older documents have no `upload` key at all.
        feed = netsock.Schema.load(HERE / "feed.json")
        self.assertTrue(all(v.upload is None for v in feed.variants))

    def test_an_upload_on_an_event_is_refused(self) -> None:
        doc = json.loads(UPLOADS.read_text())
        doc["variants"][0]["request"] = False
        doc["variants"][0]["response"] = None
        with self.assertRaisesRegex(netsock.SchemaError, "upload"):
            netsock.Schema.from_json(doc)


class UploadsOverSockets(AsyncTest):
    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.files = netsock.Schema.load(UPLOADS)

    async def test_the_server_answers_no_handler_and_ignores_the_upload(self) -> None:
        refused: list[str] = []

        def setup(socket: netsock.Socket) -> None:
            socket.on("Sum", lambda numbers: sum(numbers))
            try:
                socket.on("Put", lambda name: 1)
            except netsock.ValidationError as e:
                refused.append(str(e))

        server = await netsock.Server.bind(self.unix_addr(), self.files)
        server.on_connection(setup)
        self.addAsyncCleanup(server.close)
        peer = await RawPeer.open(server.local_addr)
        self.addCleanup(peer.close)
        welcome = await peer.handshake(self.files)
        self.assertEqual(welcome.kind, "Welcome")
        # The request, then its upload, as a caller sends them.
        peer.send(Header("Request", id=7, timeout_ms=0), self.files.encode("Put", "notes.txt")[1])
        peer.send(Header("UploadItem", id=7), bytes_item(b"\x01\x02\x03"))
        peer.send(Header("UploadItem", id=7), bytes_item(b"\x04"))
        peer.send(Header("UploadEnd", id=7, error=None))
        failure, _ = await peer.recv_kind("Failure")
        self.assertEqual((failure.id, failure.error), (7, netsock.RemoteError("NoHandler", event="Put")))
        # Upload frames for ids never seen, a failed upload, a credit, garbage items: all ignored.
        peer.send(Header("UploadItem", id=999), bytes_item(b"\x09"))
        peer.send(Header("UploadEnd", id=998, error=netsock.RemoteError("HandlerFailed", message="the source failed")))
        peer.send(Header("UploadCredit", id=7, items=512, bytes=131072))
        peer.send(Header("UploadItem", id=7), b"\xff\xff")
        peer.send(Header("Ping"))
        pong, _ = await peer.recv()
        self.assertEqual(pong.kind, "Pong")  # nothing was sent for them, and the connection is open
        peer.send(Header("Request", id=8, timeout_ms=0), self.files.encode("Sum", [20, 22])[1])
        reply, payload = await peer.recv_kind("Response")
        self.assertEqual(reply.id, 8)
        self.assertEqual(self.files.variant("Sum").decode_response(payload), 42)
        self.assertEqual(len(server.sockets()), 1)
        self.assertEqual(len(refused), 1)
        self.assertIn("upload", refused[0])

    async def test_the_client_refuses_an_upload_variant_and_ignores_upload_frames(self) -> None:
        accepted: asyncio.Future[RawPeer] = asyncio.get_running_loop().create_future()

        async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            peer = RawPeer(r, w)
            hello, _ = await peer.recv()
            assert hello.kind == "Hello" and hello.sends == self.files.id
            peer.send(Header("Welcome", id=1, max_frame=1 << 20))
            accepted.set_result(peer)

        hand = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.addCleanup(hand.close)
        host, port = hand.sockets[0].getsockname()[:2]
        sock = await netsock.connect(f"tcp://{host}:{port}", self.files, heartbeat=None, reconnect=None)
        self.addAsyncCleanup(sock.close)
        peer = await accepted
        self.addCleanup(peer.close)
        with self.assertRaisesRegex(netsock.ValidationError, "upload stream from the caller, which this package does not send"):
            await sock.request("Put", "notes.txt")
        with self.assertRaisesRegex(netsock.ValidationError, "upload"):
            await sock.request_stream("Put", "notes.txt")
        peer.send(Header("UploadCredit", id=1, items=1024, bytes=262144))
        peer.send(Header("UploadItem", id=5), bytes_item(b"\x01"))
        peer.send(Header("UploadEnd", id=5, error=None))
        call = asyncio.ensure_future(sock.request("Sum", [1, 2]))
        request, _ = await peer.recv_kind("Request")
        peer.send(Header("UploadCredit", id=request.id, items=1, bytes=1))
        peer.send(Header("Response", id=request.id), self.files.variant("Sum").encode_response(3))
        self.assertEqual(await call, 3)
        self.assertTrue(sock.connected)


if __name__ == "__main__":
    unittest.main()
