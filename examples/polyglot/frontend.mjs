// The Node front end of `cargo run --example polyglot`: submits texts to the
// Rust coordinator and hears every result, with the netsock package in
// clients/node.
//
//     node frontend.mjs SOCKET_PATH SCHEMA_JSON CLIENT_ENTRY
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [addr, schemaPath, entry] = process.argv.slice(2);
const { connect, loadSchema } = await import(pathToFileURL(entry).href);

const schema = loadSchema(readFileSync(schemaPath, "utf8"));
const socket = await connect(addr, schema, { reconnect: false });

const texts = ["netsock is great", "the build was slow", "I love typed sockets"];
let heard = 0;
const allHeard = new Promise((resolve) => {
  socket.on("Classified", ({ text, label, by }) => {
    console.log(`[node] heard: ${JSON.stringify(text)} is ${label} (by ${by})`);
    if (++heard === texts.length) resolve();
  });
});

for (const text of texts) {
  const label = await socket.request("Submit", { text });
  console.log(`[node] submitted ${JSON.stringify(text)}: ${label}`);
}
await allHeard;
await socket.close();
console.log("[node] done");
