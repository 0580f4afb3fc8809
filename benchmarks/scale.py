"""P4 scale: a 100,000-row CSV, loaded and run through the engine, with peak memory.

1. ``core.dataset.load_dataset`` on a generated 100,000-row CSV (in a temp
   dir), timed in this process (median of the repetitions, first load warm:
   the file was just written);
2. the whole dataset through fanout's engine, headless, zero latency,
   ``as_completed_semaphore`` with k = 200, in a fresh child process that
   loads the file itself and reports its peak resident memory (VmHWM from
   /proc/self/status: the high-water mark of the whole process, Python,
   imports, dataset, 100,000 rows of results and all).

``--quick`` uses 20,000 rows (so the memory figure is not the 100,000-row one).
Child: ``python -m benchmarks.scale --child DATASET``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    GoalResult,
    LagProbe,
    Options,
    Verdict,
    current_rss_mb,
    emit_child_result,
    fmt_runs,
    fmt_s,
    fmt_x,
    local_engine,
    median,
    peak_rss_mb,
    progress,
    ratio,
    run_child,
    table,
    write_people_csv,
)
from core.dataset import load_dataset
from core.models import Person

STRATEGY = "as_completed_semaphore"
CONCURRENCY = 200
TARGET_LOAD_S = 2.0
TARGET_RSS_MB = 300.0
FULL_ROWS = 100_000
QUICK_ROWS = 20_000


async def child(path: Path) -> dict[str, Any]:
    rss_at_start = current_rss_mb()
    start = time.perf_counter()
    dataset = load_dataset(path)
    load_s = time.perf_counter() - start
    rss_after_load = current_rss_mb()
    async with (
        local_engine(0.0) as engine,
        engine.run(dataset.records, Person, strategy=STRATEGY, concurrency=CONCURRENCY) as run,
    ):
        probe = LagProbe(0.05)
        probe.start()
        start = time.perf_counter()
        stats = await run.execute()
        wall = time.perf_counter() - start
        await probe.stop()
        rss_at_end = current_rss_mb()
    return {
        "rows": len(dataset),
        "load_s": load_s,
        "elapsed_s": stats.elapsed_s,
        "wall_s": wall,
        "ok": stats.ok,
        "failed": stats.failed,
        "cancelled": stats.cancelled,
        "rss_at_start_mb": rss_at_start,
        "rss_after_load_mb": rss_after_load,
        "rss_at_end_mb": rss_at_end,
        "peak_rss_mb": peak_rss_mb(),
        "lag_50ms_probe": probe.summary(),
    }


def child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("dataset", type=Path)
    args = parser.parse_args(argv)
    emit_child_result(asyncio.run(child(args.dataset)))
    return 0


def measure(options: Options) -> dict[str, Any]:
    rows = QUICK_ROWS if options.quick else FULL_ROWS
    repeat = 1 if options.quick else options.repeat
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as folder:
        path = Path(folder) / f"people_{rows}.csv"
        progress(options, f"p4: writing {rows:,} rows to {path}")
        start = time.perf_counter()
        write_people_csv(path, rows)
        write_s = time.perf_counter() - start
        loads = []
        for r in range(max(3, repeat)):
            progress(options, f"p4: load_dataset {r + 1}/{max(3, repeat)}")
            start = time.perf_counter()
            dataset = load_dataset(path)
            loads.append(time.perf_counter() - start)
            assert len(dataset) == rows, f"loaded {len(dataset)} of {rows} rows"
        del dataset
        progress(options, f"p4: {rows:,} rows through the engine in a child process")
        ran = run_child("benchmarks.scale", ["--child", str(path)], timeout=rows / 20 + 120)
        size_mb = path.stat().st_size / 1e6
    return {
        "rows": rows,
        "quick": options.quick,
        "file_mb": size_mb,
        "write_s": write_s,
        "load_s": loads,
        "median_load_s": median(loads),
        "run": ran,
        "strategy": STRATEGY,
        "concurrency": CONCURRENCY,
    }


def report(raw: dict[str, Any]) -> GoalResult:
    rows = raw["rows"]
    ran = raw["run"]
    load = raw["median_load_s"]
    rss = ran["peak_rss_mb"]
    scope = f"{rows:,} rows" + (" (--quick: not the 100,000-row goal)" if raw["quick"] else "")
    lines = [
        f"{scope}; CSV {raw['file_mb']:.1f} MB; run: {raw['strategy']} k={raw['concurrency']}, "
        "zero latency, in a fresh child process",
        table(
            ["measure", "value", "raw", "target"],
            [
                [
                    "load_dataset (this process)",
                    fmt_s(load, 3),
                    fmt_runs(raw["load_s"], " s", 3),
                    f"< {TARGET_LOAD_S:g} s",
                ],
                ["load_dataset (child, first load)", fmt_s(ran["load_s"], 3), "", ""],
                [
                    "run elapsed",
                    fmt_s(ran["elapsed_s"], 1),
                    f"{ran['ok']:,} ok, {ran['failed']:,} failed, {ran['cancelled']:,} cancelled",
                    "",
                ],
                ["rows/s", f"{rows / ran['elapsed_s']:,.0f}/s", "", ""],
                ["RSS at child start", f"{ran['rss_at_start_mb']:.0f} MB", "imports", ""],
                ["RSS after load", f"{ran['rss_after_load_mb']:.0f} MB", "", ""],
                ["RSS at run end", f"{ran['rss_at_end_mb']:.0f} MB", "", ""],
                ["peak RSS (VmHWM)", f"{rss:.0f} MB", "", f"< {TARGET_RSS_MB:g} MB"],
                [
                    "loop lag (50 ms probe) max",
                    f"{ran['lag_50ms_probe']['max_ms']:.0f} ms",
                    f"p50 {ran['lag_50ms_probe']['p50_ms']:.0f} ms, "
                    f"p99 {ran['lag_50ms_probe']['p99_ms']:.0f} ms",
                    "",
                ],
            ],
        ),
    ]
    suffix = " (quick)" if raw["quick"] else ""
    verdicts = [
        Verdict(
            f"P4 load {rows:,} rows{suffix}",
            f"< {TARGET_LOAD_S:g} s",
            fmt_s(load, 3),
            fmt_x(ratio(load, TARGET_LOAD_S)),
            load < TARGET_LOAD_S,
            "median, load_dataset",
        ),
        Verdict(
            f"P4 peak RSS, {rows:,}-row run{suffix}",
            f"< {TARGET_RSS_MB:g} MB",
            f"{rss:.0f} MB",
            fmt_x(ratio(rss, TARGET_RSS_MB)),
            rss < TARGET_RSS_MB and ran["ok"] == rows,
            f"{ran['ok']:,}/{rows:,} ok in {ran['elapsed_s']:.0f} s "
            f"({rows / ran['elapsed_s']:,.0f}/s)",
        ),
    ]
    return GoalResult("p4", "P4 scale", raw, "\n".join(lines), verdicts)


def run(options: Options) -> GoalResult:
    return report(measure(options))


if __name__ == "__main__":
    raise SystemExit(child_main())
