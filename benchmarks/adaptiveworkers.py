"""adaptive-workers: ``--strategy adaptive`` in one process and on ``--workers 2``.

With worker processes the adaptive controller stays in the parent and learns
from what the workers relay (``core.workers.relay``). This measures whether
it learns as well there, on two rate-limited simulators (each started once, in
its own process), the configurations alternated (one process, 2 workers, ...)
so a shared machine's noise falls on all alike; medians reported:

- **rate-limited**: the server allows 100 requests a second (``rpm`` 6,000 over a 1 s
  window) at 0.1 s latency: far below what one process can send. Adaptive
  should settle just under the limit either way, with few 429s. A blind
  ``gather_semaphore`` at the same k on 2 workers is the reference for 429s.
- **past one core**: the server allows 2,000 requests/s at zero latency: more
  than one process can send, so the client's CPU is the limit and the
  controller grows to its ceiling.

Reported per configuration: rows/s over ``run.execute()`` (worker start-up
excluded), ok rows, the simulator's own 429 count and their share of all
requests it answered, the rate the controller learnt from the headers, its
limit at the end and the most it reached.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from benchmarks.common import GoalResult, Options, median, people, progress, records_of, table
from core.client import choose_endpoint
from core.engine import Engine
from core.gctune import quiet_gc
from core.localserver import LocalServer, ServerConfig
from core.models import Person

CONCURRENCY = 100


@dataclass(frozen=True)
class Scenario:
    name: str
    server: ServerConfig
    rows: int
    quick_rows: int
    configs: tuple[tuple[str, int], ...]
    """(strategy, workers) in the order they alternate."""


SCENARIOS = (
    Scenario(
        "rate-limited (100 requests/s, 0.1 s latency)",
        ServerConfig(latency=0.1, jitter=0.25, rpm=6_000, rate_window=1.0),
        1_500,
        500,
        (("adaptive", 1), ("adaptive", 2), ("gather_semaphore", 2)),
    ),
    Scenario(
        "past one core (2,000 requests/s, zero latency)",
        ServerConfig(latency=0.0, jitter=0.0, rpm=120_000, rate_window=1.0),
        6_000,
        1_500,
        (("adaptive", 1), ("adaptive", 2)),
    ),
)


async def one_run(
    server: LocalServer, texts: list[str], strategy: str, workers: int
) -> dict[str, Any]:
    before = server_counts(server)
    engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
    async with (
        engine,
        engine.run(
            records_of(texts), Person, strategy=strategy, concurrency=CONCURRENCY, workers=workers
        ) as run,
    ):
        start = time.perf_counter()
        with quiet_gc():
            stats = await run.execute()
        wall = time.perf_counter() - start
    after = server_counts(server)
    refused = after.get("rate_limited", 0) - before.get("rate_limited", 0)
    answered = after.get("completions", 0) - before.get("completions", 0) + refused
    limit = run.limiter
    return {
        "strategy": strategy,
        "workers": workers,
        "rows": len(texts),
        "ok": stats.ok,
        "wall_s": wall,
        "rows_per_s": len(texts) / wall,
        "server_429": refused,
        "server_answered": answered,
        "share_429": refused / answered if answered else 0.0,
        "learnt_rpm": limit.server_rpm if limit is not None else None,
        "final_limit": limit.limit if limit is not None else None,
        "max_limit": max((v for _, v in limit.history), default=limit.limit)
        if limit is not None
        else None,
        "controller_responses": limit.responses if limit is not None else None,
    }


def server_counts(server: LocalServer) -> dict[str, int]:
    """The simulator's own counters (``/health``): its 429s are what it refused."""
    url = server.base_url.removesuffix("/v1") + "/health"
    with urllib.request.urlopen(url, timeout=10) as answer:
        counts: dict[str, int] = json.loads(answer.read())["counts"]
    return counts


async def measure_async(options: Options) -> dict[str, Any]:
    raw: dict[str, Any] = {"concurrency": CONCURRENCY, "scenarios": [], "load_1min": []}
    for scenario in SCENARIOS:
        n = scenario.quick_rows if options.quick else scenario.rows
        texts = [text for text, _ in people(n)]
        runs: list[dict[str, Any]] = []
        with LocalServer(scenario.server) as server:
            await one_run(server, texts[:50], "adaptive", 1)  # warm the imports
            await asyncio.sleep(scenario.server.rate_window)  # and let its window empty
            for repeat in range(options.repeat):
                for strategy, workers in scenario.configs:
                    progress(
                        options,
                        f"adaptive-workers: {scenario.name}, {strategy} --workers {workers} "
                        f"(rep {repeat + 1})",
                    )
                    if hasattr(os, "getloadavg"):
                        raw["load_1min"].append(os.getloadavg()[0])
                    result = await one_run(server, texts, strategy, workers)
                    result["repeat"] = repeat
                    runs.append(result)
                    await asyncio.sleep(scenario.server.rate_window)  # a fresh window each
        raw["scenarios"].append({"name": scenario.name, "rows": n, "runs": runs})
    return raw


def report(raw: dict[str, Any]) -> GoalResult:
    text = ""
    for scenario in raw["scenarios"]:
        rows = []
        configs: list[tuple[str, int]] = []
        for run in scenario["runs"]:
            key = (run["strategy"], run["workers"])
            if key not in configs:
                configs.append(key)
        for strategy, workers in configs:
            chosen = [
                r for r in scenario["runs"] if (r["strategy"], r["workers"]) == (strategy, workers)
            ]
            learnt = {r["learnt_rpm"] for r in chosen}
            rows.append(
                [
                    f"{strategy}, " + ("one process" if workers == 1 else f"--workers {workers}"),
                    f"{median([r['rows_per_s'] for r in chosen]):,.1f}",
                    " / ".join(str(r["ok"]) for r in chosen),
                    " / ".join(str(r["server_429"]) for r in chosen),
                    f"{median([r['share_429'] for r in chosen]):.2%}",
                    ", ".join("—" if v is None else f"{v:,}" for v in sorted(learnt, key=str)),
                    "—"
                    if chosen[0]["final_limit"] is None
                    else f"{median([r['final_limit'] for r in chosen]):.1f} "
                    f"(max {median([r['max_limit'] for r in chosen]):.1f})",
                ]
            )
        text += f"{scenario['name']}, {scenario['rows']:,} rows, k = {raw['concurrency']}:\n"
        text += table(
            [
                "configuration",
                "rows/s (median)",
                "ok (each run)",
                "429s (each run)",
                "429 share",
                "rpm learnt",
                "limit at end (max)",
            ],
            rows,
        )
        text += "\n\n"
    loads = raw["load_1min"]
    if loads:
        text += f"1-min load average seen before the runs: {min(loads):.2f}-{max(loads):.2f}"
    return GoalResult("adaptive-workers", "adaptive: one process vs --workers 2", raw, text)


def run(options: Options) -> GoalResult:
    return report(asyncio.run(measure_async(options)))
