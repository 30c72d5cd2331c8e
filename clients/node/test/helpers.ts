/** Shared by the tests: the fixture, temp dirs, the Rust interop binary. */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { decodeFrame, encodeFrame, loadSchema, type Header } from "../src/index.js";
import { connect as netConnect, type Socket as NetSocket } from "node:net";
import type { EventMap } from "../src/index.js";

/** clients/node, whether run from test/ or dist-test/test/. */
export const PACKAGE_DIR = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
})();
export const REPO_DIR = resolve(PACKAGE_DIR, "../..");

export const FIXTURE_TEXT = readFileSync(join(PACKAGE_DIR, "test/interop.json"), "utf8");

/** The Interop schema, typed with an event map written as `netsock-types` writes it. */
export type Shape = {
  small: number;
  signed: number;
  big: bigint;
  huge: bigint;
  ratio: number;
  single: number;
  flag: boolean;
  letter: string;
  label: string | null;
  bytes: Uint8Array;
  counts: Map<string, number>;
  pair: [number, bigint];
  kind: Kind;
  kinds: Array<Kind>;
  nothing: null;
};
export type Kind = "Plain" | { Wrapped: number } | { Pair: [bigint, string] } | { Named: { z: string } };
export type Interop = {
  Note: { payload: string; request: false; response: never };
  Point: { payload: { x: number; y: number }; request: false; response: never };
  Sum: { payload: Array<bigint>; request: true; response: bigint };
  Greet: { payload: { name: string }; request: true; response: string };
  Mirror: { payload: Shape; request: true; response: Shape };
  Slow: { payload: { ms: number }; request: true; response: null };
  Fail: { payload: undefined; request: true; response: boolean };
};
export const interop = () => loadSchema<Interop>(FIXTURE_TEXT);
const _check: EventMap = {} as Interop;
void _check;

/** The Rust example's `sample_shape()`. */
export function sampleShape(): Shape {
  return {
    small: 255,
    signed: -32768,
    big: 2n ** 64n - 1n,
    huge: -(2n ** 127n),
    ratio: -1.5e300,
    single: 3.25,
    flag: true,
    letter: "é",
    label: "grüße 🌍",
    bytes: new Uint8Array([0, 1, 127, 128, 255]),
    counts: new Map([
      ["a", 1],
      ["b", 300],
    ]),
    pair: [-128, 2n ** 128n - 1n],
    kind: { Named: { z: "z" } },
    kinds: ["Plain", { Wrapped: 7 }, { Pair: [-1n, "p"] }],
    nothing: null,
  };
}

/** A fresh temp dir, removed by the returned function. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "netsock-node-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let built: string | null = null;

/**
 * The Rust `interop` example: `NETSOCK_INTEROP_BIN`, else built with cargo
 * (into `CARGO_TARGET_DIR` or ./target).
 */
export function interopBin(): string {
  if (built) return built;
  const fromEnv = process.env["NETSOCK_INTEROP_BIN"];
  if (fromEnv) return (built = fromEnv);
  const result = spawnSync("cargo", ["build", "--quiet", "--locked", "-p", "examples", "--example", "interop"], {
    cwd: REPO_DIR,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (result.status !== 0) throw new Error("cargo build -p examples --example interop failed");
  const target = process.env["CARGO_TARGET_DIR"] ?? join(REPO_DIR, "target");
  return (built = resolve(REPO_DIR, target, "debug/examples/interop"));
}

/** `interop serve ADDR`, once it printed its address; stop it by closing its stdin. */
export async function serveRust(addr: string): Promise<{ child: ChildProcessWithoutNullStreams; addr: string; stop: () => Promise<void> }> {
  const child = spawn(interopBin(), ["serve", addr]);
  child.stderr.on("data", (d: Buffer) => process.stderr.write(d));
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`interop serve exited with ${code} before listening`)));
  });
  const m = /^listening on (.+)$/.exec(first);
  if (!m) throw new Error(`unexpected first line from interop serve: ${first}`);
  const bound = m[1]!; // `tcp://127.0.0.1:PORT` or `unix:///PATH`, both forms `connect` takes
  return {
    child,
    addr: bound,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.stdin.end();
      }),
  };
}

/** Runs `interop ARGS` to the end: its exit code and output. */
export function runRust(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(interopBin(), args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Resolves with the first value `register` hands its callback, or rejects after `ms` (a failure, not a timing assertion). */
export function waitFor<T>(what: string, register: (done: (value: T) => void) => void, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** The Feed schema of tests/src/feed.rs (the Rust `stream_producer` serves it), typed as `netsock-types` writes it. */
export const FEED_TEXT = readFileSync(join(PACKAGE_DIR, "test/feed.json"), "utf8");
export type Feed = {
  Count: { payload: bigint; request: true; response: never; stream: bigint };
  Blobs: { payload: { n: bigint; size: number }; request: true; response: never; stream: string };
  FailAfter: { payload: bigint; request: true; response: never; stream: bigint };
  Endless: { payload: undefined; request: true; response: never; stream: bigint };
  Silent: { payload: undefined; request: true; response: never; stream: bigint };
  StallAfter: { payload: bigint; request: true; response: never; stream: bigint };
  Produced: { payload: undefined; request: true; response: bigint };
  Sum: { payload: Array<bigint>; request: true; response: bigint };
  Note: { payload: bigint; request: false; response: never };
};
export const feed = () => loadSchema<Feed>(FEED_TEXT);

let producerPath: string | null = null;

/**
 * The Rust `stream_producer` (tests/src/bin/stream_producer.rs), found as
 * clients/python/tests/test_streams.py finds it: `NETSOCK_STREAM_PRODUCER_BIN`,
 * else next to `NETSOCK_INTEROP_BIN` (`<target>/debug/examples/interop` →
 * `<target>/debug/stream_producer`), else built with cargo.
 */
export function producerBin(): string {
  if (producerPath) return producerPath;
  const fromEnv = process.env["NETSOCK_STREAM_PRODUCER_BIN"];
  if (fromEnv) return (producerPath = fromEnv);
  const interopPath = process.env["NETSOCK_INTEROP_BIN"];
  if (interopPath) {
    const candidate = resolve(dirname(interopPath), "../stream_producer");
    if (existsSync(candidate)) return (producerPath = candidate);
  }
  const result = spawnSync("cargo", ["build", "--quiet", "--locked", "-p", "tests", "--bin", "stream_producer"], {
    cwd: REPO_DIR,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (result.status !== 0) throw new Error("cargo build -p tests --bin stream_producer failed");
  const target = process.env["CARGO_TARGET_DIR"] ?? join(REPO_DIR, "target");
  return (producerPath = resolve(REPO_DIR, target, "debug/stream_producer"));
}

/** `stream_producer tcp|unix [PATH]`, once it printed its address; stop it by closing its stdin (or kill it). */
export async function startProducer(
  transport: "tcp" | "unix",
  path?: string,
): Promise<{ child: ChildProcessWithoutNullStreams; addr: string; stop: () => Promise<void> }> {
  const child = spawn(producerBin(), path ? [transport, path] : [transport]);
  child.stdin.on("error", () => {}); // closing it after a kill
  child.stderr.on("data", (d: Buffer) => process.stderr.write(d));
  const lines = createInterface({ input: child.stdout });
  const first = await waitFor<string>(
    "stream_producer's address",
    (done) => {
      lines.once("line", done);
      child.once("exit", (code) => done(`exited with ${code}`));
    },
    60_000,
  );
  lines.close();
  if (first.startsWith("exited with")) throw new Error(`stream_producer ${first} before listening`);
  return {
    child,
    addr: first.trim(), // `HOST:PORT` or a Unix socket path: both forms `connect` takes
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.stdin.end();
      }),
  };
}

/** A raw connection to `addr` (a path, `unix:PATH` or `HOST:PORT`) that
 * reads whole frames: `write` sends bytes as they are, `send` one frame. */
export async function rawPeer(addr: string): Promise<{
  sock: NetSocket;
  next: () => Promise<Header | "end">;
  write: (bytes: Uint8Array) => void;
  send: (h: Header, payload?: Uint8Array) => void;
}> {
  const target = addr.startsWith("unix:") ? addr.slice(5).replace(/^\/\//, "") : addr;
  const [host, port] = target.includes("/") ? [undefined, undefined] : target.split(":");
  const sock = host !== undefined && port !== undefined ? netConnect(Number(port), host) : netConnect(target);
  await new Promise((resolve, reject) => sock.once("connect", resolve).once("error", reject));
  let buf = Buffer.alloc(0);
  const queue: (Header | "end")[] = [];
  const waiters: ((h: Header | "end") => void)[] = [];
  const push = (h: Header | "end") => (waiters.length ? waiters.shift()!(h) : queue.push(h));
  sock.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const len = buf.readUInt32BE(0);
      push(decodeFrame(buf.subarray(4, 4 + len)).header);
      buf = buf.subarray(4 + len);
    }
  });
  sock.on("close", () => push("end"));
  sock.on("error", () => {});
  return {
    sock,
    next: () => (queue.length ? Promise.resolve(queue.shift()!) : waitFor("a frame", (done) => waiters.push(done))),
    write: (bytes) => sock.write(bytes),
    send: (h, payload) => sock.write(encodeFrame(h, payload)),
  };
}
