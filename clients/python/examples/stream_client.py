#!/usr/bin/env python3
"""Consumes streams from a Rust server: the `Feed` enum of the Rust stream
tests (tests/src/feed.rs), served by the `stream_producer` test binary.

    pip install ./clients/python
    cargo run -p tests --bin stream_producer -- unix /tmp/feed.sock   # prints the address; keep it running
    python3 clients/python/examples/stream_client.py /tmp/feed.sock

Prints 0 to 4, the count of a 10,000-item stream (ten credit windows: the
server waits for this side to read), then the error that ends a failing
stream. The schema JSON is `clients/python/tests/feed.json`:

    #[derive(Events, Serialize, Deserialize)]
    enum Feed {
        #[request(stream = u64)]
        Count(u64),
        #[request(stream = u64)]
        FailAfter(u64),
        ...
    }
"""

import asyncio
import sys
from pathlib import Path

import netsock

SCHEMA = netsock.Schema.load(Path(__file__).parent.parent / "tests" / "feed.json")


async def main(addr: str) -> None:
    async with await netsock.connect(addr, SCHEMA, reconnect=False) as socket:
        async for n in await socket.request_stream("Count", 5):
            print(n)

        total = 0
        async for _ in await socket.request_stream("Count", 10_000):
            total += 1
        print(f"{total} items")

        # An endless stream, left early: `async with` sends Cancel.
        async with await socket.request_stream("Endless") as stream:
            async for n in stream:
                if n == 100:
                    break

        try:
            async for n in await socket.request_stream("FailAfter", 2):
                print(n)
        except netsock.HandlerFailed as e:
            print(f"failed: {e.message}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: stream_client.py ADDR   (a Unix socket path or tcp://host:port)")
    asyncio.run(main(sys.argv[1]))
