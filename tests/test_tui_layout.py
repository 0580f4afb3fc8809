"""Every screen fits an 80x24 terminal: nothing a user needs has zero size or lies
off the screen, and the layout folds (compact bar, one view at a time) as it should."""

from __future__ import annotations

from pathlib import Path

from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Label, Static

from tests.tui_support import scripted_app, wait_for
from tui.screens.detail import RowDetailScreen
from tui.screens.export import ExportScreen
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen
from tui.screens.limits import LimitsScreen
from tui.screens.open_dataset import OpenDatasetScreen
from tui.screens.quit import QuitScreen
from tui.screens.run_params import RunParamsScreen
from tui.widgets.chart import InFlightChart
from tui.widgets.controls import ControlsLine, StrategyPicker
from tui.widgets.header import DatasetBar
from tui.widgets.results_table import ResultsTable
from tui.widgets.runs_table import RunsTable
from tui.widgets.stats_bar import StatTiles

SMALL = (80, 24)


def shown(widget: Widget) -> bool:
    """On screen as far as styles go: it and every ancestor displayed and visible."""
    node: object = widget
    while isinstance(node, Widget) and not isinstance(node, Screen):
        if not node.display or not node.visible:
            return False
        node = node.parent
    return True


def scrolled_into(widget: Widget) -> bool:
    """Inside a container that scrolls now: it may lie outside, the user scrolls to it."""
    return any(
        isinstance(node, Widget)
        and not isinstance(node, Screen)
        and (node.allow_vertical_scroll or node.allow_horizontal_scroll)
        for node in widget.ancestors
    )


def empty(widget: Widget) -> bool:
    """A label with nothing to say yet (an error line before any error) may be 0 tall."""
    return isinstance(widget, Label | Static) and not str(widget.render()).strip()


def layout_problems(screen: Screen[object]) -> list[str]:
    bounds = screen.region
    problems = []
    for widget in screen.walk_children(Widget):
        if not shown(widget) or scrolled_into(widget):
            continue
        name = f"{type(widget).__name__}#{widget.id}"
        if (widget.region.width == 0 or widget.region.height == 0) and not empty(widget):
            problems.append(f"{name} has no size: {widget.region}")
        if widget.region.area and not bounds.contains_region(widget.region):
            problems.append(f"{name} overflows the screen: {widget.region} not in {bounds}")
    return problems


async def test_every_screen_fits_80x24(tmp_path: Path) -> None:
    app, _ = scripted_app(store=tmp_path / "runs.sqlite3")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 1)
        await wait_for(pilot, lambda: not app.running)
        assert layout_problems(app.screen) == []
        for view in ("chart", "runs", "quality", "results"):
            await pilot.press("t")
            assert app.view == view
            await pilot.pause()
            assert layout_problems(app.screen) == [], view
        for key, screen_type in (
            ("question_mark", HelpScreen),
            ("e", ExportScreen),
            ("o", OpenDatasetScreen),
            ("h", HistoryScreen),
            ("l", LimitsScreen),
            ("m", RunParamsScreen),
            ("enter", RowDetailScreen),
        ):
            app.query_one(ResultsTable).focus()
            await pilot.press(key)
            await wait_for(pilot, lambda t=screen_type: isinstance(app.screen, t))  # type: ignore[misc]
            await pilot.pause(0.1)
            assert layout_problems(app.screen) == [], screen_type.__name__
            await pilot.press("escape")
            await wait_for(pilot, lambda: not app.screen.is_modal)


async def test_quit_during_a_run_asks_and_fits_80x24() -> None:
    app, engine = scripted_app(hold_from=3)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.query_one(ResultsTable).row_count == 3)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
        assert layout_problems(app.screen) == []
        assert "not recorded" in str(app.screen.query_one("#quit-message", Static).render())
        await pilot.press("n")
        await wait_for(pilot, lambda: not app.screen.is_modal)
        assert app.running and app.is_running  # staying keeps the run going
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_value == 0


async def test_the_layout_folds_on_small_terminals_and_unfolds_on_large() -> None:
    app, _ = scripted_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert not app.query_one(StrategyPicker).display  # compact: a line instead
        assert app.query_one(ControlsLine).region.height == 1
        assert app.query_one(InFlightChart).region.area == 0  # one view at a time
        assert app.query_one(ResultsTable).region.height >= 12
        header = str(app.query_one(DatasetBar).render())
        assert "people.csv" in header and "Person" in header and "mode tools" in header
        await pilot.resize_terminal(160, 48)
        await pilot.pause(0.1)
        assert app.query_one(StrategyPicker).region.height > 0
        assert not app.query_one(ControlsLine).display
        for widget in (ResultsTable, InFlightChart, RunsTable, StatTiles):
            assert app.query_one(widget).region.area > 0, widget.__name__
        assert "127.0.0.1" in str(app.query_one(DatasetBar).render())
