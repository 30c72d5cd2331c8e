/** netsock-types: what it writes, and that the types catch misuse at compile time. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";

import { generateTypes } from "../src/gen-types.js";
import type { SchemaDocument } from "../src/index.js";
import { FIXTURE_TEXT, PACKAGE_DIR } from "./helpers.js";

const TSC = join(PACKAGE_DIR, "node_modules/typescript/bin/tsc");
const GENERATED = join(PACKAGE_DIR, "test-types/generated/interop.d.ts");
const GENERATED_FEED = join(PACKAGE_DIR, "test-types/generated/feed.d.ts");
const GENERATED_FILES = join(PACKAGE_DIR, "test-types/generated/files.d.ts");

function tsc(file: string): { status: number | null; output: string } {
  const r = spawnSync(
    process.execPath,
    [TSC, "--noEmit", "--strict", "--target", "ES2022", "--module", "NodeNext", "--moduleResolution", "NodeNext", "--types", "node", file],
    { cwd: PACKAGE_DIR, encoding: "utf8" },
  );
  return { status: r.status, output: r.stdout + r.stderr };
}

before(() => {
  mkdirSync(join(PACKAGE_DIR, "test-types/generated"), { recursive: true });
  // The CLI, as a user runs it (the package's bin).
  for (const [input, output] of [
    ["interop.json", GENERATED],
    ["feed.json", GENERATED_FEED],
    ["uploads.json", GENERATED_FILES],
  ] as const) {
    const r = spawnSync(process.execPath, [join(PACKAGE_DIR, "dist/gen-types.js"), join(PACKAGE_DIR, "test", input), "-o", output], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
  }
});

test("netsock-types types a stream request's items (stream) and an upload's (upload)", () => {
  const feed = readFileSync(GENERATED_FEED, "utf8");
  for (const line of [
    "export type Feed = {",
    "  Count: { payload: bigint; request: true; response: never; stream: bigint };",
    "  Blobs: { payload: { n: bigint; size: number }; request: true; response: never; stream: string };",
    "  Endless: { payload: undefined; request: true; response: never; stream: bigint };",
    "  Produced: { payload: undefined; request: true; response: bigint };",
    "  Note: { payload: bigint; request: false; response: never };",
  ]) {
    assert.ok(feed.includes(line), `missing: ${line}`);
  }
  const files = readFileSync(GENERATED_FILES, "utf8");
  assert.ok(files.includes("  Put: { payload: string; request: true; response: bigint; upload: Uint8Array };"), files);
  assert.ok(files.includes("  Sum: { payload: Array<bigint>; request: true; response: bigint };"), files);
});

test("netsock-types writes the event map and every named type", () => {
  const text = readFileSync(GENERATED, "utf8");
  assert.equal(text, generateTypes([JSON.parse(FIXTURE_TEXT) as SchemaDocument]));
  for (const line of [
    "export type Interop = {",
    "  Point: { payload: { x: number; y: number }; request: false; response: never };",
    "  Sum: { payload: Array<bigint>; request: true; response: bigint };",
    "  Slow: { payload: { ms: number }; request: true; response: null };",
    "  Fail: { payload: undefined; request: true; response: boolean };",
    "  | { Pair: [bigint, string] }",
  ]) {
    assert.ok(text.includes(line), `missing: ${line}`);
  }
  assert.match(text, /export type Shape = \{ small: number; .* huge: bigint; .* letter: string; label: string \| null; bytes: Uint8Array; counts: Map<string, number>; pair: \[number, bigint\]; kind: Kind; kinds: Array<Kind>; nothing: null \};/);
});

test("netsock-types refuses a document whose id is not its text's", () => {
  const doc = JSON.parse(FIXTURE_TEXT) as SchemaDocument;
  doc.schema_id = "0000000000000001";
  assert.throws(() => generateTypes([doc]), /FNV-1a/);
  const r = spawnSync(process.execPath, [join(PACKAGE_DIR, "dist/gen-types.js")], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: netsock-types/);
});

test("correct use of the generated types compiles (and each @ts-expect-error is an error)", () => {
  const { status, output } = tsc("test-types/ok.ts");
  assert.equal(status, 0, output);
});

test("misuse of the generated types does not compile, exactly on the lines marked ERROR", () => {
  const { status, output } = tsc("test-types/bad.ts");
  assert.notEqual(status, 0, "bad.ts compiled");
  const source = readFileSync(join(PACKAGE_DIR, "test-types/bad.ts"), "utf8").split("\n");
  const marked = source.flatMap((line, i) => (line.endsWith("// ERROR") ? [i + 1] : []));
  const reported = [...new Set([...output.matchAll(/bad\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1])))];
  assert.ok(marked.length >= 5);
  assert.deepEqual(reported, marked, output);
});
