// Must NOT compile: every line marked ERROR is a type error, and no other
// line is (test/types.test.ts checks both).
import { connect, loadSchema } from "../dist/index.js";
import type { Feed } from "./generated/feed.js";
import type { Files } from "./generated/files.js";
import type { Interop } from "./generated/interop.js";

export async function misuse(json: string): Promise<void> {
  const socket = await connect("tcp://127.0.0.1:7000", loadSchema<Interop>(json));
  await socket.emit("Point", { x: 1, y: "2" }); // ERROR
  await socket.emit("Greet", { name: "ada" }); // ERROR
  const n: number = await socket.request("Sum", [1n]); // ERROR
  await socket.request("Mirror", { small: 1 }); // ERROR
  socket.on("Note", (text: number) => console.log(text)); // ERROR
  console.log(n);
}

export async function streamMisuse(json: string, uploadsJson: string): Promise<void> {
  const socket = await connect("tcp://127.0.0.1:7000", loadSchema<Feed>(json));
  await socket.request("Count", 3n); // ERROR
  socket.requestStream("Produced"); // ERROR
  socket.requestStream("Count", 3); // ERROR
  const text: string | undefined = (await socket.requestStream("Count", 3n).next()).value; // ERROR
  socket.on("Endless", () => 1n); // ERROR
  const uploads = await connect("tcp://127.0.0.1:7000", loadSchema<Files>(uploadsJson));
  await uploads.request("Put", "notes.txt"); // ERROR
  console.log(text);
}
