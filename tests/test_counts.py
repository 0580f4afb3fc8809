"""One cancelled run, the same counts everywhere: ok, failed (by cause), cancelled, cost.

The run is real: the openai + instructor client over HTTP to the simulator
on loopback, some answers broken (5xx, no retries) so rows fail, served as
an OpenAI-compatible URL under a model with a price (the built-in endpoint
is always free) so rows cost something, and a stop part-way so rows are
cancelled. Then every place that reports the run is read back: the
run's ``RunStats``, the dashboard's live figures, ``fanout run``'s summary
line, the store's ``RunInfo``, ``fanout runs`` (JSON and table) and an
exported CSV.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from core.client import choose_endpoint
from core.dataset import load_dataset
from core.engine import ClientOptions, Engine
from core.extract import RetryPolicy
from core.localserver import LocalServer, ServerConfig
from core.models import Person
from core.recorder import recording, run_meta
from core.report import format_stats_line
from core.stats import RunStats
from core.store import RunInfo, Store
from tui.__main__ import main
from tui.live import LiveStats, RunFeed

ROWS = 200
MODEL = "priced-sim"
PRICES = f'[models."{MODEL}"]\ninput = 1000.0\noutput = 3000.0\n'


def write_people(path: Path, n: int = ROWS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i in range(n):
            writer.writerow([f"p{i:03d}", f"My name is Person{i} and I am {20 + i % 60} years old"])
    return path


def fanout(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


async def cancelled_run(tmp_path: Path) -> tuple[RunStats, LiveStats, str, Path]:
    """200 rows, stopped once 40 have finished: (stats, live figures, run id, store)."""
    dataset = load_dataset(write_people(tmp_path / "people.csv"))
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES, encoding="utf-8")
    db = tmp_path / "runs.sqlite3"
    config = ServerConfig(latency=0.02, jitter=0.0, error_rate=0.25, seed=4)
    options = ClientOptions(retry=RetryPolicy(max_retries=0), prices=prices)
    with LocalServer(config) as server, Store(db) as store:
        engine = Engine(choose_endpoint(server.base_url, MODEL, env={}), options=options)
        async with (
            engine,
            engine.run(
                dataset.records, Person, strategy="as_completed_semaphore", concurrency=4
            ) as run,
        ):
            meta = run_meta(
                dataset=dataset,
                schema_spec="Person",
                schema=Person,
                strategy="as_completed_semaphore",
                concurrency=4,
                endpoint=engine.endpoint,
                options=engine.options,
            )
            feed = RunFeed(run, limit=4)
            async with recording(store, run, meta) as recorder:
                assert recorder is not None
                forty = asyncio.Event()
                run.subscribe(lambda _: forty.set() if run.ok + run.failed >= 40 else None)
                task = asyncio.create_task(run.execute())
                await asyncio.wait_for(forty.wait(), timeout=30)
                run.stop("cancelled")
                stats = await asyncio.wait_for(task, timeout=30)
            live = feed.snapshot()
            feed.close()
    return stats, live, recorder.run_id, db


def assert_counts(info: RunInfo | dict[str, object], stats: RunStats) -> None:
    get = info.get if isinstance(info, dict) else lambda name: getattr(info, name)
    assert (get("ok"), get("failed"), get("cancelled"), get("pending")) == (
        stats.ok,
        stats.failed,
        stats.cancelled,
        0,
    )
    assert get("errors_by_kind") == stats.errors_by_kind
    assert get("cost_usd") == pytest.approx(stats.cost_usd)


async def test_a_cancelled_run_reads_the_same_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats, live, run_id, db = await cancelled_run(tmp_path)

    # The run itself: every row accounted for, each state present.
    assert stats.records == ROWS == stats.ok + stats.failed + stats.cancelled
    assert stats.ok > 0 and stats.failed > 0 and stats.cancelled >= ROWS - 60
    assert set(stats.errors_by_kind) == {"5xx"} and stats.errors_by_kind["5xx"] == stats.failed
    assert stats.cost_usd > 0

    # The dashboard: "done" is finished rows (ok + failed); cancelled apart.
    for figures in (live, LiveStats.of(stats, 4)):
        assert (figures.done, figures.total) == (stats.ok + stats.failed, ROWS)
        assert (figures.ok, figures.failed, figures.cancelled) == (
            stats.ok,
            stats.failed,
            stats.cancelled,
        )
        assert figures.errors_by_kind == stats.errors_by_kind
        assert figures.cost_usd == pytest.approx(stats.cost_usd)

    # fanout run's summary line.
    line = format_stats_line(stats, None)
    assert f"{ROWS} rows, {stats.ok} ok, {stats.failed} failed (5xx {stats.failed})" in line
    assert f"{stats.cancelled} cancelled" in line and f"${stats.cost_usd:.4f}" in line

    # The store.
    with Store(db, create=False) as store:
        info = store.get_run(run_id)
    assert info.status == "cancelled"
    assert_counts(info, stats)
    assert info.stats is not None
    assert (info.stats["ok"], info.stats["failed"], info.stats["cancelled"]) == (
        stats.ok,
        stats.failed,
        stats.cancelled,
    )

    # fanout runs --json, and the table.
    code, out, err = fanout(capsys, "runs", "--json", "--store", str(db))
    assert code == 0, err
    (listed,) = json.loads(out)
    assert listed["status"] == "cancelled"
    assert_counts(listed, stats)
    code, out, err = fanout(capsys, "runs", "--store", str(db))
    assert code == 0, err
    (header,) = [text for text in out.splitlines() if "┃ id " in text]
    names = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    (line,) = [text for text in out.splitlines() if run_id in text]
    cells = dict(zip(names, (cell.strip() for cell in line.strip("│ ").split("│")), strict=True))
    assert [cells[name] for name in ("ok", "failed", "cancelled", "cost")] == [
        str(stats.ok),
        f"{stats.failed} (5xx {stats.failed})",
        str(stats.cancelled),
        f"${stats.cost_usd:.4f}",
    ], line
    assert cells["status"].startswith("cancelled")

    # An exported CSV.
    exported = tmp_path / "out.csv"
    code, _, err = fanout(capsys, "export", run_id, str(exported), "--store", str(db))
    assert code == 0, err
    assert f"{stats.ok} ok, {stats.failed} failed, {stats.cancelled} cancelled" in err
    with exported.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_status = Counter(row["status"] for row in rows)
    assert by_status == {"ok": stats.ok, "failed": stats.failed, "cancelled": stats.cancelled}
    causes = Counter(row["error_kind"] for row in rows if row["status"] == "failed")
    assert causes == stats.errors_by_kind
    assert sum(float(row["cost_usd"]) for row in rows) == pytest.approx(stats.cost_usd)
