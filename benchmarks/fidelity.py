"""P2 fidelity: each strategy's elapsed time against the physics, ``ceil(N/k)·L``.

The simulator answers every request after exactly ``L`` seconds (jitter 0),
so a strategy that keeps ``k`` requests in flight should take ``ceil(N/k)``
waves of ``L``: the for loop k=1, gather and as_completed k=N, the semaphore
variants their k. Whatever is above that is the client's own cost
(building requests, parsing and validating answers, the event loop).

Semaphore k=1 is the for loop's physics, so it is measured once, as the for
loop. Elapsed is the wall time of ``run.execute()`` through fanout's engine.

For the k=N cells, the same burst sent by a bare aiohttp client (no SDK, no
validation) is measured too: the floor any Python client reaches here, since
the N requests' client CPU adds to the single wave of L.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    GoalResult,
    Options,
    Verdict,
    fmt_runs,
    fmt_s,
    fmt_x,
    local_engine,
    median,
    people,
    progress,
    records_of,
    table,
)
from benchmarks.throughput import aiohttp_floor
from core.engine import Engine
from core.gctune import quiet_gc
from core.models import Person
from core.stats import ideal_elapsed
from core.strategies import LABELS

LATENCY = 0.2
TARGET = 1.05


@dataclass(frozen=True)
class Cell:
    strategy: str
    k: int
    """Requests in flight the strategy allows (N for gather / as_completed)."""

    @property
    def concurrency(self) -> int:
        return self.k


def cells(n: int, ks: tuple[int, ...]) -> list[Cell]:
    out = [Cell("sequential", 1)]
    for k in ks:
        if k == 1:
            continue  # the for loop's physics, measured as the for loop
        out += [Cell("gather_semaphore", k), Cell("as_completed_semaphore", k)]
    out += [Cell("gather", n), Cell("as_completed", n)]
    return out


async def one_run(engine: Engine, n: int, cell: Cell) -> dict[str, Any]:
    records = records_of([text for text, _ in people(n)])
    async with engine.run(
        records, Person, strategy=cell.strategy, concurrency=cell.concurrency
    ) as run:
        start = time.perf_counter()
        with quiet_gc():  # as `fanout run` and the dashboard do
            stats = await run.execute()
        wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "run_elapsed_s": stats.elapsed_s,
        "ok": stats.ok,
        "max_in_flight": stats.max_in_flight,
        "first_answer_s": stats.first_finished_s,
    }


async def measure(options: Options) -> dict[str, Any]:
    n = 10 if options.quick else 100
    ks = (1, 2, 5, 10) if options.quick else (1, 2, 10, 100)
    repeat = 1 if options.quick else options.repeat
    plan = cells(n, ks)
    results: dict[str, list[dict[str, Any]]] = {f"{c.strategy}/{c.k}": [] for c in plan}
    async with local_engine(LATENCY) as engine:
        progress(options, "p2: warm-up run")
        await one_run(engine, min(n, 10), Cell("gather", min(n, 10)))
        texts = [text for text, _ in people(n)]
        floor: list[float] = []
        for r in range(repeat):
            for cell in plan:
                progress(options, f"p2: repetition {r + 1}/{repeat}: {cell.strategy} k={cell.k}")
                results[f"{cell.strategy}/{cell.k}"].append(await one_run(engine, n, cell))
            progress(options, f"p2: repetition {r + 1}/{repeat}: aiohttp burst of {n}")
            burst = await aiohttp_floor(engine.endpoint.base_url, texts, None, concurrency=n)
            floor.append(burst.wall_s)
    table_rows = []
    for cell in plan:
        runs = results[f"{cell.strategy}/{cell.k}"]
        ideal = ideal_elapsed(n, cell.k, LATENCY)
        elapsed = median([r["wall_s"] for r in runs])
        table_rows.append(
            {
                "strategy": cell.strategy,
                "k": cell.k,
                "ideal_s": ideal,
                "median_s": elapsed,
                "ratio": elapsed / ideal,
                "overhead_ms_per_row": 1000 * (elapsed - ideal) / n,
                "runs": runs,
            }
        )
    floor_s = median(floor)
    ideal = ideal_elapsed(n, n, LATENCY)
    return {
        "n": n,
        "latency": LATENCY,
        "ks": list(ks),
        "repeat": repeat,
        "cells": table_rows,
        "aiohttp_burst": {
            "k": n,
            "ideal_s": ideal,
            "median_s": floor_s,
            "ratio": floor_s / ideal,
            "overhead_ms_per_row": 1000 * (floor_s - ideal) / n,
            "runs_s": floor,
        },
    }


def first_answer(runs: list[dict[str, Any]]) -> float:
    """Median time of a cell's first completed request (NaN when none completed)."""
    times = [r["first_answer_s"] for r in runs if r.get("first_answer_s") is not None]
    return median(times)


def report(raw: dict[str, Any]) -> GoalResult:
    n = raw["n"]
    body = []
    for c in raw["cells"]:
        ok = min(r["ok"] for r in c["runs"])
        inflight = max(r["max_in_flight"] for r in c["runs"])
        body.append(
            [
                LABELS.get(c["strategy"], c["strategy"]),
                str(c["k"]),
                fmt_s(c["ideal_s"], 2),
                fmt_s(c["median_s"], 3),
                fmt_s(first_answer(c["runs"]), 3),
                fmt_runs([r["wall_s"] for r in c["runs"]], digits=3),
                fmt_x(c["ratio"], 3),
                f"{c['overhead_ms_per_row']:.2f}",
                f"{ok}/{n}",
                str(inflight),
                "ok" if c["ratio"] <= TARGET else "OVER",
            ]
        )
    burst = raw["aiohttp_burst"]
    body.append(
        [
            "aiohttp POST burst (floor)",
            str(burst["k"]),
            fmt_s(burst["ideal_s"], 2),
            fmt_s(burst["median_s"], 3),
            "",
            fmt_runs(burst["runs_s"], digits=3),
            fmt_x(burst["ratio"], 3),
            f"{burst['overhead_ms_per_row']:.2f}",
            "",
            "",
            "not judged",
        ]
    )
    text = "\n".join(
        [
            f"N = {n}, L = {raw['latency']:g} s (jitter 0), {raw['repeat']} repetition(s), "
            "median wall of run.execute(); ideal = ceil(N/k)·L; overhead = (elapsed - ideal)/N;\n"
            "first answer = when the first request completed (median): at k = N, the gap to "
            "the elapsed time is the client sending and reading the rest of the burst",
            table(
                [
                    "strategy",
                    "k",
                    "ideal",
                    "elapsed",
                    "first answer",
                    "each run",
                    "ratio",
                    "overhead ms/row",
                    "ok",
                    "max in flight",
                    f"≤ {TARGET:g}×",
                ],
                body,
            ),
        ]
    )
    worst = max(raw["cells"], key=lambda c: c["ratio"])
    over = sorted((c for c in raw["cells"] if c["ratio"] > TARGET), key=lambda c: -c["ratio"])
    note = "every cell within"
    if over:
        note = f"{len(over)} of {len(raw['cells'])} cells over; next: " + ", ".join(
            f"{c['strategy']} k={c['k']} {c['ratio']:.2f}×" for c in over[1:3]
        )
    note += f"; bare aiohttp burst of {n}: {burst['ratio']:.2f}×"
    verdict = Verdict(
        "P2 fidelity (worst cell)",
        f"≤ {TARGET:g}× ideal",
        f"{worst['strategy']} k={worst['k']}: {worst['median_s']:.3f} s vs "
        f"{worst['ideal_s']:.2f} s",
        fmt_x(worst["ratio"], 3),
        not math.isnan(worst["ratio"]) and worst["ratio"] <= TARGET,
        note,
    )
    return GoalResult("p2", "P2 fidelity", raw, text, [verdict])


def run(options: Options) -> GoalResult:
    return report(asyncio.run(measure(options)))
