/**
 * Consuming streams: against the Rust `stream_producer` test binary
 * (tests/src/bin/stream_producer.rs, serving the `Feed` enum of
 * tests/src/feed.rs, whose schema JSON is test/feed.json), over TCP and a
 * Unix socket; and against a hand-driven peer for the exact frames this
 * side sends (Credit, Cancel) and what a well-behaved Rust server never
 * does (an item beyond the credit).
 */
import assert from "node:assert/strict";
import { createServer, type Socket as NetSocket } from "node:net";
import { join } from "node:path";
import { after, test } from "node:test";

import {
  CancelledError,
  DisconnectedError,
  HandlerFailedError,
  HandlerPanickedError,
  ItemStream,
  NetsockError,
  NoHandlerError,
  ResponseTooLargeError,
  STREAM_WINDOW_BYTES,
  STREAM_WINDOW_ITEMS,
  StreamProtocolError,
  TimeoutError,
  Writer,
  connect,
  decodeFrame,
  encodeFrame,
  type ClientSocket,
  type Header,
  type RemoteError,
} from "../src/index.js";
import { feed, startProducer, tempDir, waitFor, type Feed } from "./helpers.js";

const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;
const TRANSPORTS = ["tcp", "unix"] as const;

/** A client of a fresh `stream_producer` on `transport`; both are gone when `body` ends. */
async function withProducer(
  transport: "tcp" | "unix",
  body: (socket: ClientSocket<Feed>, producer: Awaited<ReturnType<typeof startProducer>>) => Promise<void>,
): Promise<void> {
  const producer = await startProducer(transport, transport === "unix" ? join(tmp.dir, `p${n++}.sock`) : undefined);
  try {
    const socket = await connect(producer.addr, feed(), { reconnect: false });
    try {
      await body(socket, producer);
    } finally {
      await socket.close();
    }
  } finally {
    await producer.stop();
  }
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

const range = (count: number) => Array.from({ length: count }, (_, i) => BigInt(i));

for (const transport of TRANSPORTS) {
  test(`${transport}: items come in order, then the end; the connection goes on`, async () => {
    await withProducer(transport, async (socket) => {
      // ANCHOR: consume
      const stream = socket.requestStream("Count", 5n);
      const items: bigint[] = [];
      for await (const n of stream) items.push(n); // bigints, typed from the schema
      assert.deepEqual(items, [0n, 1n, 2n, 3n, 4n]);
      // ANCHOR_END: consume
      assert.equal(stream.done, true);
      assert.deepEqual(await collect(stream), []); // ended: nothing more
      assert.deepEqual(await collect(socket.requestStream("Count", 0n)), []);
      assert.equal(await socket.request("Sum", [1n, 2n, 3n]), 6n);
    });
  });

  test(`${transport}: a handler error ends the stream after its items, as a typed CallError`, async () => {
    await withProducer(transport, async (socket) => {
      // ANCHOR: error
      const got: bigint[] = [];
      await assert.rejects(
        async () => {
          for await (const n of socket.requestStream("FailAfter", 3n)) got.push(n);
        },
        (e: unknown) => e instanceof HandlerFailedError && e.kind === "HandlerFailed" && e.detail === "boom",
      );
      assert.deepEqual(got, [0n, 1n, 2n]); // the items before the error
      // ANCHOR_END: error
      assert.equal(await socket.request("Sum", [2n]), 2n);
    });
  });

  test(`${transport}: a consumer that stops reading holds the producer at the window`, async () => {
    await withProducer(transport, async (socket) => {
      // Items: 1024 of them, then nothing until this side reads half.
      const count = socket.requestStream("Count", 5000n);
      for (let i = 0n; i < 5n; i++) assert.deepEqual(await count.next(), { done: false, value: i });
      const full = STREAM_WINDOW_ITEMS - 5;
      if (count.buffered < full) await waitFor("a full window", (done) => count.onArrival((b) => b === full && done(null)));
      await socket.request("Sum", [1n]); // a round trip: nothing more came meanwhile
      assert.equal(count.buffered, full);
      assert.ok(count.peakBuffered <= STREAM_WINDOW_ITEMS, `${count.peakBuffered} items waited`);
      // Reading on grants credit; an item beyond it would end the stream with StreamProtocolError.
      const rest = await collect(count);
      assert.deepEqual(rest, range(5000).slice(5));
      assert.ok(count.peakBuffered <= STREAM_WINDOW_ITEMS);

      // Bytes: 4 KiB items fill the 256 KiB byte window long before 1024 items.
      const before = await socket.request("Produced");
      const blobs = socket.requestStream("Blobs", { n: 1000n, size: 4096 });
      const size = 1 + 1 + 2 + 4096; // a StreamItem body: tag, id, string length, bytes
      const window = Math.ceil(STREAM_WINDOW_BYTES / size); // the last may overdraw the bytes
      if (blobs.buffered < window) await waitFor("a full byte window", (done) => blobs.onArrival((b) => b === window && done(null)));
      await socket.request("Sum", [1n]);
      assert.equal(blobs.buffered, window);
      assert.ok((await socket.request("Produced")) - before <= BigInt(window + 1));
      const texts = await collect(blobs);
      assert.equal(texts.length, 1000);
      assert.ok(texts.every((t) => t.length === 4096));
      assert.ok(texts[7]!.startsWith("7x"));
      assert.ok(blobs.peakBuffered <= window);
    });
  });

  test(`${transport}: breaking out of for-await cancels; the producer frees the stream`, async () => {
    await withProducer(transport, async (socket) => {
      // ANCHOR: cancel
      for await (const n of socket.requestStream("Endless")) {
        if (n === 4n) break; // sends Cancel: the producer stops
      }
      // ANCHOR_END: cancel
      assert.deepEqual(await collect(socket.requestStream("Count", 3n)), [0n, 1n, 2n]);
      assert.equal(await socket.request("Sum", [40n, 2n]), 42n);
    });
  });

  test(`${transport}: a disconnect ends every open stream with DisconnectedError`, async () => {
    await withProducer(transport, async (socket, producer) => {
      const endless = socket.requestStream("Endless");
      const silent = socket.requestStream("Silent");
      assert.deepEqual(await endless.next(), { done: false, value: 0n });
      producer.child.kill("SIGKILL");
      let read = 1n;
      await assert.rejects(async () => {
        for await (const n of endless) assert.equal(n, read++); // what had arrived, in order, then the error
      }, DisconnectedError);
      await assert.rejects(silent.next(), DisconnectedError);
      assert.deepEqual(await endless.next(), { done: true, value: undefined });
    });
  });

  test(`${transport}: the timeout bounds the first item; an idle timeout bounds the next`, async () => {
    await withProducer(transport, async (socket) => {
      const start = Date.now();
      const silent = socket.timeout(300).requestStream("Silent");
      await assert.rejects(silent.next(), (e: unknown) => e instanceof TimeoutError && /no stream item within 300 ms/.test(e.message));
      assert.ok(Date.now() - start < 5000);
      assert.deepEqual(await collect(silent), []);
      // Items after the first may take longer than the timeout...
      const slow = socket.timeout(300).requestStream("StallAfter", 2n);
      assert.deepEqual(await slow.next(), { done: false, value: 0n });
      assert.deepEqual(await slow.next(), { done: false, value: 1n });
      const third = slow.next();
      const outcome = await Promise.race([third.then(() => "item"), new Promise((r) => setTimeout(() => r("still waiting"), 600))]);
      assert.equal(outcome, "still waiting");
      slow.cancel();
      assert.deepEqual(await third, { done: true, value: undefined });
      // ... unless an idle timeout is set.
      const idle = socket.with({ timeoutMs: 5000, idleTimeoutMs: 300 }).requestStream("StallAfter", 1n);
      assert.deepEqual(await idle.next(), { done: false, value: 0n });
      await assert.rejects(idle.next(), TimeoutError);
      assert.equal(await socket.request("Sum", [1n]), 1n);
    });
  });
}

test("the producer sees the Cancel: it frees each stream cancelled by break, so its limit of open streams is never reached", async () => {
  // stream_producer (a netsock server with the default settings) keeps at
  // most 1024 streams open on one connection and refuses more. So 1024
  // streams that are never cancelled make the next one fail, and the
  // same number cancelled by `break` must leave room for as many again.
  await withProducer("unix", async (socket) => {
    const open: ItemStream<bigint>[] = [];
    for (let i = 0; i < STREAM_WINDOW_ITEMS; i++) open.push(socket.requestStream("StallAfter", 2n));
    for (const s of open) assert.deepEqual(await s.next(), { done: false, value: 0n });
    await assert.rejects(socket.requestStream("StallAfter", 2n).next(), (e: unknown) => e instanceof HandlerFailedError && /too many open streams/.test(e.message));
    for (const s of open) {
      for await (const n of s) {
        assert.equal(n, 1n);
        break; // Cancel
      }
      assert.equal(s.done, true);
    }
    await socket.request("Sum", [1n]); // the Cancels are read before this
    const again: ItemStream<bigint>[] = [];
    for (let i = 0; i < STREAM_WINDOW_ITEMS; i++) again.push(socket.requestStream("StallAfter", 1n));
    for (const s of again) assert.deepEqual(await s.next(), { done: false, value: 0n });
    for (const s of again) s.cancel();
  });
});

test("request refuses a stream variant (pointing at requestStream), requestStream a plain one, on a stream handler", async () => {
  await withProducer("tcp", async (socket) => {
    const untyped = socket as unknown as ClientSocket; // the types refuse these already
    await assert.rejects(untyped.request("Count", 3n), /Count answers with a stream: consume it with requestStream\(\)/);
    assert.throws(() => untyped.requestStream("Sum", [1n]), /Sum is not a stream request; it is a request answered with one reply/);
    assert.throws(() => untyped.requestStream("Note", 1n), /Note is not a stream request; it is an event/);
    assert.throws(() => untyped.on("Count", () => {}), /Count is a stream request, which this package does not serve/);
    assert.equal(await socket.request("Sum", [5n]), 5n);
  });
});

// --- a hand-driven server ------------------------------------------------------------

/** A fake server for one client: answers its Hello, then is driven by the test. */
async function handServer(): Promise<{
  addr: string;
  next: (kind?: Header["kind"]) => Promise<{ header: Header; payload: Uint8Array }>;
  send: (h: Header, payload?: Uint8Array) => void;
  raw: () => NetSocket;
  close: () => void;
}> {
  const path = join(tmp.dir, `h${n++}.sock`);
  let conn: NetSocket | null = null;
  const frames: { header: Header; payload: Uint8Array }[] = [];
  const waiters: (() => void)[] = [];
  const server = createServer((sock) => {
    conn = sock;
    let buf = Buffer.alloc(0);
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const frame = decodeFrame(buf.subarray(4, 4 + len));
        buf = buf.subarray(4 + len);
        if (frame.header.kind === "Hello") sock.write(encodeFrame({ kind: "Welcome", id: 1n, maxFrame: 1 << 20 }));
        else frames.push({ header: frame.header, payload: new Uint8Array(frame.payload) });
        waiters.splice(0).forEach((w) => w());
      }
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const next = async (kind?: Header["kind"]) => {
    for (;;) {
      const i = frames.findIndex((f) => !kind || f.header.kind === kind);
      if (i >= 0) return frames.splice(i, 1)[0]!;
      await waitFor(`a ${kind ?? "frame"}`, (done) => waiters.push(() => done(null)));
    }
  };
  return {
    addr: path,
    next,
    send: (h, payload) => conn!.write(encodeFrame(h, payload)),
    raw: () => conn!,
    close: () => {
      conn?.destroy();
      server.close();
    },
  };
}

const u64Item = (id: bigint, value: bigint): { frame: Uint8Array; size: number } => {
  const w = new Writer();
  w.varint(value);
  const frame = encodeFrame({ kind: "StreamItem", id }, w.bytes());
  return { frame, size: frame.length - 4 };
};

/** Opens `name` on the hand server, which accepts it with an empty Response. */
async function openOn(hand: Awaited<ReturnType<typeof handServer>>, socket: ClientSocket<Feed>, name: "Count" | "Endless") {
  const stream = name === "Count" ? socket.requestStream("Count", 5000n) : socket.requestStream("Endless");
  const { header } = await hand.next("Request");
  assert.ok(header.kind === "Request" && header.id === stream.id);
  hand.send({ kind: "Response", id: stream.id });
  return stream;
}

test("hand-driven: Credit is granted when half the window is read, with the bytes of the items read", async () => {
  const hand = await handServer();
  const socket = await connect(hand.addr, feed(), { reconnect: false });
  try {
    const stream = await openOn(hand, socket, "Count");
    const sizes: number[] = [];
    const frames: Uint8Array[] = [];
    for (let i = 0; i < STREAM_WINDOW_ITEMS; i++) {
      const { frame, size } = u64Item(stream.id, BigInt(i));
      frames.push(frame);
      sizes.push(size);
    }
    hand.raw().write(Buffer.concat(frames)); // the whole window at once
    const half = STREAM_WINDOW_ITEMS / 2;
    for (let i = 0; i < half; i++) assert.deepEqual(await stream.next(), { done: false, value: BigInt(i) });
    const { header } = await hand.next("Credit");
    const bytes = sizes.slice(0, half).reduce((a, b) => a + b, 0);
    assert.deepEqual(header, { kind: "Credit", id: stream.id, items: half, bytes: BigInt(bytes) });
    // Within the new credit: more items are taken.
    for (let i = STREAM_WINDOW_ITEMS; i < STREAM_WINDOW_ITEMS + 10; i++) hand.raw().write(u64Item(stream.id, BigInt(i)).frame);
    hand.send({ kind: "StreamEnd", id: stream.id, error: null });
    assert.deepEqual(await collect(stream), range(STREAM_WINDOW_ITEMS + 10).slice(half));
  } finally {
    await socket.close();
    hand.close();
  }
});

test("hand-driven: an item beyond the credit ends the stream with StreamProtocolError and a Cancel; others go on", async () => {
  const hand = await handServer();
  const socket = await connect(hand.addr, feed(), { reconnect: false });
  try {
    const stream = await openOn(hand, socket, "Count");
    const frames = range(STREAM_WINDOW_ITEMS + 1).map((i) => u64Item(stream.id, i).frame);
    hand.raw().write(Buffer.concat(frames)); // one more than granted
    const { header } = await hand.next("Cancel");
    assert.deepEqual(header, { kind: "Cancel", id: stream.id });
    const got: bigint[] = [];
    await assert.rejects(async () => {
      for await (const n of stream) got.push(n);
    }, StreamProtocolError);
    assert.deepEqual(got, range(STREAM_WINDOW_ITEMS));
    assert.equal(socket.connected, true);
  } finally {
    await socket.close();
    hand.close();
  }
});

test("hand-driven: cancel() sends Cancel, and frames still in flight for it are ignored", async () => {
  const hand = await handServer();
  const socket = await connect(hand.addr, feed(), { reconnect: false });
  try {
    const stream = await openOn(hand, socket, "Endless");
    hand.raw().write(u64Item(stream.id, 0n).frame);
    assert.deepEqual(await stream.next(), { done: false, value: 0n });
    stream.cancel();
    assert.deepEqual((await hand.next("Cancel")).header, { kind: "Cancel", id: stream.id });
    hand.raw().write(u64Item(stream.id, 1n).frame);
    hand.send({ kind: "StreamEnd", id: stream.id, error: null });
    hand.send({ kind: "Credit", id: stream.id, items: 1, bytes: 1n });
    assert.deepEqual(await collect(stream), []);
    // A signal cancels too.
    const controller = new AbortController();
    const signalled = socket.with({ signal: controller.signal }).requestStream("Endless");
    const { header } = await hand.next("Request");
    assert.equal(header.kind === "Request" && header.id, signalled.id);
    controller.abort();
    await assert.rejects(signalled.next(), CancelledError);
    assert.deepEqual((await hand.next("Cancel")).header, { kind: "Cancel", id: signalled.id });
    assert.equal(socket.connected, true);
  } finally {
    await socket.close();
    hand.close();
  }
});

test("hand-driven: a refusal and every StreamEnd error are typed CallErrors", async () => {
  const hand = await handServer();
  const socket = await connect(hand.addr, feed(), { reconnect: false });
  try {
    const refused = socket.requestStream("Count", 1n);
    await hand.next("Request");
    hand.send({ kind: "Failure", id: refused.id, error: { kind: "NoHandler", event: "Count" } });
    await assert.rejects(refused.next(), NoHandlerError);
    const cases: [RemoteError, new (...args: never[]) => Error, string][] = [
      [{ kind: "HandlerFailed", message: "m" }, HandlerFailedError, "HandlerFailed"],
      [{ kind: "HandlerPanicked", message: "p" }, HandlerPanickedError, "HandlerPanicked"],
      [{ kind: "ResponseTooLarge", size: 9n, max: 8n }, ResponseTooLargeError, "ResponseTooLarge"],
      [{ kind: "StreamProtocol", message: "x" }, StreamProtocolError, "StreamProtocol"],
    ];
    for (const [error, cls, kind] of cases) {
      const stream = await openOn(hand, socket, "Count");
      hand.raw().write(u64Item(stream.id, 7n).frame);
      hand.send({ kind: "StreamEnd", id: stream.id, error });
      assert.deepEqual(await stream.next(), { done: false, value: 7n });
      await assert.rejects(stream.next(), (e: unknown) => e instanceof cls && (e as unknown as { kind: string }).kind === kind);
      assert.deepEqual(await stream.next(), { done: true, value: undefined });
    }
    assert.ok(new DisconnectedError("x") instanceof NetsockError);
  } finally {
    await socket.close();
    hand.close();
  }
});
