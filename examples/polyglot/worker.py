"""The Python worker of `cargo run --example polyglot`: classifies texts for
the Rust coordinator, with the netsock package in clients/python.

    python3 worker.py SOCKET_PATH SCHEMA_JSON
"""

import asyncio
import sys

import netsock

POSITIVE = ("good", "great", "love", "fast")


async def main(addr: str, schema_path: str) -> None:
    schema = netsock.Schema.load(schema_path)
    sock = await netsock.connect(addr, schema, reconnect=False)
    stop = asyncio.Event()

    @sock.on("Classify")
    async def classify(text: str) -> str:
        label = "positive" if any(w in text.lower() for w in POSITIVE) else "negative"
        print(f"[python] classified {text!r} as {label}", flush=True)
        return label

    sock.on("Classified", lambda text, label, by: None)  # everyone hears results
    sock.on("Stop", lambda: stop.set())
    await sock.emit("Ready", worker="python")
    await stop.wait()
    print("[python] told to stop; bye", flush=True)
    await sock.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
