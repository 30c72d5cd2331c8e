/**
 * Upload streams (a request that carries items from its caller, frames
 * UploadItem, UploadEnd, UploadCredit): this package sends none and serves
 * none. Its server answers an upload request NoHandler and ignores the
 * upload frames that follow (for that id or any other); its client refuses
 * to call an upload variant and ignores upload frames from its peer.
 * test/uploads.json is a hand-written schema with an upload variant (the
 * `upload` key; the schema text's notation is made up, its id is its own).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, test } from "node:test";

import { NetsockError, PROTOCOL_VERSION, Server, Writer, connect, decodeFrame, encodeFrame, loadSchema, type ClientSocket, type Header } from "../src/index.js";
import { PACKAGE_DIR, rawPeer, tempDir } from "./helpers.js";

type Files = {
  Put: { payload: string; request: true; response: bigint; upload: Uint8Array };
  Sum: { payload: Array<bigint>; request: true; response: bigint };
};
const files = () => loadSchema<Files>(readFileSync(join(PACKAGE_DIR, "test/uploads.json"), "utf8"));

const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;
const sockPath = () => join(tmp.dir, `u${n++}.sock`);

const bytesItem = (bytes: number[]) => {
  const w = new Writer();
  w.bytesWithLen(new Uint8Array(bytes));
  return w.bytes();
};

test("our server answers an upload request NoHandler, ignores the upload frames that follow, and serves on", async () => {
  const io = await Server.bind(sockPath(), files());
  const reported: Error[] = [];
  io.on("connection", (socket) => {
    socket.onError((e) => reported.push(e));
    socket.on("Sum", (numbers) => numbers.reduce((a, b) => a + b, 0n));
    assert.throws(() => (socket as unknown as { on: (name: string, handler: () => bigint) => void }).on("Put", () => 1n), /Put carries an upload stream, which this package does not serve/);
  });
  try {
    const c = await rawPeer(io.address);
    const schema = files();
    c.send({ kind: "Hello", magic: new Uint8Array([0x4e, 0x53, 0x43, 0x4b]), version: PROTOCOL_VERSION, sends: schema.id, receives: schema.id, maxFrame: 1 << 20, lenient: false, auth: null });
    assert.equal(((await c.next()) as Header).kind, "Welcome");
    // The request, then its upload, as a caller sends them.
    c.send({ kind: "Request", id: 7n, timeoutMs: 0 }, schema.encodeVariant("Put", "notes.txt"));
    c.send({ kind: "UploadItem", id: 7n }, bytesItem([1, 2, 3]));
    c.send({ kind: "UploadItem", id: 7n }, bytesItem([4]));
    c.send({ kind: "UploadEnd", id: 7n, error: null });
    assert.deepEqual(await c.next(), { kind: "Failure", id: 7n, error: { kind: "NoHandler", event: "Put" } });
    // Upload frames for ids never seen, a failed upload, a credit: all ignored.
    c.send({ kind: "UploadItem", id: 999n }, bytesItem([9]));
    c.send({ kind: "UploadEnd", id: 998n, error: { kind: "HandlerFailed", message: "the source failed" } });
    c.send({ kind: "UploadCredit", id: 7n, items: 512, bytes: 131072n });
    c.send({ kind: "UploadItem", id: 7n }, new Uint8Array([0xff, 0xff])); // garbage payload: not even decoded
    c.send({ kind: "Ping" });
    assert.deepEqual(await c.next(), { kind: "Pong" }); // nothing was sent for them, and the connection is open
    c.send({ kind: "Request", id: 8n, timeoutMs: 0 }, schema.encodeVariant("Sum", [20n, 22n]));
    const reply = await c.next();
    assert.ok(reply !== "end" && reply.kind === "Response" && reply.id === 8n);
    assert.equal(io.sockets.size, 1);
    assert.deepEqual(reported, []);
    c.sock.destroy();
  } finally {
    await io.close();
  }
});

test("our client refuses to call an upload variant, and ignores upload frames from its peer", async () => {
  const path = sockPath();
  const schema = files();
  // A fake server: Welcome, then upload frames for ids it made up, then it answers each request.
  const fake = createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const { header, payload } = decodeFrame(buf.subarray(4, 4 + len));
        buf = buf.subarray(4 + len);
        if (header.kind === "Hello") {
          sock.write(encodeFrame({ kind: "Welcome", id: 1n, maxFrame: 1 << 20 }));
          sock.write(encodeFrame({ kind: "UploadCredit", id: 1n, items: 1024, bytes: 262144n }));
          sock.write(encodeFrame({ kind: "UploadItem", id: 5n }, bytesItem([1])));
          sock.write(encodeFrame({ kind: "UploadEnd", id: 5n, error: null }));
        } else if (header.kind === "Request") {
          const { payload: numbers } = schema.decodeVariant(payload) as { payload: bigint[] };
          const w = new Writer();
          w.zigzag(numbers.reduce((a, b) => a + b, 0n));
          sock.write(encodeFrame({ kind: "UploadCredit", id: header.id, items: 1, bytes: 1n }));
          sock.write(encodeFrame({ kind: "Response", id: header.id }, w.bytes()));
        }
      }
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((resolve) => fake.listen(path, resolve));
  try {
    const socket = await connect(path, schema, { reconnect: false });
    const untyped = socket as unknown as ClientSocket; // the types refuse these already
    await assert.rejects(untyped.request("Put", "notes.txt"), (e: unknown) => e instanceof NetsockError && /Put carries an upload stream from the caller, which this package does not send/.test(e.message));
    assert.throws(() => untyped.requestStream("Put", "notes.txt"), /Put carries an upload stream from the caller, which this package does not send/);
    assert.equal(await socket.request("Sum", [1n, 2n]), 3n);
    assert.equal(socket.connected, true);
    await socket.close();
  } finally {
    fake.close();
  }
});
