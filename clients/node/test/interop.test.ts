/** Against the Rust `interop` example: our client with its server, our server with its client. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  CancelledError,
  NoHandlerError,
  RejectedError,
  Server,
  TimeoutError,
  connect,
  loadSchema,
} from "../src/index.js";
import { FIXTURE_TEXT, interop, runRust, sampleShape, serveRust, tempDir, waitFor, type Interop } from "./helpers.js";

const tmp = tempDir();
after(() => tmp.cleanup());

for (const transport of ["tcp", "unix"] as const) {
  describe(`our client against the Rust server over ${transport}`, () => {
    let server: Awaited<ReturnType<typeof serveRust>>;
    before(async () => {
      server = await serveRust(transport === "tcp" ? "tcp://127.0.0.1:0" : join(tmp.dir, "rust-serve.sock"));
    });
    after(() => server.stop());

    test("events both ways, every request, timeout, cancel and NoHandler", async () => {
      const socket = await connect(server.addr, interop(), { reconnect: false });
      try {
        assert.ok(socket.id > 0n);
        // The server calls our Sum when we emit Point.
        socket.on("Sum", (numbers) => numbers.reduce((a, b) => a + b, 0n));
        const notes: string[] = [];
        let noted: ((n: string) => void) | null = null;
        socket.on("Note", (text) => {
          notes.push(text);
          noted?.(text);
        });
        const next = () => waitFor<string>("a Note", (done) => (noted = done));

        let note = next();
        await socket.emit("Note", "hi");
        assert.equal(await note, "echo: hi");
        note = next();
        await socket.emit("Point", { x: 2, y: 40 });
        assert.equal(await note, "sum from client: 42");

        assert.equal(await socket.request("Sum", [1n, 2n, 3n, -4n]), 2n);
        assert.equal(await socket.request("Sum", [2n ** 62n, 2n ** 62n - 1n]), 2n ** 63n - 1n);
        assert.equal(await socket.request("Greet", { name: "ada" }), "hello, ada");
        assert.equal(await socket.request("Greet", { name: "grüße 🌍" }), "hello, grüße 🌍");
        const shape = sampleShape();
        assert.deepEqual(await socket.request("Mirror", shape), shape);

        await assert.rejects(socket.timeout(100).request("Slow", { ms: 5000 }), TimeoutError);
        const controller = new AbortController();
        const slow = socket.with({ signal: controller.signal }).request("Slow", { ms: 5000 });
        controller.abort();
        await assert.rejects(slow, CancelledError);
        assert.equal(await socket.request("Slow", { ms: 1 }), null);
        await assert.rejects(socket.request("Fail"), (e: Error) => e instanceof NoHandlerError && e.event === "Fail");
        assert.deepEqual(notes, ["echo: hi", "sum from client: 42"]);
      } finally {
        await socket.close();
      }
      assert.equal(socket.connected, false);
    });

    test("a client built from another schema is rejected, saying which variants differ", async () => {
      const doc = JSON.parse(FIXTURE_TEXT) as { schema_text: string; schema_id: string; variants: { name: string }[] };
      doc.schema_text = doc.schema_text.replace("Note(String)", "Memo(String)");
      doc.variants[0]!.name = "Memo";
      const { fnv1a64 } = await import("../src/index.js");
      doc.schema_id = fnv1a64(doc.schema_text).toString(16).padStart(16, "0");
      await assert.rejects(connect(server.addr, loadSchema(doc), { reconnect: false }), (e: Error) => {
        assert.ok(e instanceof RejectedError, String(e));
        assert.ok(e.reason.kind === "SchemaDiffers" || e.reason.kind === "SchemaMismatch", e.reason.kind);
        assert.match(e.message, /only the server has Note\(String\); only this side has Memo\(String\)/);
        return true;
      });
      // Lenient, the same client is let in.
      const lenient = await connect(server.addr, loadSchema(doc), { reconnect: false, lenient: true });
      await lenient.close();
    });
  });
}

for (const transport of ["tcp", "unix"] as const) {
  test(`our server passes the Rust client's checks over ${transport}`, async () => {
    const io = await Server.bind(transport === "tcp" ? "tcp://127.0.0.1:0" : join(tmp.dir, "node-serve.sock"), interop());
    io.on("connection", (socket) => {
      socket.on("Sum", (numbers) => numbers.reduce((a, b) => a + b, 0n));
      socket.on("Greet", ({ name }) => `hello, ${name}`);
      socket.on("Mirror", (shape) => shape);
      socket.on("Slow", ({ ms }, { signal }) => new Promise<null>((resolve) => {
        const timer = setTimeout(() => resolve(null), ms);
        signal.addEventListener("abort", () => clearTimeout(timer));
      }));
      socket.on("Note", (text) => socket.emit("Note", `echo: ${text}`));
      socket.on("Point", async ({ x, y }) => {
        let note: string;
        try {
          note = `sum from client: ${await socket.request("Sum", [BigInt(x), BigInt(y)])}`;
        } catch (e) {
          note = `the client's Sum failed: ${(e as Error).message}`;
        }
        await socket.emit("Note", note);
      });
    });
    try {
      const { code, stdout, stderr } = await runRust(["call", io.address]);
      assert.equal(code, 0, `interop call failed:\n${stdout}\n${stderr}`);
      assert.match(stdout, /all checks passed/);
    } finally {
      await io.close();
    }
  });
}

test("interop schema, when it exists, prints exactly the fixture", async (t) => {
  const { code, stdout, stderr } = await runRust(["schema"]);
  if (code !== 0) {
    const reason = `interop schema is not available yet (exit ${code}: ${stderr.trim().split("\n").pop()})`;
    console.log(`skipped: ${reason}`);
    t.skip(reason);
    return;
  }
  assert.deepEqual(JSON.parse(stdout), JSON.parse(FIXTURE_TEXT));
});

// The types line up with the fixture (checked at compile time).
const _typed: Interop["Sum"]["response"] = 0n;
void _typed;
