"""The Batch API run mode: what a row costs the client, via batch and online.

    python -m benchmarks.batch [--rows 2000] [--repeat 3]

Against the simulator in its own process (loopback, no internet), the same rows run
online (as_completed + Semaphore(64), latency 0) and via batch (the simulator's time
scale makes the batch itself take ~1 s), alternated in one process. Reported per row:
the client's CPU time (``time.process_time``; the simulator's CPU is in another
process) and the wall time, medians over the repeats; and, on their own, the two
pieces only a batch run has: writing a request line and reading an output line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import instructor

from core.batch.answers import parse_line
from core.batch.job import BatchSettings
from core.batch.requests import request_line
from core.batch.run import batch_run
from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import Engine
from core.localserver import LocalServer, ServerConfig
from core.models import Person
from core.prepared import PreparedRequest


def texts(n: int) -> list[str]:
    return [f"My name is Ann Number{i} and I am {18 + i % 70} years old." for i in range(n)]


async def one(base_url: str, n: int, via: str) -> tuple[float, float, int]:
    records = records_from_texts(texts(n))
    async with Engine(choose_endpoint(base_url, "fanout-sim")) as engine:
        cpu, wall = time.process_time(), time.perf_counter()
        if via == "online":
            async with engine.run(
                records, Person, strategy="as_completed_semaphore", concurrency=64
            ) as run:
                stats = await run.execute()
        else:
            settings = BatchSettings(poll_min=0.05, poll_max=0.2)
            async with batch_run(
                engine, records, Person, settings=settings, concurrency=64, store_path=None
            ) as run:
                stats = await run.execute()
        return time.process_time() - cpu, time.perf_counter() - wall, stats.ok


def pieces(n: int) -> tuple[float, float]:
    prepared = PreparedRequest(Person, instructor.Mode.TOOLS, "fanout-sim")
    records = records_from_texts(texts(n))
    began = time.process_time()
    for record in records:
        request_line(prepared, record)
    write = (time.process_time() - began) / n
    arguments = json.dumps({"name": "Ann Number1", "age": 19})
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "fanout-sim",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "Person", "arguments": arguments},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48},
    }
    line = {"custom_id": "row-1", "response": {"status_code": 200, "body": body}, "error": None}
    raw = json.dumps(line)
    began = time.process_time()
    for _ in range(n):
        parse_line(json.loads(raw), prepared, None)
    read = (time.process_time() - began) / n
    return write, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = ServerConfig(latency=0.0, batch_time_scale=3600.0, batch_duration=3600.0)
    results: dict[str, list[tuple[float, float]]] = {"online": [], "batch": []}
    with LocalServer(config) as server:
        for _ in range(args.repeat):
            for via in ("online", "batch"):
                cpu, wall, ok = asyncio.run(one(server.base_url, args.rows, via))
                assert ok == args.rows, (via, ok)
                results[via].append((cpu, wall))
    n = args.rows
    print(f"{n} rows, medians of {args.repeat} (alternated):")
    for via, runs in results.items():
        cpu = statistics.median(c for c, _ in runs) / n * 1e6
        wall = statistics.median(w for _, w in runs)
        print(f"  {via:<6}  client CPU {cpu:7.1f} us/row   wall {wall:6.2f} s")
    write, read = pieces(n)
    print(
        f"  batch pieces: write a request line {write * 1e6:.1f} us, "
        f"read a line {read * 1e6:.1f} us"
    )


if __name__ == "__main__":
    main()
