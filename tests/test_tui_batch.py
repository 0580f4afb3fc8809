"""The dashboard's Batch API mode (key b): a real run against the simulator's batches."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from core.batch.job import BatchSettings
from core.client import choose_endpoint
from core.dataset import load_dataset
from core.localserver import ServerConfig
from core.models import Person
from core.options import bundled_datasets_dir
from core.results import Status
from core.store import Store
from tests.tui_support import wait_for
from tui.app import FanoutApp
from tui.settings import DashboardSettings
from tui.widgets.batch_panel import BatchPanel
from tui.widgets.controls import ControlsLine, StrategyPicker
from tui.widgets.results_table import ResultsTable
from tui.widgets.runs_table import COLUMNS, RunsTable


def make_app(
    store: Path, *, scale: float = 3600, duration: float = 3600, expire: float = 0.0
) -> FanoutApp:
    server = ServerConfig(
        latency=0.05,
        jitter=0.0,
        batch_time_scale=scale,
        batch_duration=duration,
        batch_expire_rate=expire,
    )
    settings = DashboardSettings(
        dataset=bundled_datasets_dir() / "people.csv",
        strategy="gather",
        concurrency=2,
        endpoint=choose_endpoint(local=True),
        server=server,
        store=store,
    )
    app = FanoutApp(settings, load_dataset(settings.dataset), Person)
    app.batch_settings = BatchSettings(poll_min=0.1, poll_max=0.2)
    return app


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (160, 48)])
async def test_a_batch_run_beside_an_online_one(size: tuple[int, int], tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite3"
    app = make_app(store)
    async with app.run_test(size=size) as pilot:
        panel = app.query_one(BatchPanel)
        assert not panel.display
        await pilot.press("r")  # online, gather
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 1)
        await wait_for(pilot, lambda: not app.running)
        await pilot.press("b")
        assert app.via == "batch"
        assert "batch" in str(app.query_one(StrategyPicker).border_title)
        line = app.query_one(ControlsLine)
        if line.display:  # the compact layout's one line says where the rows go
            assert "via Batch API" in str(line.render()), size
            assert "strategy" not in str(line.render())
        await pilot.press("r")
        await wait_for(pilot, lambda: app.running)
        await wait_for(pilot, lambda: panel.display and "Batch API" in str(panel.render()))
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 2)
        await wait_for(pilot, lambda: not app.running)
        shown = str(panel.render())
        assert "completed" in shown and "7/7 answered" in shown
        runs = app.query_one(RunsTable)
        (_, online), (_, batch) = runs.history
        assert (online.strategy, batch.strategy) == ("gather", "batch")
        assert (online.ok, batch.ok) == (7, 7)
        labels = [label for label, _ in COLUMNS]
        cells = dict(zip(labels, (str(c) for c in runs.get_row_at(1)), strict=True))
        assert (cells["strategy"], cells["semaphore"]) == ("batch", "—")
        assert app.query_one(ResultsTable).row_count == 7
        await pilot.press("b")
        assert app.via == "online"
    with Store(store, create=False) as opened:
        latest, first = opened.list_runs()
        assert latest.options.get("via") == "batch" and first.options.get("via") is None
        rows = {r.index: r.data for r in opened.load_rows(latest.id)}
        assert all(r.status is Status.OK for r in opened.load_rows(latest.id))
        assert rows == {r.index: r.data for r in opened.load_rows(first.id)}


def answered(app: FanoutApp) -> dict[str, int]:
    url = app.engine.endpoint.base_url + "/fanout/batches"
    with urllib.request.urlopen(url, timeout=5) as response:
        log: dict[str, int] = json.load(response)["answered"]
        return log


async def test_a_cancelled_batch_run_is_resumed_from_past_runs(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite3"
    app = make_app(store, scale=600, duration=3000)  # the batch answers over ~5 s
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("b", "r")
        await wait_for(pilot, lambda: app.running)
        await wait_for(pilot, lambda: len(answered(app)) >= 2)
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.running)
        assert "cancell" in str(app.query_one(BatchPanel).render())
        with Store(store, create=False) as opened:
            (info,) = opened.list_runs()
        assert info.status == "cancelled" and info.cancelled == 7
        await pilot.press("h")
        await pilot.press("r")
        await wait_for(
            pilot, lambda: not app.running and len(app.query_one(RunsTable).history) == 2
        )
        log = answered(app)
    assert sorted(log.values()) == [1] * 7  # each row answered once, over both batches
    with Store(store, create=False) as opened:
        info = opened.get_run(info.id)
        assert info.ok == 7 and info.status == "finished" and info.resumes == 1


async def test_finish_online_from_the_palette_completes_an_expired_batch(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs.sqlite3", scale=86400 / 2, expire=1.0)  # a 2 s window
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("b")
        app.action_toggle_finish_online()
        assert app.batch_settings.finish_online
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 1)
        await wait_for(pilot, lambda: not app.running)
        assert "expired" in str(app.query_one(BatchPanel).render())
        (_, stats) = app.query_one(RunsTable).history[0]
        assert stats.ok == 7 and stats.failed == 0
        assert app.feed is not None
        tries = sorted(row.attempts for row in app.feed.run.rows)
        assert tries == [1, 1, 1, 2, 2, 2, 2]  # half answered by the batch, the rest online


async def test_each_batch_has_an_eta_from_its_progress_so_far() -> None:
    from types import SimpleNamespace

    from core.batch.job import BatchJob
    from core.batch.ledger import Ledger
    from core.dataset import records_from_texts
    from tui.widgets.batch_panel import render

    now = [100.0]
    job = BatchJob(
        None,  # type: ignore[arg-type]  # no API call is made here
        SimpleNamespace(prepared=None),  # type: ignore[arg-type]
        records_from_texts(["a"] * 1000),
        BatchSettings(),
        Ledger(None),
        price=None,
        clock=lambda: now[0],
    )
    part = job.ledger.add(job.run_id, 1, 0, range(1000))

    def batch(status: str, done: int) -> SimpleNamespace:
        counts = SimpleNamespace(total=1000, completed=done, failed=0)
        return SimpleNamespace(
            id="batch-1", status=status, request_counts=counts,
            output_file_id=None, error_file_id=None,
        )  # fmt: skip

    part = job._update(part, batch("in_progress", 100))
    (view,) = job.views()
    assert view.eta_s is None  # no progress seen yet
    now[0] += 10
    part = job._update(part, batch("in_progress", 300))
    (view,) = job.views()
    assert view.eta_s == pytest.approx(700 / 20)  # 200 rows in 10 s: 700 left at 20/s
    text = str(render(job.views()))
    assert "300/1,000 answered" in text and "ETA 35" in text and "in_progress" in text
    job._update(part, batch("completed", 1000))
    (view,) = job.views()
    assert view.eta_s is None and "completed" in str(render(job.views()))
    job.ledger.close()
