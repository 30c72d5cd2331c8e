/** What a peer cannot break: garbage, oversize frames, a dead peer, a lost server. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, test } from "node:test";

import {
  CallFrameTooLargeError,
  DisconnectedError,
  FrameTooLargeError,
  HandlerPanickedError,
  MIN_MAX_FRAME,
  PROTOCOL_VERSION,
  RejectedError,
  ResponseTooLargeError,
  Server,
  TimeoutError,
  connect,
  decodeFrame,
  encodeFrame,
  type Header,
} from "../src/index.js";
import { interop, rawPeer, serveRust, tempDir, waitFor } from "./helpers.js";

const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;
const sockPath = () => join(tmp.dir, `r${n++}.sock`);

const hello = (id: bigint, version = PROTOCOL_VERSION, maxFrame = 1 << 20): Uint8Array =>
  encodeFrame({
    kind: "Hello",
    magic: new Uint8Array([0x4e, 0x53, 0x43, 0x4b]),
    version,
    sends: id,
    receives: id,
    maxFrame,
    lenient: false,
    auth: null,
  });

/** Our server with the Interop handlers the tests use. */
async function ourServer(options: Parameters<typeof Server.bind>[2] = {}) {
  const io = await Server.bind(sockPath(), interop(), options);
  io.on("connection", (socket) => {
    socket.on("Sum", (numbers) => numbers.reduce((a, b) => a + b, 0n));
    socket.on("Greet", ({ name }) => {
      if (name === "boom") throw new Error("boom");
      return name === "big" ? "x".repeat(5000) : `hello, ${name}`;
    });
  });
  return io;
}

test("the Rust server and ours: a wrong version is rejected, garbage after the handshake answered Close(Protocol), and both keep serving", async () => {
  const rust = await serveRust(sockPath());
  const io = await ourServer();
  try {
    for (const addr of [rust.addr, io.address]) {
      const v = await rawPeer(addr);
      v.write(hello(interop().id, 2));
      assert.deepEqual(await v.next(), { kind: "Reject", reason: { kind: "VersionMismatch", server: 1, client: 2 } });
      const c = await rawPeer(addr);
      c.write(hello(interop().id));
      assert.equal((await c.next() as Header).kind, "Welcome");
      c.write(new Uint8Array([0, 0, 0, 3, 0xff, 0xff, 0xff]));
      const close = await c.next();
      assert.ok(close !== "end" && close.kind === "Close" && close.reason.kind === "Protocol", JSON.stringify(close, (_, v) => (typeof v === "bigint" ? String(v) : v)));
      assert.equal(await c.next(), "end");
      // Still serving.
      const socket = await connect(addr, interop(), { reconnect: false });
      assert.equal(await socket.request("Sum", [1n, 2n]), 3n);
      await socket.close();
    }
  } finally {
    await io.close();
    await rust.stop();
  }
});

test("random bytes never crash our server: undecodable events are dropped, requests answered BadRequest", async () => {
  const io = await ourServer();
  const reported: Error[] = [];
  io.on("connection", (socket) => socket.onError((e) => reported.push(e)));
  let seed = 42;
  const random = (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      out[i] = seed >> 16;
    }
    return out;
  };
  try {
    // Before the handshake: whatever arrives is answered Reject or the connection ends.
    for (let i = 0; i < 20; i++) {
      const c = await rawPeer(io.address);
      const body = random(1 + (i % 40));
      c.write(new Uint8Array([0, 0, 0, body.length, ...body]));
      const first = await c.next();
      assert.ok(first === "end" || first.kind === "Reject", String(first));
      c.sock.destroy();
    }
    // After it: random payloads in Event and Request frames.
    const c = await rawPeer(io.address);
    c.write(hello(interop().id));
    assert.equal(((await c.next()) as Header).kind, "Welcome");
    let requests = 0;
    for (let i = 0; i < 50; i++) {
      const payload = random(1 + (i % 30));
      payload[0] = payload[0]! % 9; // mostly known variant indexes, some unknown
      if (i % 2 === 0) c.write(encodeFrame({ kind: "Event" }, payload));
      else {
        c.write(encodeFrame({ kind: "Request", id: BigInt(i), timeoutMs: 0 }, payload));
        requests++;
      }
    }
    // Every request gets exactly one answer; the connection stays open.
    const answers: Header[] = [];
    for (let i = 0; i < requests; i++) {
      const h = await c.next();
      assert.ok(h !== "end", "the server hung up");
      answers.push(h);
    }
    assert.ok(answers.every((h) => h.kind === "Failure" || h.kind === "Response"));
    assert.ok(answers.some((h) => h.kind === "Failure" && h.error.kind === "BadRequest"));
    assert.ok(reported.length > 0);
    c.write(encodeFrame({ kind: "Ping" }));
    assert.deepEqual(await c.next(), { kind: "Pong" });
    c.sock.destroy();
  } finally {
    await io.close();
  }
});

test("our server: a stranger gets Reject(BadMagic), a wrong version VersionMismatch, a tiny limit FrameLimitTooSmall", async () => {
  const io = await ourServer();
  try {
    let c = await rawPeer(io.address);
    c.write(new Uint8Array([0, 0, 0, 5, 1, 2, 3, 4, 5]));
    assert.deepEqual(await c.next(), { kind: "Reject", reason: { kind: "BadMagic" } });
    c = await rawPeer(io.address);
    c.write(new Uint8Array([0, 0, 0x20, 0, 0])); // an 8 KiB first frame (over 4 KiB), body never sent
    assert.deepEqual(await c.next(), { kind: "Reject", reason: { kind: "BadMagic" } });
    c = await rawPeer(io.address);
    c.write(hello(interop().id, 2));
    assert.deepEqual(await c.next(), { kind: "Reject", reason: { kind: "VersionMismatch", server: 1, client: 2 } });
    c = await rawPeer(io.address);
    c.write(hello(interop().id, 1, 100));
    assert.deepEqual(await c.next(), { kind: "Reject", reason: { kind: "FrameLimitTooSmall", maxFrame: 100, min: MIN_MAX_FRAME } });
    c = await rawPeer(io.address);
    c.write(hello(1234n));
    const r = await c.next();
    assert.ok(r !== "end" && r.kind === "Reject" && r.reason.kind === "SchemaDiffers");
    assert.equal(io.sockets.size, 0);
  } finally {
    await io.close();
  }
});

test("our server: a frame over its limit gets Close(FrameTooLarge); a Ping gets a Pong", async () => {
  const io = await ourServer({ maxFrame: 2048 });
  try {
    const c = await rawPeer(io.address);
    c.write(hello(interop().id));
    const welcome = await c.next();
    assert.ok(welcome !== "end" && welcome.kind === "Welcome" && welcome.maxFrame === 2048);
    c.write(encodeFrame({ kind: "Ping" }));
    assert.deepEqual(await c.next(), { kind: "Pong" });
    assert.equal(io.sockets.size, 1);
    c.write(new Uint8Array([0, 0, 0x10, 0]));
    assert.deepEqual(await c.next(), { kind: "Close", reason: { kind: "FrameTooLarge", size: 4096n, max: 2048n } });
    assert.equal(await c.next(), "end");
  } finally {
    await io.close();
  }
});

test("frame limits both ways, and a handler's throw, come back as typed errors", async () => {
  const io = await ourServer();
  try {
    const socket = await connect(io.address, interop(), { reconnect: false, maxFrame: 1024 });
    // Ours is 1024, so the server's 5000-byte reply cannot be sent.
    await assert.rejects(socket.request("Greet", { name: "big" }), ResponseTooLargeError);
    await assert.rejects(socket.request("Greet", { name: "boom" }), (e: Error) => e instanceof HandlerPanickedError && /boom/.test(e.message));
    assert.equal(await socket.request("Greet", { name: "ada" }), "hello, ada");
    await socket.close();

    const small = await Server.bind(sockPath(), interop(), { maxFrame: 1024 });
    const client = await connect(small.address, interop(), { reconnect: false });
    await assert.rejects(client.emit("Note", "x".repeat(2000)), FrameTooLargeError);
    await assert.rejects(client.request("Greet", { name: "x".repeat(2000) }), CallFrameTooLargeError);
    await client.close();
    await small.close();
  } finally {
    await io.close();
  }
});

test("a peer that stops answering is dropped by the heartbeat", async () => {
  // A fake server: answers the Hello with Welcome, then reads and says nothing.
  const path = sockPath();
  const fake = createServer((sock) => {
    sock.once("data", () => sock.write(encodeFrame({ kind: "Welcome", id: 1n, maxFrame: 1 << 20 })));
    sock.on("error", () => {});
  });
  await new Promise<void>((resolve) => fake.listen(path, resolve));
  try {
    const socket = await connect(path, interop(), { reconnect: false, heartbeatIntervalMs: 50, heartbeatTimeoutMs: 50 });
    const pending = socket.request("Sum", [1n]);
    const info = await socket.closed();
    assert.match(info.reason, /heartbeat timeout/);
    await assert.rejects(pending, (e: Error) => e instanceof DisconnectedError && /heartbeat/.test(e.message));
  } finally {
    fake.close();
  }
});

test("our client closes on garbage from the server with Close(Protocol), without crashing", async () => {
  const path = sockPath();
  let answered: (h: Header) => void = () => {};
  const closeFrame = new Promise<Header>((resolve) => (answered = resolve));
  const fake = createServer((sock) => {
    let seen = 0;
    sock.on("data", (d) => {
      seen += 1;
      if (seen === 1) sock.write(encodeFrame({ kind: "Welcome", id: 1n, maxFrame: 1 << 20 }));
      else if (seen === 2) {
        // The client's Note arrived: an event whose payload is garbage (dropped, reported), then an unknown frame kind.
        sock.write(new Uint8Array([0, 0, 0, 2, 3, 99]));
        sock.write(new Uint8Array([0, 0, 0, 1, 42]));
      } else answered(decodeFrame(d.subarray(4, 4 + d.readUInt32BE(0))).header);
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((resolve) => fake.listen(path, resolve));
  try {
    const socket = await connect(path, interop(), { reconnect: false });
    const reported: Error[] = [];
    socket.onError((e) => reported.push(e));
    await socket.emit("Note", "go");
    const info = await socket.closed();
    assert.match(info.reason, /unknown frame kind 42/);
    const close = await closeFrame;
    assert.ok(close.kind === "Close" && close.reason.kind === "Protocol" && /unknown frame kind 42/.test(close.reason.message));
    assert.match(reported[0]?.message ?? "", /dropped an undecodable event: Interop has no variant with index 99/);
  } finally {
    fake.close();
  }
});

test("the client reconnects with backoff when its server comes back", async () => {
  let io = await ourServer();
  const addr = io.address;
  const socket = await connect(addr, interop(), { reconnect: { initialDelayMs: 10, maxDelayMs: 100 } });
  try {
    assert.equal(await socket.request("Sum", [1n, 1n]), 2n);
    const firstId = socket.id;
    const disconnected = waitFor("the disconnect", (done) => socket.onDisconnect(done));
    const reconnected = waitFor("the reconnect", (done) => socket.onReconnect(() => done(null)));
    await io.close();
    const info = (await disconnected) as { close?: { kind: string }; reason: string };
    assert.ok(info.close?.kind === "Shutdown", info.reason);
    await assert.rejects(socket.request("Sum", [1n]), DisconnectedError);
    io = await Server.bind(addr, interop());
    io.on("connection", (s) => s.on("Sum", (numbers) => numbers.reduce((a, b) => a + b, 0n)));
    await reconnected;
    assert.equal(socket.connected, true);
    assert.equal(await socket.request("Sum", [2n, 2n]), 4n);
    assert.equal(io.sockets.size, 1);
    assert.equal(socket.id, 1n);
    assert.equal(firstId, 1n);
  } finally {
    await socket.close();
    await io.close();
  }
});

test("an event sent on connection reaches handlers set right after connect; a Cancel aborts the handler", async () => {
  const io = await Server.bind(sockPath(), interop());
  let aborted: (reason: string) => void = () => {};
  const handlerAborted = new Promise<string>((resolve) => (aborted = resolve));
  io.on("connection", (socket) => {
    void socket.emit("Note", "welcome");
    socket.on("Slow", (_, { signal, timeoutMs }) => {
      signal.addEventListener("abort", () => aborted(`aborted, the caller waited ${timeoutMs} ms`));
      return new Promise<null>(() => {});
    });
  });
  try {
    const socket = await connect(io.address, interop(), { reconnect: false });
    const note = waitFor<string>("the welcome note", (done) => socket.on("Note", done));
    assert.equal(await note, "welcome");
    await assert.rejects(socket.timeout(50).request("Slow", { ms: 1 }), TimeoutError);
    assert.equal(await handlerAborted, "aborted, the caller waited 50 ms");
    await socket.close();
  } finally {
    await io.close();
  }
});

test("a connection handler or listener that throws closes that connection, not the process", async () => {
  const io = await Server.bind(sockPath(), interop());
  io.on("connection", async (socket) => {
    socket.onDisconnect(() => {
      throw new Error("a listener bug");
    });
    throw new Error("not today");
  });
  try {
    const socket = await connect(io.address, interop(), { reconnect: false });
    const info = await socket.closed();
    assert.deepEqual(info.close, { kind: "Application", message: "not today" });
    assert.match(info.reason, /closed by the application: not today/);
  } finally {
    await io.close();
  }
});

test("a Unix socket path: a stale file is replaced, a live server's is not", async () => {
  const path = sockPath();
  const first = await Server.bind(path, interop());
  await assert.rejects(Server.bind(path, interop()), /a server is already listening there/);
  // A stale file: a plain file standing where the socket was.
  await first.close();
  writeFileSync(path, "");
  const second = await Server.bind(path, interop());
  const socket = await connect(path, interop(), { reconnect: false });
  assert.equal(second.sockets.size, 1);
  await socket.close();
  await second.close();
});

test("a rejected client is not retried", async () => {
  const io = await Server.bind(sockPath(), interop(), { authenticate: ({ auth }) => (auth ? true : "send a token") });
  try {
    await assert.rejects(
      connect(io.address, interop()),
      (e: Error) => e instanceof RejectedError && e.reason.kind === "Refused" && /refused: send a token/.test(e.message),
    );
    const ok = await connect(io.address, interop(), { auth: new TextEncoder().encode("t"), reconnect: false });
    assert.equal(io.sockets.size, 1);
    await ok.close();
  } finally {
    await io.close();
  }
});
