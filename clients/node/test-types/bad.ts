// Must NOT compile: every line marked ERROR is a type error, and no other
// line is (test/types.test.ts checks both).
import { connect, loadSchema } from "../dist/index.js";
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
