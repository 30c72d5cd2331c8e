#!/usr/bin/env python3
"""Calls the Rust sum-numbers service (examples/sum_numbers.rs) from Python.

    pip install ./clients/python
    cargo run --example sum_numbers -- serve /tmp/sum.sock    # in another terminal
    python3 clients/python/examples/sum_client.py /tmp/sum.sock

Prints 21. `sum_api.json`, next to this file, is the schema JSON of the
service's enum:

    #[derive(Events, Serialize, Deserialize)]
    enum SumApi {
        #[request(response = i64)]
        Sum(Vec<i64>),
    }
"""

import asyncio
import sys
from pathlib import Path

import netsock

SCHEMA = netsock.Schema.load(Path(__file__).with_name("sum_api.json"))


async def main(addr: str) -> None:
    async with await netsock.connect(addr, SCHEMA, reconnect=False) as socket:
        print(await socket.request("Sum", [1, 2, 3, 4, 5, 6]))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: sum_client.py ADDR   (a Unix socket path or tcp://host:port)")
    asyncio.run(main(sys.argv[1]))
