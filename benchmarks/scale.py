"""P4 scale: a 100,000-row CSV, loaded and run through the engine, with peak memory.

1. ``core.dataset.load_dataset`` on a generated 100,000-row CSV (in a temp
   dir), timed in this process (median of the repetitions, first load warm:
   the file was just written);
2. the whole dataset through fanout's engine, headless, zero latency, k = 200,
   once with the article's ``as_completed_semaphore`` (it creates a task per
   row up front) and once with ``adaptive`` (a pool of k workers), each in a
   fresh child process that
   loads the file itself and reports its peak resident memory (VmHWM from
   /proc/self/status: the high-water mark of the whole process, Python,
   imports, dataset, 100,000 rows of results and all).

``--quick`` uses 5,000 rows (so the memory figure is not the 100,000-row one).
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
from core.gctune import quiet_gc
from core.models import Person

STRATEGIES = ("as_completed_semaphore", "adaptive")
CONCURRENCY = 200
TARGET_LOAD_S = 2.0
TARGET_RSS_MB = 300.0
FULL_ROWS = 100_000
QUICK_ROWS = 5_000


async def child(path: Path, strategy: str) -> dict[str, Any]:
    rss_at_start = current_rss_mb()
    start = time.perf_counter()
    dataset = load_dataset(path)
    load_s = time.perf_counter() - start
    rss_after_load = current_rss_mb()
    async with (
        local_engine(0.0) as engine,
        engine.run(dataset.records, Person, strategy=strategy, concurrency=CONCURRENCY) as run,
    ):
        probe = LagProbe(0.05)
        probe.start()
        start = time.perf_counter()
        with quiet_gc():  # as `fanout run` and the dashboard do
            stats = await run.execute()
        wall = time.perf_counter() - start
        await probe.stop()
        rss_at_end = current_rss_mb()
    return {
        "strategy": strategy,
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
    parser.add_argument("--strategy", default=STRATEGIES[0], choices=STRATEGIES)
    parser.add_argument("dataset", type=Path)
    args = parser.parse_args(argv)
    emit_child_result(asyncio.run(child(args.dataset, args.strategy)))
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
        runs = []
        for strategy in STRATEGIES:
            progress(options, f"p4: {rows:,} rows, {strategy}, in a child process")
            runs.append(
                run_child(
                    "benchmarks.scale",
                    ["--child", "--strategy", strategy, str(path)],
                    timeout=rows / 20 + 120,
                )
            )
        size_mb = path.stat().st_size / 1e6
    return {
        "rows": rows,
        "quick": options.quick,
        "file_mb": size_mb,
        "write_s": write_s,
        "load_s": loads,
        "median_load_s": median(loads),
        "runs": runs,
        "concurrency": CONCURRENCY,
    }


def report(raw: dict[str, Any]) -> GoalResult:
    rows = raw["rows"]
    load = raw["median_load_s"]
    scope = f"{rows:,} rows" + (" (--quick: not the 100,000-row goal)" if raw["quick"] else "")
    names = [ran["strategy"] for ran in raw["runs"]]

    def per_run(label: str, cell: Any) -> list[str]:
        return [label, *(cell(ran) for ran in raw["runs"])]

    lines = [
        f"{scope}; CSV {raw['file_mb']:.1f} MB; load_dataset {fmt_s(load, 3)} "
        f"(median of {fmt_runs(raw['load_s'], ' s', 3)}; target < {TARGET_LOAD_S:g} s)",
        f"runs: k={raw['concurrency']}, zero latency, each in a fresh child process",
        table(
            ["measure", *names],
            [
                per_run("load_dataset (child, first load)", lambda r: fmt_s(r["load_s"], 3)),
                per_run("run elapsed", lambda r: fmt_s(r["elapsed_s"], 1)),
                per_run(
                    "ok / failed / cancelled",
                    lambda r: f"{r['ok']:,} / {r['failed']:,} / {r['cancelled']:,}",
                ),
                per_run("rows/s", lambda r: f"{rows / r['elapsed_s']:,.0f}/s"),
                per_run("RSS at child start (imports)", lambda r: f"{r['rss_at_start_mb']:.0f} MB"),
                per_run("RSS after load", lambda r: f"{r['rss_after_load_mb']:.0f} MB"),
                per_run("RSS at run end", lambda r: f"{r['rss_at_end_mb']:.0f} MB"),
                per_run("peak RSS (VmHWM)", lambda r: f"{r['peak_rss_mb']:.0f} MB"),
                per_run(
                    "loop lag (50 ms probe) p50 / max",
                    lambda r: (
                        f"{r['lag_50ms_probe']['p50_ms']:.0f} / "
                        f"{r['lag_50ms_probe']['max_ms']:.0f} ms"
                    ),
                ),
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
        )
    ]
    for ran in raw["runs"]:
        rss = ran["peak_rss_mb"]
        verdicts.append(
            Verdict(
                f"P4 peak RSS, {rows:,} rows, {ran['strategy']}{suffix}",
                f"< {TARGET_RSS_MB:g} MB",
                f"{rss:.0f} MB",
                fmt_x(ratio(rss, TARGET_RSS_MB)),
                rss < TARGET_RSS_MB and ran["ok"] == rows,
                f"{ran['ok']:,}/{rows:,} ok in {ran['elapsed_s']:.0f} s "
                f"({rows / ran['elapsed_s']:,.0f}/s)",
            )
        )
    return GoalResult("p4", "P4 scale", raw, "\n".join(lines), verdicts)


def run(options: Options) -> GoalResult:
    return report(measure(options))


if __name__ == "__main__":
    raise SystemExit(child_main())
