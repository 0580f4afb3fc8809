"""Where the client's time and memory go: the engine path at zero latency, profiled.

Not part of ``all`` (profiling slows everything down); run it on demand:

    python -m benchmarks profile

1. CPU: ``cProfile`` around ``run.execute()`` of fanout's engine (1,000 rows,
   ``gather_semaphore`` k=100, as in P1 (c)); the simulator runs in its own
   process, so this is the client alone. Printed: own time summed by library
   (instructor, openai, httpx2, aiohttp, pydantic, asyncio, fanout's core ...),
   then the top functions by own time and by cumulative time.
2. memory: ``tracemalloc`` over a 5,000-row ``as_completed_semaphore`` k=200
   run (P3 / P4's configuration): what is still allocated when the run ends,
   by file, and per row.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import sysconfig
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ROOT,
    GoalResult,
    Options,
    local_engine,
    people,
    progress,
    records_of,
    table,
)
from core.models import Person

CPU_ROWS = 1000
MEMORY_ROWS = 5000
TOP = 25

_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def library_of(filename: str) -> str:
    """A short name for where a function lives: a package, 'asyncio', 'fanout core' ..."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        i = parts.index("site-packages")
        return parts[i + 1].removesuffix(".py") if i + 1 < len(parts) else "site-packages"
    try:
        relative = path.resolve().relative_to(ROOT)
        return f"fanout {relative.parts[0]}"
    except ValueError:
        pass
    try:
        relative = path.resolve().relative_to(_STDLIB)
        return f"stdlib {relative.parts[0].removesuffix('.py')}"
    except ValueError:
        return "other"


async def cpu_profile(rows: int) -> dict[str, Any]:
    records = records_of([text for text, _ in people(rows)])
    async with local_engine(0.0) as engine:
        async with engine.run(
            records[:50], Person, strategy="gather_semaphore", concurrency=100
        ) as warm:
            await warm.execute()
        async with engine.run(records, Person, strategy="gather_semaphore", concurrency=100) as run:
            profiler = cProfile.Profile()
            cpu = time.process_time()
            start = time.perf_counter()
            profiler.enable()
            stats = await run.execute()
            profiler.disable()
            wall = time.perf_counter() - start
            cpu = time.process_time() - cpu
    ps = pstats.Stats(profiler)
    entries = ps.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in entries.values())
    by_library: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tt, _ct, _callers) in entries.items():
        lib = library_of(filename)
        by_library[lib] = by_library.get(lib, 0.0) + tt
    functions = []
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in entries.items():
        functions.append(
            {
                "function": f"{name} ({library_of(filename)}: {Path(filename).name}:{line})",
                "calls": nc,
                "tottime_s": tt,
                "cumtime_s": ct,
            }
        )
    return {
        "rows": rows,
        "ok": stats.ok,
        "wall_s": wall,
        "process_cpu_s": cpu,
        "profiled_total_s": total,
        "by_library": dict(sorted(by_library.items(), key=lambda kv: -kv[1])),
        "top_tottime": sorted(functions, key=lambda f: -f["tottime_s"])[:TOP],
        "top_cumtime": sorted(functions, key=lambda f: -f["cumtime_s"])[:TOP],
    }


async def memory_profile(rows: int) -> dict[str, Any]:
    records = records_of([text for text, _ in people(rows)])
    async with (
        local_engine(0.0) as engine,
        engine.run(records, Person, strategy="as_completed_semaphore", concurrency=200) as run,
    ):
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        await run.execute()
        after = tracemalloc.take_snapshot()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        held = after.compare_to(before, "filename")
        total = sum(stat.size_diff for stat in held)
        top = [
            {
                "file": f"{library_of(str(stat.traceback[0].filename))}: "
                f"{Path(stat.traceback[0].filename).name}",
                "bytes": stat.size_diff,
                "blocks": stat.count_diff,
            }
            for stat in held[:15]
        ]
        del run
    return {
        "rows": rows,
        "held_at_end_bytes": total,
        "held_per_row_bytes": total / rows,
        "traced_peak_bytes": peak,
        "top": top,
    }


def functions_table(functions: list[dict[str, Any]]) -> str:
    return table(
        ["function", "calls", "own", "cumulative"],
        [
            [
                f["function"],
                f"{f['calls']:,}",
                f"{f['tottime_s']:.3f} s",
                f"{f['cumtime_s']:.3f} s",
            ]
            for f in functions
        ],
    )


def render(cpu: dict[str, Any], mem: dict[str, Any]) -> str:
    total = cpu["profiled_total_s"]
    lines = [
        f"CPU: {cpu['rows']:,} rows, gather_semaphore k=100, zero latency; "
        f"{cpu['ok']:,} ok in {cpu['wall_s']:.2f} s under the profiler "
        f"({cpu['process_cpu_s']:.2f} s CPU, {1000 * cpu['process_cpu_s'] / cpu['rows']:.2f} ms "
        "per row, profiler overhead included)",
        "",
        "own time by library:",
        table(
            ["library", "own time", "share", "ms/row"],
            [
                [lib, f"{tt:.3f} s", f"{tt / total:.1%}", f"{1000 * tt / cpu['rows']:.3f}"]
                for lib, tt in list(cpu["by_library"].items())[:15]
            ],
        ),
        "",
        f"top {TOP} functions by own time:",
        functions_table(cpu["top_tottime"]),
        "",
        f"top {TOP} functions by cumulative time:",
        functions_table(cpu["top_cumtime"]),
        "",
        f"memory: {mem['rows']:,} rows, as_completed_semaphore k=200: "
        f"{mem['held_at_end_bytes'] / 1e6:.1f} MB still allocated when run.execute() returns "
        f"({mem['held_per_row_bytes'] / 1e3:.2f} kB per row); traced peak "
        f"{mem['traced_peak_bytes'] / 1e6:.1f} MB",
        table(
            ["allocated in", "MB", "blocks"],
            [[t["file"], f"{t['bytes'] / 1e6:.2f}", f"{t['blocks']:,}"] for t in mem["top"]],
        ),
    ]
    return "\n".join(lines)


def run(options: Options) -> GoalResult:
    cpu_rows = 300 if options.quick else CPU_ROWS
    mem_rows = 1000 if options.quick else MEMORY_ROWS
    progress(options, f"profile: cProfile over {cpu_rows:,} rows")
    cpu = asyncio.run(cpu_profile(cpu_rows))
    progress(options, f"profile: tracemalloc over {mem_rows:,} rows")
    mem = asyncio.run(memory_profile(mem_rows))
    raw = {"cpu": cpu, "memory": mem}
    return GoalResult("profile", "profile of the engine path", raw, render(cpu, mem), [])


if __name__ == "__main__":
    print(run(Options(progress=True)).text, file=sys.stdout)
