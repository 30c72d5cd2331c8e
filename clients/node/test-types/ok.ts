// Must compile: the generated Interop types used as intended. Each
// `@ts-expect-error` line must be an error, or this file fails to compile.
import { readFileSync } from "node:fs";

import { Server, connect, loadSchema } from "../dist/index.js";
import type { Feed } from "./generated/feed.js";
import type { Files } from "./generated/files.js";
import type { Interop, Kind, Shape } from "./generated/interop.js";

const schema = loadSchema<Interop>(readFileSync("interop.json", "utf8"));
const feed = loadSchema<Feed>(readFileSync("feed.json", "utf8"));
const files = loadSchema<Files>(readFileSync("uploads.json", "utf8"));

export async function client(): Promise<void> {
  const socket = await connect("tcp://127.0.0.1:7000", schema);
  await socket.emit("Point", { x: 1, y: 2 });
  await socket.emit("Note", "hi");
  const total: bigint = await socket.request("Sum", [1n, 2n]);
  const greeting: string = await socket.request("Greet", { name: "ada" });
  const failed: boolean = await socket.request("Fail");
  const nothing: null = await socket.timeout(100).request("Slow", { ms: 5 });
  const mirrored: Shape = await socket.with({ signal: AbortSignal.timeout(100) }).request("Mirror", {
    small: 1,
    signed: -1,
    big: 1n,
    huge: -1n,
    ratio: 0.5,
    single: 0.5,
    flag: true,
    letter: "é",
    label: null,
    bytes: new Uint8Array([1]),
    counts: new Map([["a", 1]]),
    pair: [-1, 1n],
    kind: "Plain",
    kinds: [{ Wrapped: 7 }, { Pair: [1n, "p"] }, { Named: { z: "z" } }],
    nothing: null,
  });
  socket.on("Note", (text) => console.log(text.toUpperCase()));
  socket.on("Sum", (numbers) => numbers.reduce((a, b) => a + b, 0n));
  socket.on("Greet", async ({ name }) => `hello, ${name}`);
  const point: { x: number; y: number } = await socket.once("Point");
  console.log(total, greeting, failed, nothing, mirrored, point);

  // @ts-expect-error: x is an i32, a number
  await socket.emit("Point", { x: "1", y: 2 });
  // @ts-expect-error: Point needs y
  await socket.emit("Point", { x: 1 });
  // @ts-expect-error: Sum is a request, not an event
  await socket.emit("Sum", [1n]);
  // @ts-expect-error: Note is an event, not a request
  await socket.request("Note", "hi");
  // @ts-expect-error: Sum takes i64s, which are bigints
  await socket.request("Sum", [1, 2]);
  // @ts-expect-error: no such variant
  await socket.emit("Nope", 1);
  // @ts-expect-error: Sum's reply is a bigint
  const wrong: string = await socket.request("Sum", [1n]);
  // @ts-expect-error: a Sum handler returns a bigint
  socket.on("Sum", () => "no");
  // @ts-expect-error: Fail takes no payload
  await socket.request("Fail", true);
  // @ts-expect-error: Greet needs its payload
  await socket.request("Greet");
  // @ts-expect-error: Kind has no variant Other
  const kind: Kind = "Other";
  console.log(wrong, kind);
}

export async function server(): Promise<void> {
  const io = await Server.bind("/tmp/interop.sock", schema);
  io.on("connection", (socket) => {
    socket.on("Mirror", (shape) => shape);
    socket.on("Slow", ({ ms }) => new Promise<null>((resolve) => setTimeout(() => resolve(null), ms)));
    socket.on("Point", async ({ x, y }) => {
      const sum: bigint = await socket.request("Sum", [BigInt(x), BigInt(y)]);
      await socket.emit("Note", `sum from client: ${sum}`);
    });
    // @ts-expect-error: a Slow handler answers null (unit), not a number
    socket.on("Slow", () => 5);
  });
  const count: number = io.sockets.size;
  console.log(count);
}

export async function streams(): Promise<void> {
  const socket = await connect("tcp://127.0.0.1:7000", feed);
  for await (const n of socket.requestStream("Count", 5n)) {
    const item: bigint = n;
    console.log(item);
  }
  for await (const text of socket.timeout(100).requestStream("Blobs", { n: 3n, size: 8 })) console.log(text.toUpperCase());
  const endless = socket.with({ idleTimeoutMs: 100 }).requestStream("Endless");
  const first: IteratorResult<bigint> = await endless.next();
  endless.cancel();
  const produced: bigint = await socket.request("Produced");
  socket.on("Note", (n) => console.log(n + 1n));
  console.log(first, produced, endless.buffered);

  // @ts-expect-error: Count is a stream: requestStream, not request
  await socket.request("Count", 5n);
  // @ts-expect-error: Sum answers with one reply, not a stream
  socket.requestStream("Sum", [1n]);
  // @ts-expect-error: Count's items are bigints
  for await (const s of socket.requestStream("Count", 1n)) console.log(s satisfies string);
  // @ts-expect-error: this package serves no streams
  socket.on("Count", () => 1n);

  const uploads = await connect("tcp://127.0.0.1:7000", files);
  const total: bigint = await uploads.request("Sum", [1n]);
  // @ts-expect-error: Put carries an upload, which this package does not send
  await uploads.request("Put", "notes.txt");
  // @ts-expect-error: nor serve
  uploads.on("Put", () => 1n);
  console.log(total);
}
