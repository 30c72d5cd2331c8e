import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import {
  DecodeError,
  ProtocolError,
  Reader,
  SchemaError,
  ValueError,
  Writer,
  decodeFrame,
  encodeFrame,
  fnv1a64,
  loadSchema,
  type Header,
} from "../src/index.js";
import { FIXTURE_TEXT, REPO_DIR, interop, sampleShape } from "./helpers.js";

/** The blocks of book/src/wire-vectors.txt, as field maps. */
function vectors(): Record<string, string>[] {
  const text = readFileSync(join(REPO_DIR, "book/src/wire-vectors.txt"), "utf8");
  return text
    .split(/\n\s*\n/)
    .map((block) => {
      const fields: Record<string, string> = {};
      for (const line of block.split("\n")) {
        if (line.startsWith("#")) continue;
        const m = /^(\w+):\s?(.*)$/.exec(line);
        if (m) fields[m[1]!] = m[2]!;
      }
      return fields;
    })
    .filter((f) => f["name"]);
}

const hexBytes = (hex: string) => Uint8Array.from(hex.trim().split(/\s+/), (h) => parseInt(h, 16));

const sumApi = loadSchema({
  format: 1,
  name: "SumApi",
  schema_text: "SumApi{Sum(Vec<i64>)->i64}",
  schema_id: "76548073a8190951",
  variants: [
    { index: 0, name: "Sum", shape: "newtype", type: { type: "seq", item: { type: "i64" } }, request: true, response: { type: "i64" } },
  ],
  types: {},
});
const chat = loadSchema({
  format: 1,
  name: "Chat",
  schema_text: "Chat{Message{text:String,total_clients:usize}}",
  schema_id: "d333250172d8d489",
  variants: [
    {
      index: 0,
      name: "Message",
      shape: "struct",
      fields: [
        { name: "text", type: { type: "string" } },
        { name: "total_clients", type: { type: "u64" } },
      ],
      request: false,
      response: null,
    },
  ],
  types: {},
});

test("every schema vector hashes to its id", () => {
  const schemas = vectors().filter((v) => "schema" in v);
  assert.ok(schemas.length >= 3);
  for (const v of schemas) assert.equal(fnv1a64(v["schema"]!).toString(16).padStart(16, "0"), v["id"], v["name"]);
});

test("every frame vector decodes and encodes back to the same bytes", () => {
  const frames = vectors().filter((v) => "frame" in v);
  assert.ok(frames.length >= 25, `only ${frames.length} frame vectors`);
  for (const v of frames) {
    const bytes = hexBytes(v["frame"]!);
    const { header, payload } = decodeFrame(bytes.subarray(4));
    assert.equal(header.kind, /^(\w+)/.exec(v["header"]!)![1], v["name"]);
    assert.deepEqual(encodeFrame(header, payload), bytes, v["name"]);
  }
});

test("frame vectors: header fields and payloads", () => {
  const byName = Object.fromEntries(vectors().map((v) => [v["name"], v]));
  const frame = (name: string) => decodeFrame(hexBytes(byName[name]!["frame"]!).subarray(4));

  const hello = frame("hello-lenient-auth").header;
  assert.ok(hello.kind === "Hello");
  assert.equal(hello.sends, 0x76548073a8190951n);
  assert.equal(hello.maxFrame, 65536);
  assert.equal(hello.lenient, true);
  assert.equal(Buffer.from(hello.auth!).toString(), "secret");

  const request = frame("request-sum");
  assert.deepEqual(request.header, { kind: "Request", id: 1n, timeoutMs: 10000 });
  const sum = sumApi.decodeVariant(request.payload);
  assert.equal(sum.variant.name, "Sum");
  assert.deepEqual(sum.payload, [1n, 2n, 3n, 4n, 5n, 6n]);
  assert.deepEqual(sumApi.encodeVariant("Sum", [1n, 2n, 3n, 4n, 5n, 6n]), request.payload);

  const negative = frame("request-sum-negative");
  assert.deepEqual(negative.header, { kind: "Request", id: 300n, timeoutMs: 0 });
  assert.deepEqual(sumApi.decodeVariant(negative.payload).payload, [-1n, 1000000n]);
  assert.equal(sumApi.decodeResponse(sum.variant, frame("response-negative").payload), -150n);
  assert.equal(sumApi.decodeResponse(sum.variant, frame("response-sum").payload), 21n);

  const event = frame("event-chat");
  assert.deepEqual(chat.decodeVariant(event.payload).payload, { text: "hello", total_clients: 1n });
  assert.deepEqual(chat.encodeVariant("Message", { text: "hello", total_clients: 1 }), event.payload);

  assert.deepEqual(frame("failure-response-too-large").header, {
    kind: "Failure",
    id: 6n,
    error: { kind: "ResponseTooLarge", size: 2000000n, max: 1048576n },
  });
  assert.deepEqual(frame("reject-version").header, { kind: "Reject", reason: { kind: "VersionMismatch", server: 1, client: 99 } });
  const differs = frame("reject-schema-differs").header;
  assert.ok(differs.kind === "Reject" && differs.reason.kind === "SchemaDiffers");
  assert.deepEqual(differs.reason.serverSchema, ["SumApi{Sum(Vec<i64>)->i64}", "SumApi{Sum(Vec<i64>)->i64}"]);
  assert.deepEqual(frame("close-frame-too-large").header, {
    kind: "Close",
    reason: { kind: "FrameTooLarge", size: 16777216n, max: 65536n },
  });
});

test("varints: 10-byte u64, zigzag i64 extremes, 19-byte u128", () => {
  const round = (write: (w: Writer) => void, read: (r: Reader) => unknown) => {
    const w = new Writer();
    write(w);
    const r = new Reader(w.bytes());
    return { bytes: [...w.bytes()], value: read(r) };
  };
  const max64 = round((w) => w.varint(2n ** 64n - 1n), (r) => r.varintBig(64));
  assert.deepEqual(max64.bytes, [255, 255, 255, 255, 255, 255, 255, 255, 255, 1]);
  assert.equal(max64.value, 2n ** 64n - 1n);
  const min64 = round((w) => w.zigzag(-(2n ** 63n)), (r) => r.zigzagBig(64));
  assert.deepEqual(min64.bytes, [255, 255, 255, 255, 255, 255, 255, 255, 255, 1]);
  assert.equal(min64.value, -(2n ** 63n));
  const maxI64 = round((w) => w.zigzag(2n ** 63n - 1n), (r) => r.zigzagBig(64));
  assert.deepEqual(maxI64.bytes, [254, 255, 255, 255, 255, 255, 255, 255, 255, 1]);
  assert.equal(round((w) => w.varint(2n ** 128n - 1n), (r) => r.varintBig(128)).bytes.length, 19);
  assert.deepEqual(round((w) => w.zigzag(-1), (r) => r.zigzagBig(32)).bytes, [1]);
  assert.deepEqual(round((w) => w.varint(300), (r) => r.varint32()).bytes, [0xac, 0x02]);
  // An 11-byte varint, or one over the type's width, is refused.
  assert.throws(() => new Reader(new Uint8Array([...Array(10).fill(0xff), 1])).varintBig(64), DecodeError);
  assert.throws(() => new Reader(new Uint8Array([0xff, 0xff, 0x04])).varint32(16), DecodeError);
});

test("the fixture's id is the FNV-1a 64 of its schema text", () => {
  const schema = interop();
  assert.equal(schema.id, 0x27cb21a1f7224d66n);
  assert.equal(schema.name, "Interop");
  const doc = JSON.parse(FIXTURE_TEXT) as { schema_id: string };
  doc.schema_id = "0000000000000000";
  assert.throws(() => loadSchema(doc), (e: Error) => e instanceof SchemaError && /FNV-1a/.test(e.message));
  assert.throws(() => loadSchema("{"), SchemaError);
});

test("a Shape with every kind round-trips, bytes as Rust's postcard writes them", () => {
  const schema = interop();
  const shape = sampleShape();
  const bytes = schema.encodeVariant("Mirror", shape);
  const decoded = schema.decodeVariant(bytes);
  assert.equal(decoded.variant.name, "Mirror");
  assert.deepEqual(decoded.payload, shape);
  // The head by hand: variant 4, small 255 (one byte), signed -32768 (zigzag 65535: ff ff 03).
  assert.deepEqual([...bytes.subarray(0, 5)], [4, 255, 0xff, 0xff, 0x03]);
  // The tail: kinds = [Plain, Wrapped(7), Pair(-1, "p")], then nothing (unit: no bytes).
  assert.deepEqual([...bytes.subarray(bytes.length - 8)], [3, 0, 1, 7, 2, 1, 1, 0x70]);
  const reply = schema.encodeResponse(schema.variant("Mirror"), shape);
  assert.deepEqual(schema.decodeResponse(schema.variant("Mirror"), reply), shape);
});

test("f32, f64, char, option, unit and i8 encode as postcard does", () => {
  const schema = interop();
  const codec = schema.codec;
  const enc = (type: Parameters<typeof codec.encode>[0], v: unknown) => {
    const w = new Writer();
    codec.encode(type, v, "v", w);
    return [...w.bytes()];
  };
  assert.deepEqual(enc({ type: "f32" }, 3.25), [0, 0, 0x50, 0x40]);
  assert.deepEqual(enc({ type: "f64" }, 1), [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
  assert.deepEqual(enc({ type: "char" }, "é"), [2, 0xc3, 0xa9]);
  assert.deepEqual(enc({ type: "option", some: { type: "u8" } }, null), [0]);
  assert.deepEqual(enc({ type: "option", some: { type: "u8" } }, 5), [1, 5]);
  assert.deepEqual(enc({ type: "unit" }, null), []);
  assert.deepEqual(enc({ type: "i8" }, -128), [0x80]);
  assert.deepEqual(enc({ type: "bytes" }, new Uint8Array([1, 2])), [2, 1, 2]);
  assert.deepEqual(enc({ type: "array", item: { type: "u16" }, len: 2 }, [1, 300]), [1, 0xac, 0x02]);
});

test("a value that does not fit says which field and what type", () => {
  const schema = interop();
  const bad = (name: string, payload: unknown, pattern: RegExp) =>
    assert.throws(
      () => schema.encodeVariant(name, payload),
      (e: Error) => e instanceof ValueError && pattern.test(e.message),
      `${name} ${String(payload)}`,
    );
  bad("Point", { x: 1, y: "2" }, /^Point\.y: expected i32 .* got the string "2"/);
  bad("Point", { x: 1 }, /^Point\.y: expected i32/);
  bad("Point", { x: 1, y: 2, z: 3 }, /^Point\.z: expected no such field/);
  bad("Point", { x: 2 ** 31, y: 0 }, /^Point\.x: expected i32 \(an integer number from -2147483648 to 2147483647\)/);
  bad("Sum", [1n, 1.5], /^Sum\[1\]: expected i64/);
  bad("Sum", [2n ** 63n], /^Sum\[0\]: expected i64/);
  bad("Nope", undefined, /expected a variant name \(Note, Point, Sum/);
  const shape = { ...sampleShape(), kinds: ["Plain", { Wrapped: -1 }] };
  bad("Mirror", shape, /^Mirror\.kinds\[1\]\.Wrapped: expected u32/);
  bad("Mirror", { ...sampleShape(), kind: "Wrapped" }, /^Mirror\.kind: expected \{ Wrapped: value \}/);
  bad("Mirror", { ...sampleShape(), letter: "ab" }, /^Mirror\.letter: expected a string of one character/);
  bad("Mirror", { ...sampleShape(), counts: { a: 1 } }, /^Mirror\.counts: expected a Map/);
});

test("garbage payloads are DecodeErrors, never crashes", () => {
  const schema = interop();
  const good = schema.encodeVariant("Mirror", sampleShape());
  // Every truncation and a byte flipped at every position: a DecodeError or a value, nothing else.
  for (let n = 0; n < good.length; n++) {
    assert.throws(() => schema.decodeVariant(good.subarray(0, n)), DecodeError);
  }
  for (let i = 0; i < good.length; i++) {
    const copy = new Uint8Array(good);
    copy[i] = copy[i]! ^ 0xff;
    try {
      schema.decodeVariant(copy);
    } catch (e) {
      assert.ok(e instanceof DecodeError, String(e));
    }
  }
  assert.throws(() => schema.decodeVariant(new Uint8Array([9])), /no variant with index 9/);
  // A huge announced length allocates nothing.
  assert.throws(() => schema.decodeVariant(new Uint8Array([2, 0xff, 0xff, 0xff, 0xff, 0x0f])), DecodeError);
  // Invalid UTF-8.
  assert.throws(() => schema.decodeVariant(new Uint8Array([0, 2, 0xc3, 0x28])), /UTF-8/);
});

test("an unknown frame kind or garbage header is a ProtocolError naming it", () => {
  assert.throws(() => decodeFrame(new Uint8Array([19])), (e: Error) => e instanceof ProtocolError && /unknown frame kind 19 .*kinds 0 to 18/.test(e.message));
  assert.throws(() => decodeFrame(new Uint8Array([])), ProtocolError);
  assert.throws(() => decodeFrame(new Uint8Array([0, 1, 2])), ProtocolError);
  assert.throws(() => decodeFrame(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), ProtocolError);
});

test("upload frames (16 to 18): byte-exact by the postcard rules, and round trips", () => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").replace(/(..)(?!$)/g, "$1 ");
  const u64Max = (1n << 64n) - 1n;
  const cases: [Header, Uint8Array | undefined, string][] = [
    // tag 16, id 1, then the payload (the u64 42)
    [{ kind: "UploadItem", id: 1n }, new Uint8Array([0x2a]), "00 00 00 03 10 01 2a"],
    // id 300 = ac 02; the payload runs to the end
    [{ kind: "UploadItem", id: 300n }, new Uint8Array([3, 0x61, 0x62, 0x63]), "00 00 00 07 10 ac 02 03 61 62 63"],
    // tag 17, id, None
    [{ kind: "UploadEnd", id: 300n, error: null }, undefined, "00 00 00 04 11 ac 02 00"],
    // Some(HandlerFailed("x")): 01, variant 6, the string
    [{ kind: "UploadEnd", id: 2n, error: { kind: "HandlerFailed", message: "x" } }, undefined, "00 00 00 06 11 02 01 06 01 78"],
    // Some(ResponseTooLarge { size 9, max 8 })
    [{ kind: "UploadEnd", id: 2n, error: { kind: "ResponseTooLarge", size: 9n, max: 8n } }, undefined, "00 00 00 06 11 02 01 04 09 08"],
    // tag 18, id 1, items 512 = 80 04, bytes 131072 = 80 80 08
    [{ kind: "UploadCredit", id: 1n, items: 512, bytes: 131072n }, undefined, "00 00 00 07 12 01 80 04 80 80 08"],
    // the extremes: a 10-byte id, u32::MAX items (5 bytes), u64::MAX bytes
    [
      { kind: "UploadCredit", id: u64Max, items: 0xffffffff, bytes: u64Max },
      undefined,
      "00 00 00 1a 12 ff ff ff ff ff ff ff ff ff 01 ff ff ff ff 0f ff ff ff ff ff ff ff ff ff 01",
    ],
  ];
  for (const [header, payload, bytes] of cases) {
    const frame = encodeFrame(header, payload);
    assert.equal(hex(frame), bytes, header.kind);
    const decoded = decodeFrame(frame.subarray(4));
    assert.deepEqual(decoded.header, header);
    assert.deepEqual([...decoded.payload], [...(payload ?? [])]);
  }
});
