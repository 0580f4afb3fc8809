"""Everything reachable from the keyboard and the palette, and keys that cannot act
now shown disabled; the failed-rows filter; what is on screen named in the header."""

from __future__ import annotations

from pathlib import Path

from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import Input, Markdown

from core.options import bundled_datasets_dir
from core.results import Status
from tests.tui_support import scripted_app, wait_for
from tui.app import RESULTS_TITLE, FanoutApp
from tui.commands import palette_commands
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen
from tui.screens.open_dataset import OpenDatasetScreen
from tui.widgets.chart import InFlightChart
from tui.widgets.controls import SemaphoreControl
from tui.widgets.header import DatasetBar
from tui.widgets.results_table import ResultsTable
from tui.widgets.runs_table import RunsTable
from tui.widgets.stats_bar import StatsBar, StatTiles

SIZE = (120, 36)


async def run_once(pilot: Pilot[int], app: FanoutApp) -> None:
    runs = len(app.query_one(RunsTable).history)
    await pilot.press("r")
    await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) > runs)
    await wait_for(pilot, lambda: not app.running)


def app_actions() -> set[str]:
    return {b.action.split("(")[0] for b in FanoutApp.BINDINGS if isinstance(b, Binding)} - {
        "pick",
        "semaphore",
    }  # in the palette by name: "Run ...", "Set semaphore to ..."


def test_the_palette_offers_every_action_of_the_keys() -> None:
    offered = {command.action_name for command in palette_commands()}
    assert app_actions() <= offered
    assert {"run_strategy", "set_semaphore"} <= offered


async def test_help_lists_every_key_from_the_bindings_and_scrolls_at_once() -> None:
    app, _ = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        source = app.screen.query_one(Markdown).source
        for binding in FanoutApp.BINDINGS:
            assert isinstance(binding, Binding)
            key = binding.key_display or binding.key.split(",")[0]
            assert f"| `{key}` | {binding.description}" in source, key
        scroller = app.screen.query_one("#help")
        assert scroller.has_focus and scroller.max_scroll_y > 0
        await pilot.press("down", "down")
        assert scroller.scroll_y > 0  # no Tab needed first


async def test_the_palette_runs_a_strategy_by_name() -> None:
    app, _ = scripted_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"run asyncio.gather")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 1)
        assert app.query_one(RunsTable).history[0][1].strategy == "gather"


async def test_keys_that_cannot_act_during_a_run_are_disabled_then_back() -> None:
    app, engine = scripted_app(hold_from=3)
    async with app.run_test(size=SIZE) as pilot:
        assert app.check_action("cancel", ()) is None  # nothing to cancel yet
        await pilot.press("r")
        await wait_for(pilot, lambda: app.query_one(ResultsTable).row_count == 3)
        for action in ("run", "compare_all", "open_dataset", "history", "pick", "semaphore"):
            assert app.check_action(action, ()) is None, action
        assert app.check_action("cancel", ()) is True
        await pilot.press("o", "2", "plus")
        assert not app.screen.is_modal and app.strategy == "gather_semaphore"
        assert app.concurrency == 2  # the control keeps showing the run's semaphore
        await pilot.press("c")
        engine.extracts[-1].release.set()
        await wait_for(pilot, lambda: not app.running)
        assert app.check_action("run", ()) is True
        assert app.check_action("cancel", ()) is None


async def test_f_shows_only_failed_rows_and_n_jumps_between_them() -> None:
    app, engine = scripted_app()
    engine.fail = {1, 4}
    async with app.run_test(size=(80, 24)) as pilot:
        await run_once(pilot, app)
        table = app.query_one(ResultsTable)
        assert table.row_count == 7
        await pilot.press("n")
        first = table.cursor_row
        assert table.rows[first].status is Status.FAILED
        await pilot.press("n")
        assert table.cursor_row != first and table.rows[table.cursor_row].status is Status.FAILED
        await pilot.press("f")
        assert table.row_count == 2 and all(r.status is Status.FAILED for r in table.rows)
        assert "failed rows only" in str(table.border_subtitle)
        await pilot.press("f")
        assert table.row_count == 7
        # Every figure the stats bar holds is on screen in full, failures included.
        tiles = app.query_one(StatTiles)
        drawn = "".join(strip.text for strip in tiles.render_lines(tiles.region.reset_offset))
        assert app.query_one(StatsBar).value("failed") == "2"
        for figure in tiles.shown():
            assert figure.value in drawn, figure


async def test_the_chart_shows_this_run_on_its_own_scale_and_v_overlays_the_last() -> None:
    app, _ = scripted_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await run_once(pilot, app)
        await pilot.press("2")
        await run_once(pilot, app)
        chart = app.query_one(InFlightChart)
        assert [s.label for s, _ in chart.drawn()] == ["#2 asyncio.gather"]
        await pilot.press("v")
        assert len(chart.drawn()) == 2
        legend = str(app.query_one("#chart-legend").render())
        assert "#1 gather + Semaphore (2)" in legend and "#2 asyncio.gather" in legend


async def open_dataset(pilot: Pilot[int], app: FanoutApp, name: str) -> None:
    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(app.screen, OpenDatasetScreen))
    app.screen.query_one("#open-path", Input).value = str(bundled_datasets_dir() / name)
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.dataset.path.name == name)


def header(app: FanoutApp) -> str:
    return str(app.query_one(DatasetBar).render())


async def test_the_header_and_controls_name_what_is_on_screen(tmp_path: Path) -> None:
    app, _ = scripted_app(store=tmp_path / "runs.sqlite3", concurrency=3)
    async with app.run_test(size=(160, 48)) as pilot:
        await run_once(pilot, app)
        table = app.query_one(ResultsTable)
        assert "people.csv" in header(app) and "run " in table.border_title  # type: ignore[operator]
        # Open another dataset: the header and the table's title follow it.
        await open_dataset(pilot, app, "people_1000.csv")
        assert "people_1000.csv (1,000 rows)" in header(app)
        assert table.border_title == RESULTS_TITLE and table.row_count == 0
        # The past runs dialog lists this dataset's runs (none yet); a lists them all.
        app.query_one(SemaphoreControl).value = 7
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        assert app.screen.runs == []  # type: ignore[attr-defined]
        await pilot.press("a")
        assert len(app.screen.runs) == 1  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: table.row_count == 7)
        # A past run's rows: its dataset, and the semaphore it ran with.
        assert "people.csv (7 rows)" in header(app) and "Person" in header(app)
        assert app.query_one(SemaphoreControl).value == 3


async def test_a_resume_shows_the_resumed_runs_dataset_and_semaphore(tmp_path: Path) -> None:
    app, engine = scripted_app(store=tmp_path / "runs.sqlite3", hold_from=3)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.query_one(ResultsTable).row_count == 3)
        await pilot.press("c")
        engine.extracts[-1].release.set()
        await wait_for(pilot, lambda: not app.running)
        engine.hold_from = None
        app.query_one(SemaphoreControl).value = 9
        await open_dataset(pilot, app, "people_1000.csv")
        assert "people_1000.csv" in header(app)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("a", "r")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 2)
        await wait_for(pilot, lambda: not app.running)
        # The resumed run's rows are on screen: its dataset, schema and semaphore too.
        assert "people.csv (7 rows)" in header(app)
        assert app.query_one(SemaphoreControl).value == 2
        assert app.query_one(RunsTable).history[-1][0] == "people"
        assert app.query_one(StatsBar).value("done") == "4/4"  # only the rows left were sent
