"""The dashboard driven by keys, end to end: real client, real HTTP, the local simulator."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import Button, Label, ProgressBar, Static

from core.client import choose_endpoint
from core.dataset import load_dataset
from core.localserver import ServerConfig
from core.models import Person
from core.options import bundled_datasets_dir
from core.results import Row, Status
from core.store import Store
from core.strategies import STRATEGIES
from tests.fakes import ARTICLE_PEOPLE
from tests.tui_support import wait_for
from tui.app import FanoutApp
from tui.screens.detail import RowDetailScreen
from tui.screens.export import ExportScreen
from tui.screens.history import HistoryScreen
from tui.screens.limits import LimitsScreen
from tui.screens.open_dataset import OpenDatasetScreen
from tui.settings import DashboardSettings
from tui.widgets.chart import InFlightChart
from tui.widgets.controls import MAX_SEMAPHORE, SemaphoreControl, StrategyPicker
from tui.widgets.header import DatasetBar
from tui.widgets.results_table import ResultsTable
from tui.widgets.runs_table import RunsTable
from tui.widgets.stats_bar import StatsBar, StatTiles

SIZE = (160, 48)
PEOPLE = {f"My name is {n} and I am {a} years old": (n, a) for n, a in ARTICLE_PEOPLE}


def make_app(
    latency: float = 0.02, dataset: str = "people.csv", store: Path | None = None
) -> FanoutApp:
    settings = DashboardSettings(
        dataset=bundled_datasets_dir() / dataset,
        strategy="sequential",
        concurrency=2,
        endpoint=choose_endpoint(local=True),
        server=ServerConfig(latency=latency, jitter=0.0),
        store=store,
    )
    return FanoutApp(settings, load_dataset(settings.dataset), Person)


async def run_and_wait(pilot: Pilot[int], app: FanoutApp, runs_before: int) -> None:
    await pilot.press("r")
    await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) > runs_before)
    await wait_for(pilot, lambda: not app.running)


def read_csv(folder: Path, pattern: str) -> list[dict[str, str]]:
    (path,) = folder.glob(pattern)
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def stat(app: FanoutApp, key: str) -> str:
    return app.query_one(StatsBar).value(key)


@pytest.mark.parametrize("number", range(1, len(STRATEGIES) + 1))
async def test_each_strategy_fills_the_table_with_the_seven_people(number: int) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(str(number))
        assert app.strategy == list(STRATEGIES)[number - 1]
        await run_and_wait(pilot, app, 0)
        table = app.query_one(ResultsTable)
        assert table.row_count == 7
        rows = list(table.rows_by_key.values())
        assert all(row.status is Status.OK for row in rows)
        assert {(row.data or {}).get("name") for row in rows} == {n for n, _ in PEOPLE.values()}
        for row in rows:
            assert (row.data or {}) == dict(zip(("name", "age"), PEOPLE[row.text], strict=True))
            assert row.delivered_s is not None and row.finished_s is not None
        assert stat(app, "done") == "7/7"
        assert stat(app, "failed") == "0"
        history = app.query_one(RunsTable).history
        assert len(history) == 1 and history[0][1].strategy == app.strategy
        assert history[0][1].ok == 7


async def test_a_run_keeps_room_for_its_rows_so_the_table_never_re_lays_out() -> None:
    """Every change of the table's scrollable height re-lays-out the whole screen, so
    the height is set once for the run's 1,000 rows, not grown while they arrive."""
    app = make_app(latency=0.0, dataset="people_1000.csv")
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ResultsTable)
        heights: list[tuple[int, int]] = []
        show_progress = table.show_progress

        def recording(rows: Sequence[Row], elapsed: float) -> None:
            show_progress(rows, elapsed)
            heights.append((table.row_count, table.virtual_size.height))

        table.show_progress = recording  # type: ignore[method-assign]
        await pilot.press("5")
        app.query_one(SemaphoreControl).value = 50
        await run_and_wait(pilot, app, 0)
        assert table.row_count == 1000
        assert len(heights) > 1 and heights[0][0] < 1000  # added over several frames
        # the header line and all the run's rows, from the first frame on
        assert {height for _, height in heights} == {1001}
        assert table.virtual_size.height == 1001
        await pilot.press("end")
        assert table.cursor_row == 999


async def test_walkthrough_run_switch_run_again_and_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's walk-through: 2, r; 5, +, r; e, enter -> a CSV with the 7 people."""
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await run_and_wait(pilot, app, 0)
        await pilot.press("5", "plus")
        assert app.concurrency == 3
        await run_and_wait(pilot, app, 1)
        history = app.query_one(RunsTable).history
        assert [s.strategy for _, s in history] == ["gather", "as_completed_semaphore"]
        assert history[1][1].concurrency == 3 and history[1][1].max_in_flight <= 3
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(tmp_path.glob("fanout-people-*.csv")))
    exported = read_csv(tmp_path, "fanout-people-as_completed_semaphore-*.csv")
    assert len(exported) == 7
    assert {(r["data.name"], int(r["data.age"])) for r in exported} == set(PEOPLE.values())
    assert all(r["status"] == "ok" for r in exported)


async def test_runs_table_exports_too(tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_and_wait(pilot, app, 0)
        await pilot.press("e")
        await pilot.click("#export-runs")
        path_input = app.screen.query_one("#export-path")
        path_input.value = str(tmp_path / "runs.csv")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: (tmp_path / "runs.csv").exists())
    rows = read_csv(tmp_path, "runs.csv")
    assert len(rows) == 1 and rows[0]["strategy"] == "sequential" and rows[0]["ok"] == "7"


async def test_a_frame_that_changes_the_stats_draws_neither_table_nor_chart() -> None:
    """Textual draws every widget whose container overlaps a changed region; the
    table and the chart sit in boxes of their own so a stats tick leaves them be."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "127.0.0.1" in str(app.query_one(DatasetBar).render()))
        await pilot.pause(0.3)  # the simulator has started and the header says so
        drawn: dict[str, int] = {}
        stat_widget = app.query_one(StatTiles)
        for widget in (app.query_one(ResultsTable), app.query_one(InFlightChart), stat_widget):
            render_lines = widget.render_lines

            def counting(
                crop: Region, name: str = type(widget).__name__, f: Any = render_lines
            ) -> Any:
                drawn[name] = drawn.get(name, 0) + 1
                return f(crop)

            widget.render_lines = counting  # type: ignore[method-assign]
        stat_widget.set_value("elapsed", "9.99 s")
        await pilot.pause()
        await pilot.pause()
        assert drawn.get("StatTiles", 0) >= 1  # the frame happened
        assert drawn.get("ResultsTable", 0) == 0
        assert drawn.get("InFlightChart", 0) == 0


async def test_semaphore_keys_change_the_size_and_grey_out_when_unused() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        control = app.query_one(SemaphoreControl)
        assert control.has_class("unused")  # sequential ignores it
        await pilot.press("4")
        assert not control.has_class("unused")
        await pilot.press("plus", "plus", "minus")
        assert control.value == 3
        await pilot.press("minus", "minus", "minus", "minus")
        assert control.value == 1  # never below 1
        control.value = MAX_SEMAPHORE - 1
        await pilot.press("plus", "plus")
        assert control.value == MAX_SEMAPHORE  # never above the maximum
        # The value is redrawn without a re-layout, so its fixed box must hold the widest.
        await pilot.pause()
        label = app.query_one("#sem-value", Label)
        lines = label.render_lines(Region(0, 0, *label.region.size))
        shown = "".join(strip.text for strip in lines)
        assert str(MAX_SEMAPHORE) in shown


async def test_a_second_run_while_one_is_going_is_refused_and_cancel_keeps_rows() -> None:
    app = make_app(latency=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", "r")
        await wait_for(pilot, lambda: app.feed is not None and app.feed.run.ok >= 2)
        await pilot.press("r")  # refused: one at a time
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.running)
        history = app.query_one(RunsTable).history
        assert len(history) == 1
        stats = history[0][1]
        assert stats.ok >= 2 and stats.ok + stats.cancelled == 7
        table = app.query_one(ResultsTable)
        assert sum(1 for r in table.rows_by_key.values() if r.status is Status.OK) == stats.ok
        assert app.query_one("#run", Button).disabled is False


async def cancel_after_two(pilot: Pilot[int], app: FanoutApp) -> None:
    """A for loop over the seven people, cancelled once two rows are ok."""
    await pilot.press("1", "r")
    await wait_for(pilot, lambda: app.feed is not None and app.feed.run.ok >= 2)
    await pilot.press("c")
    await wait_for(pilot, lambda: not app.running)


async def test_a_cancelled_run_shows_cancelled_apart_from_done_and_failed(tmp_path: Path) -> None:
    """Cancelled rows are neither done nor failed: the stats bar, its progress bar, the runs
    table and the store say the same numbers."""
    store = tmp_path / "runs.sqlite3"
    app = make_app(latency=0.3, store=store)
    async with app.run_test(size=SIZE) as pilot:
        await cancel_after_two(pilot, app)
        await pilot.pause()
        stats = app.query_one(RunsTable).history[0][1]
        assert stats.ok >= 2 and stats.failed == 0 and stats.cancelled == 7 - stats.ok
        assert stat(app, "done") == f"{stats.ok}/7"
        assert stat(app, "cancelled") == str(stats.cancelled)
        assert stat(app, "failed") == "0"
        progress = app.query_one("#progress", ProgressBar)
        assert (progress.progress, progress.total) == (stats.ok, 7)
        runs = app.query_one(RunsTable)
        labels = [column.label.plain for column in runs.columns.values()]
        cells = dict(zip(labels, runs.get_row_at(0), strict=True))
        assert (cells["ok"], cells["failed"], cells["cancelled"]) == (
            str(stats.ok),
            "0",
            str(stats.cancelled),
        )
        assert cells["cost"] == f"${stats.cost_usd:.4f}"
    with Store(store, create=False) as opened:
        (info,) = opened.list_runs()
    assert (info.status, info.ok, info.failed, info.cancelled) == (
        "cancelled",
        stats.ok,
        0,
        stats.cancelled,
    )


async def test_enter_on_a_row_opens_its_detail() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_and_wait(pilot, app, 0)
        app.query_one(ResultsTable).focus()
        await pilot.press("enter")
        assert isinstance(app.screen, RowDetailScreen)
        assert app.screen.row.data is not None
        await pilot.press("escape")
        assert not isinstance(app.screen, RowDetailScreen)


async def test_opening_a_bad_file_shows_the_loader_message_and_keeps_the_data(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,body\na,b\n", encoding="utf-8")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        assert isinstance(app.screen, OpenDatasetScreen)
        app.screen.query_one("#open-path").value = str(bad)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        message = str(app.screen.query_one("#open-error", Label).render())
        assert "no column 'text'" in message
        await pilot.press("escape")
        assert app.dataset.name == "people"


async def test_opening_another_dataset_switches_to_it() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        app.screen.query_one("#open-path").value = str(  # type: ignore[attr-defined]
            bundled_datasets_dir() / "people_1000.csv"
        )
        await pilot.press("enter")
        await pilot.pause()
        assert app.dataset.name == "people_1000" and len(app.dataset) == 1000


async def test_compare_all_runs_the_five_in_turn() -> None:
    app = make_app(latency=0.01)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 5, timeout=40)
        await wait_for(pilot, lambda: not app.running)
        strategies = [s.strategy for _, s in app.query_one(RunsTable).history]
        assert strategies == list(STRATEGIES)[:5]
        assert app.query_one(StrategyPicker).strategy == "as_completed_semaphore"


async def test_runs_are_recorded_and_can_be_opened_from_past_runs(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite3"
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await run_and_wait(pilot, app, 0)
        recorded = app.shown.run_id if app.shown else None
        assert recorded is not None
        app.query_one(ResultsTable).reset()
        await pilot.press("h")
        assert isinstance(app.screen, HistoryScreen)
        assert [info.id for info in app.screen.runs] == [recorded]
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(ResultsTable).row_count == 7
        assert app.shown is not None and app.shown.run_id == recorded
    with Store(store, create=False) as opened:
        info = opened.get_run(recorded)
        assert info.status == "finished" and info.ok == 7


async def test_a_cancelled_run_is_resumed_from_past_runs(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite3"
    app = make_app(latency=0.3, store=store)
    async with app.run_test(size=SIZE) as pilot:
        await cancel_after_two(pilot, app)
        with Store(store, create=False) as opened:
            (info,) = opened.list_runs()
        done_before = info.ok
        assert info.status == "cancelled" and 2 <= done_before < 7
        await pilot.press("h")
        await pilot.press("r")
        await wait_for(
            pilot, lambda: not app.running and len(app.query_one(RunsTable).history) == 2
        )
        resumed = app.query_one(RunsTable).history[-1][1]
        assert resumed.records == 7 - done_before  # only the rows without a result were sent
    with Store(store, create=False) as opened:
        info = opened.get_run(info.id)
        assert info.ok == 7 and info.status == "finished"


async def test_limits_dialog_sets_the_next_runs_limits() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        assert isinstance(app.screen, LimitsScreen)
        app.screen.query_one("#limit-rpm").value = "6000"  # type: ignore[attr-defined]
        app.screen.query_one("#limit-budget").value = "0.5"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert app.engine.options.rpm == 6000 and app.engine.options.budget_usd == 0.5
        await pilot.press("l")
        app.screen.query_one("#limit-rpm").value = "lots"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert "not a number" in str(app.screen.query_one("#limits-error", Label).render())


async def test_open_takes_a_bundled_name_and_suggests_its_schema() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        screen = app.screen
        assert isinstance(screen, OpenDatasetScreen)
        screen.query_one("#open-path").value = "contacts.csv"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert app.dataset.name == "contacts" and app.schema.__name__ == "Contact"
        assert app.settings.schema == "Contact"
        table = app.query_one(ResultsTable)
        assert "data.name" in table.render_line(0).text
        table.scroll_to(x=table.max_scroll_x, animate=False)  # the last field, scrolled to
        await pilot.pause()
        assert "data.address.country" in table.render_line(0).text
        assert "Contact" in str(app.query_one(DatasetBar).render())


async def test_open_with_a_schema_and_columns_of_the_users_own(tmp_path: Path) -> None:
    schema = tmp_path / "tickets.py"
    schema.write_text(
        "from pydantic import BaseModel\n\n"
        "class Ticket(BaseModel):\n    id: int\n    status: str\n    tags: list[str]\n",
        encoding="utf-8",
    )
    data = tmp_path / "tickets.csv"
    data.write_text('ref,body,team\nT-1,"id: 7; status: open; tags: a, b",ops\n', "utf-8")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        screen = app.screen
        screen.query_one("#open-path").value = str(data)  # type: ignore[attr-defined]
        screen.query_one("#open-column").value = "body"  # type: ignore[attr-defined]
        screen.query_one("#open-id").value = "ref"  # type: ignore[attr-defined]
        screen.query_one("#open-schema-spec").value = f"{schema}:Ticket"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert app.schema.__name__ == "Ticket" and app.dataset.id_column == "ref"
        await pilot.press("r")
        await wait_for(pilot, lambda: not app.running and app.shown is not None)
        table = app.query_one(ResultsTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        row = table.rows[0]
        assert row.id == "T-1" and row.extra == {"team": "ops"}
        assert row.data == {"id": 7, "status": "open", "tags": ["a", "b"]}
        table.focus()
        await pilot.press("enter")
        assert isinstance(app.screen, RowDetailScreen)
        assert "team: ops" in str(app.screen.query_one("#detail-columns").render())


async def test_an_rpm_limit_stays_shown_and_its_waits_are_not_latency() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert "none" in stat(app, "limits")
        await pilot.press("l")
        app.screen.query_one("#limit-rpm").value = "120"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert "120 rpm" in stat(app, "limits")
        await pilot.press("4")  # gather + Semaphore(2): both slots go to the limiter's queue
        await run_and_wait(pilot, app, 0)
        assert "120 rpm" in stat(app, "limits")  # still there after the run and its toast
        stats = app.query_one(RunsTable).history[0][1]
        # 2 a second after a burst of 2: the last rows waited ~2.5 s for a slot and the
        # limiter, but each spent ~0.02 s on the wire, and never more than 2 were out.
        assert stats.ok == 7 and stats.max_in_flight <= 2
        assert stats.p95_latency_s is not None and stats.p95_latency_s < 0.5
        assert stats.p50_wait_limiter_s is not None and stats.p50_wait_limiter_s > 0.5
        assert "/ 0.00 s" not in stat(app, "waits")
        table = app.query_one(ResultsTable)
        last = max(table.rows, key=lambda row: row.finished_s or 0.0)
        table.cursor_row = table.rows.index(last)
        table.focus()
        await pilot.press("enter")
        assert isinstance(app.screen, RowDetailScreen)
        timings = str(app.screen.query_one("#detail-timings", Static).render())
        assert "rate limiter wait" in timings
        assert last.phases is not None and last.phases.wait_limiter_s > 0.3
        assert last.phases.wait_sem_s + last.phases.wait_limiter_s > 1.5  # its turn, then 120 rpm
        assert f"{last.phases.wait_limiter_s:.3f} s" in timings
