"""How fast is the local endpoint? Requests/s at zero latency, and 1,000 open connections.

    python benchmarks/server_throughput.py [--requests 4000] [--concurrency 100]
        [--connections 1000] [--latency-for-connections 1.0]

Starts the simulator in its own process (as fanout does), then:

1. throughput: ``--requests`` tool-call completions (the article's Person
   schema, the body instructor sends in TOOLS mode) posted with aiohttp,
   ``--concurrency`` at a time, latency 0; prints requests/s. aiohttp is the
   cheapest Python client (see FINDINGS), so the figure is closer to the
   server's capacity than an instructor run would be; it still includes the
   client's CPU, on the same machine.
2. connections: ``--connections`` requests at once, each on its own
   connection, against a server with ``--latency-for-connections`` seconds
   of latency, so they are all open together; prints how many succeeded and
   the wall time (ideal: about one latency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.localserver import LocalServer, ServerConfig  # noqa: E402

PERSON_TOOLS_BODY = {
    "model": "fanout-sim",
    "messages": [{"role": "user", "content": "My name is John and I am 20 years old"}],
    "tool_choice": {"type": "function", "function": {"name": "Person"}},
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "Person",
                "description": "Correctly extracted `Person` with all the required parameters",
                "parameters": {
                    "properties": {
                        "name": {"title": "Name", "type": "string"},
                        "age": {"title": "Age", "type": "integer"},
                    },
                    "required": ["age", "name"],
                    "type": "object",
                },
            },
        }
    ],
}


async def throughput(url: str, requests: int, concurrency: int) -> tuple[float, int]:
    body = json.dumps(PERSON_TOOLS_BODY).encode()
    headers = {"content-type": "application/json", "authorization": "Bearer sk-local"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    errors = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                queue.get_nowait()
                async with session.post(f"{url}/chat/completions", data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1

        # warm up connections and caches
        async with session.post(f"{url}/chat/completions", data=body, headers=headers) as r:
            await r.read()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return requests / elapsed, errors


async def connections(url: str, count: int) -> tuple[int, int, float]:
    body = json.dumps(PERSON_TOOLS_BODY).encode()
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=count + 10, limit_per_host=count + 10)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> int:
            async with session.post(f"{url}/chat/completions", data=body, headers=headers) as r:
                await r.read()
                return r.status

        start = time.perf_counter()
        statuses = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
        elapsed = time.perf_counter() - start
    ok = sum(1 for s in statuses if s == 200)
    return ok, len(statuses) - ok, elapsed


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (Linux only; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--latency-for-connections", type=float, default=1.0)
    args = parser.parse_args()

    with LocalServer(ServerConfig(latency=0)) as server:
        before = cpu_seconds(server.pid)
        rate, errors = asyncio.run(throughput(server.base_url, args.requests, args.concurrency))
        after = cpu_seconds(server.pid)
        print(
            f"throughput: {rate:,.0f} requests/s ({args.requests} tool-call completions, "
            f"{args.concurrency} at a time, latency 0, aiohttp client, {errors} errors)"
        )
        if before is not None and after is not None and after > before:
            used = after - before
            print(
                f"server CPU: {used:.2f} s for {args.requests + 1} requests = "
                f"{1000 * used / (args.requests + 1):.3f} ms each, "
                f"{(args.requests + 1) / used:,.0f} requests/s per core"
            )
    config = ServerConfig(latency=args.latency_for_connections, jitter=0)
    with LocalServer(config) as server:
        ok, failed, wall = asyncio.run(connections(server.base_url, args.connections))
        print(
            f"connections: {ok}/{args.connections} answered 200 with all open at once "
            f"({failed} failed), wall {wall:.2f} s for a {args.latency_for_connections:g} s latency"
        )
    return 0 if errors == 0 and failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
