"""P3 dashboard overhead: the same run headless and in the dashboard.

N rows (10,000; --quick 1,000), ``as_completed_semaphore`` with k = 200, the
simulator at zero latency. Each side runs in a fresh child process (so the
dashboard's ``gc.freeze()`` and its memory do not leak into the other side),
and each starts its own simulator, as ``fanout run`` and ``fanout`` do:

(a) headless, in-process: ``Engine`` + ``engine.run(...)`` + ``Run.execute()``
    (``fanout run``'s path without its progress bar and run store);
(b) the dashboard: ``tui.app.FanoutApp`` with the real engine under
    ``app.run_test(headless=True, size=(160, 48))``; keys "5" then "r"; the
    figure is the run's own ``RunStats.elapsed_s`` from the runs table;
(c) inside the app during the run: a task that sleeps 10 ms in a loop and
    records how late it wakes (event-loop lag);
(d) key presses during the run, every 100 ms alternately "plus" and "minus":
    a ``Key`` event posted to the app (what the terminal driver does with
    input; ``pilot.press`` would wait for the app to go idle, up to 2 s under
    load) and the time until ``action_semaphore`` has run.

The headless child runs the same lag probe, to show what the engine alone costs.

Children: ``python -m benchmarks.dashboard --child headless|dashboard DATASET``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    GoalResult,
    LagProbe,
    Options,
    Verdict,
    emit_child_result,
    fmt_ms,
    fmt_runs,
    fmt_s,
    fmt_x,
    local_engine,
    median,
    peak_rss_mb,
    percentile,
    progress,
    ratio,
    run_child,
    table,
    write_people_csv,
)
from core.client import choose_endpoint
from core.dataset import load_dataset
from core.gctune import quiet_gc
from core.localserver import ServerConfig
from core.models import Person

STRATEGY = "as_completed_semaphore"
CONCURRENCY = 200
TARGET_OVERHEAD = 1.25
TARGET_LAG_MS = 100.0
KEY_EVERY_S = 0.1
SIZE = (160, 48)


# -- children ------------------------------------------------------------------------------


async def headless(dataset_path: Path) -> dict[str, Any]:
    dataset = load_dataset(dataset_path)
    async with local_engine(0.0) as engine:
        await engine.preflight()
        async with engine.run(
            dataset.records, Person, strategy=STRATEGY, concurrency=CONCURRENCY
        ) as run:
            probe = LagProbe()
            probe.start()
            start = time.perf_counter()
            with quiet_gc():  # as `fanout run` and the dashboard do
                stats = await run.execute()
            wall = time.perf_counter() - start
            await probe.stop()
    return {
        "rows": len(dataset),
        "elapsed_s": stats.elapsed_s,
        "wall_s": wall,
        "ok": stats.ok,
        "failed": stats.failed,
        "lag": probe.summary(),
        "peak_rss_mb": peak_rss_mb(),
    }


async def dashboard(dataset_path: Path) -> dict[str, Any]:
    from textual import events

    from tui.app import FanoutApp
    from tui.settings import DashboardSettings
    from tui.widgets.controls import SemaphoreControl
    from tui.widgets.results_table import ResultsTable
    from tui.widgets.runs_table import RunsTable

    app_file = inspect.getfile(FanoutApp)

    class ProbedApp(FanoutApp):
        """The real app, noting when the semaphore key's handler runs."""

        # a relative CSS_PATH is resolved next to the subclass: point at the app's own
        CSS_PATH = str(Path(app_file).with_name(str(FanoutApp.CSS_PATH)))
        handled: list[float]
        key_seen: asyncio.Event

        def action_semaphore(self, direction: int) -> None:
            self.handled.append(time.perf_counter())
            super().action_semaphore(direction)
            self.key_seen.set()

    settings = DashboardSettings(
        dataset=dataset_path,
        strategy="sequential",
        concurrency=CONCURRENCY,
        endpoint=choose_endpoint(local=True),
        server=ServerConfig(latency=0.0, jitter=0.0),
    )
    dataset = load_dataset(dataset_path)
    app = ProbedApp(settings, dataset, Person)
    app.handled = []
    app.key_seen = asyncio.Event()
    key_latencies: list[float] = []
    lost_keys = 0
    probe = LagProbe()
    async with app.run_test(headless=True, size=SIZE) as pilot:
        runs = app.query_one(RunsTable)
        await pilot.press("5")
        while True:  # the simulator starts with the app: wait for it, outside the figures
            try:
                app.engine.endpoint  # noqa: B018 - raises until the engine has started
                break
            except RuntimeError:
                await asyncio.sleep(0.02)
        await pilot.pause(0.3)  # the preflight request
        # "r" is posted like terminal input; pilot.press would wait (up to 2 s) for idle
        probe.start()
        pressed = time.perf_counter()
        app.post_message(events.Key("r", "r"))
        sent_keys = 0
        while not runs.history:
            await asyncio.sleep(KEY_EVERY_S)
            if runs.history:
                break
            key, char = ("plus", "+") if sent_keys % 2 == 0 else ("minus", "-")
            app.key_seen.clear()
            before = len(app.handled)
            sent = time.perf_counter()
            app.post_message(events.Key(key, char))
            sent_keys += 1
            try:
                await asyncio.wait_for(app.key_seen.wait(), 5.0)
            except TimeoutError:
                lost_keys += 1
            if len(app.handled) > before:
                key_latencies.append(app.handled[before] - sent)
        table_complete = time.perf_counter()
        await probe.stop()
        stats = runs.history[0][1]
        results = app.query_one(ResultsTable)
        done_text = ""
        try:
            done_text = str(app.query_one("#stat-done").render()).splitlines()[-1]
        except Exception:  # the stats bar's layout is not this benchmark's business
            done_text = "?"
        semaphore = app.query_one(SemaphoreControl).value
    ms = [v * 1000 for v in key_latencies]
    return {
        "rows": len(dataset),
        "elapsed_s": stats.elapsed_s,
        "strategy": stats.strategy,
        "concurrency": stats.concurrency,
        "ok": stats.ok,
        "failed": stats.failed,
        "press_to_table_complete_s": table_complete - pressed,
        "table_rows": results.row_count,
        "table_rows_by_key": len(results.rows_by_key),
        "stats_bar_done": done_text,
        "semaphore_after": semaphore,
        "lag": probe.summary(),
        "keys": {
            "sent": sent_keys,
            "handled": len(key_latencies),
            "lost": lost_keys,
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "max_ms": max(ms) if ms else math.nan,
        },
        "peak_rss_mb": peak_rss_mb(),
    }


def child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard")
    parser.add_argument("--child", choices=("headless", "dashboard"), required=True)
    parser.add_argument("dataset", type=Path)
    args = parser.parse_args(argv)
    side = headless if args.child == "headless" else dashboard
    emit_child_result(asyncio.run(side(args.dataset)))
    return 0


# -- the goal -------------------------------------------------------------------------------


def measure(options: Options) -> dict[str, Any]:
    rows = 1000 if options.quick else 10_000
    repeat = 1 if options.quick else options.repeat
    timeout = 120.0 if options.quick else 900.0
    sides: dict[str, list[dict[str, Any]]] = {"headless": [], "dashboard": []}
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as folder:
        path = write_people_csv(Path(folder) / f"people_{rows}.csv", rows)
        for r in range(repeat):
            order = ("headless", "dashboard") if r % 2 == 0 else ("dashboard", "headless")
            for side in order:
                progress(options, f"p3: repetition {r + 1}/{repeat}: {side}, {rows:,} rows")
                sides[side].append(
                    run_child("benchmarks.dashboard", ["--child", side, str(path)], timeout=timeout)
                )
    return {
        "rows": rows,
        "strategy": STRATEGY,
        "concurrency": CONCURRENCY,
        "repeat": repeat,
        "headless": sides["headless"],
        "dashboard": sides["dashboard"],
    }


def report(raw: dict[str, Any]) -> GoalResult:
    rows = raw["rows"]
    head = raw["headless"]
    dash = raw["dashboard"]
    head_s = median([r["elapsed_s"] for r in head])
    dash_s = median([r["elapsed_s"] for r in dash])
    overhead = ratio(dash_s, head_s)
    body = []
    for name, runs in (("(a) headless: Engine + Run.execute", head), ("(b) dashboard", dash)):
        elapsed = median([r["elapsed_s"] for r in runs])
        body.append(
            [
                name,
                fmt_s(elapsed, 2),
                fmt_runs([r["elapsed_s"] for r in runs], digits=2),
                f"{rows / elapsed:,.0f}/s",
                f"{min(r['ok'] for r in runs):,}/{rows:,}",
                fmt_ms(median([r["lag"]["p50_ms"] for r in runs])),
                fmt_ms(median([r["lag"]["p99_ms"] for r in runs])),
                fmt_ms(max(r["lag"]["max_ms"] for r in runs)),
                f"{median([r['peak_rss_mb'] for r in runs]):.0f} MB",
            ]
        )
    lines = [
        f"{rows:,} rows, {raw['strategy']} k={raw['concurrency']}, zero latency, "
        f"{raw['repeat']} repetition(s) alternating sides, each in a fresh process; "
        "elapsed = the run's own RunStats.elapsed_s; lag = 10 ms sleeper during the run "
        "(p50/p99 medians over repetitions, max over all)",
        table(
            [
                "side",
                "elapsed",
                "each run",
                "rows/s",
                "ok",
                "lag p50",
                "lag p99",
                "lag max",
                "peak RSS",
            ],
            body,
        ),
        "",
        f"dashboard / headless: {fmt_x(overhead)} ({dash_s:.2f} s / {head_s:.2f} s)",
    ]
    key_rows = []
    for i, r in enumerate(dash, start=1):
        k = r["keys"]
        key_rows.append(
            [
                str(i),
                f"{k['handled']}/{k['sent']}",
                fmt_ms(k["p50_ms"]),
                fmt_ms(k["p99_ms"]),
                fmt_ms(k["max_ms"]),
                f"{r['table_rows']:,}",
                r["stats_bar_done"],
                fmt_s(r["press_to_table_complete_s"], 2),
            ]
        )
    lines += [
        "",
        "in the dashboard, per repetition: key presses ('plus'/'minus' every 100 ms: "
        "post to handler) and the table at the end",
        table(
            [
                "rep",
                "keys handled",
                "key p50",
                "key p99",
                "key max",
                "rows in table",
                "stats bar done",
                "r → table full",
            ],
            key_rows,
        ),
    ]
    lag_max = max(r["lag"]["max_ms"] for r in dash)
    lag_p99 = median([r["lag"]["p99_ms"] for r in dash])
    key_max = max(r["keys"]["max_ms"] for r in dash)
    key_p50 = median([r["keys"]["p50_ms"] for r in dash])
    lost = sum(r["keys"]["lost"] for r in dash)
    complete = all(r["table_rows"] == rows and r["ok"] == rows for r in dash)
    verdicts = [
        Verdict(
            "P3 dashboard / headless",
            f"≤ {TARGET_OVERHEAD:g}×",
            f"{dash_s:.2f} s vs {head_s:.2f} s",
            fmt_x(overhead),
            overhead <= TARGET_OVERHEAD,
            f"{rows:,} rows, k={raw['concurrency']}",
        ),
        Verdict(
            "P3 event-loop lag in the app",
            f"max ≤ {TARGET_LAG_MS:g} ms",
            f"max {lag_max:.0f} ms, p99 {lag_p99:.0f} ms",
            fmt_x(ratio(lag_max, TARGET_LAG_MS)),
            lag_max <= TARGET_LAG_MS,
            f"headless max {max(r['lag']['max_ms'] for r in head):.0f} ms",
        ),
        Verdict(
            "P3 key press → handler",
            f"max ≤ {TARGET_LAG_MS:g} ms",
            f"max {key_max:.0f} ms, p50 {key_p50:.1f} ms",
            fmt_x(ratio(key_max, TARGET_LAG_MS)),
            key_max <= TARGET_LAG_MS and lost == 0,
            "same bound as the lag" + (f"; {lost} keys not handled in 5 s" if lost else ""),
        ),
        Verdict(
            "P3 all rows in the results table",
            f"{rows:,}",
            ", ".join(f"{r['table_rows']:,}" for r in dash),
            "—",
            complete,
            "rows in ResultsTable per repetition",
        ),
    ]
    return GoalResult("p3", "P3 dashboard overhead", raw, "\n".join(lines), verdicts)


def run(options: Options) -> GoalResult:
    return report(measure(options))


if __name__ == "__main__":
    raise SystemExit(child_main())
