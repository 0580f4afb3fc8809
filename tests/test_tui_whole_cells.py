"""No table on the dashboard shows a value cut: what the screen shows of a cell is the
whole value or ends with "…" (rows/s 7.1 must never read "7.", a name "Anjali Nak").

Real runs on the simulator, over real HTTP; the check reads the screen as drawn (the
compositor's lines inside the table), word by word: every word there is a word of a
whole value (or a column label), or ends with "…". Runs and past-runs tables are also
checked at every sideways scroll position, where the left edge cuts columns too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable

from core.client import choose_endpoint
from core.dataset import load_dataset
from core.export import data_cell
from core.layout import field_columns
from core.localserver import ServerConfig
from core.models import Contact, Person
from core.options import bundled_datasets_dir
from tests.test_tui_quality import pick
from tests.tui_support import wait_for
from tui.app import FanoutApp
from tui.screens.history import HistoryScreen
from tui.settings import DashboardSettings
from tui.visible import visible
from tui.widgets.results_table import ResultsTable
from tui.widgets.runs_table import SHORT, RunsTable
from tui.widgets.waterfall import delivered

SIZES = [(80, 24), (120, 36)]
WATERFALL_GLYPHS = set("█▓▒░·◆─━▕▏|")


def make_app(
    dataset: Path, schema: type[BaseModel] = Person, store: Path | None = None
) -> FanoutApp:
    settings = DashboardSettings(
        dataset=dataset,
        schema=schema.__name__,
        strategy="sequential",
        concurrency=4,
        endpoint=choose_endpoint(local=True),
        server=ServerConfig(latency=0.0, jitter=0.0),
        store=store,
    )
    return FanoutApp(settings, load_dataset(settings.dataset), schema)


def words(values: list[str]) -> set[str]:
    return {word for value in values for word in value.split()}


def shown_lines(app: FanoutApp, widget: Widget) -> list[str]:
    """The screen's characters inside ``widget``'s scrollable area, line by line."""
    region = widget.scrollable_content_region
    strips = app.screen._compositor.render_strips()
    return [
        strips[y].crop(region.x, region.right).text
        for y in range(region.y, region.bottom)
        if y < len(strips)
    ]


def shortened(word: str, whole: set[str], figures: bool) -> bool:
    """A word ending in "…" that starts a whole value's word; with ``figures`` (the runs
    and past-runs tables, whose figures shorten by unit or are not shown), not a figure.
    (The results table's fields are the schema's strings: a phone number is text.)"""
    head = word.removesuffix("…")
    if word == head or (figures and re.fullmatch(r"[$\d.,%]+", head)):
        return False
    return any(value.startswith(head) for value in whole)


def cut_words(lines: list[str], whole: set[str], figures: bool = True) -> list[str]:
    """Words on screen that are neither a whole value's word nor shortened with "…"."""
    return [
        word
        for line in lines
        for word in line.replace("│", " ").split()
        if word not in whole
        and not shortened(word, whole, figures)
        and not set(word) <= WATERFALL_GLYPHS
    ]


def table_words(table: DataTable[object]) -> set[str]:
    values = [column.label.plain for column in table.columns.values()]
    for row in range(table.row_count):
        values += [str(getattr(cell, "plain", cell)) for cell in table.get_row_at(row)]
    return words(values)


async def every_scroll(pilot: Pilot[object], table: DataTable[object]) -> list[tuple[int, str]]:
    """Cut words at each sideways scroll position (offset, word)."""
    app = pilot.app
    assert isinstance(app, FanoutApp)
    whole = table_words(table)
    found: list[tuple[int, str]] = []
    for x in range(0, int(table.max_scroll_x) + 1):
        table.scroll_to(x=x, animate=False)
        await pilot.pause()
        found += [(x, word) for word in cut_words(shown_lines(app, table), whole)]
    return found


async def run_with(pilot: Pilot[object], app: FanoutApp, key: str, runs: int) -> None:
    await pilot.press(key, "r")
    await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) > runs, timeout=60)
    await wait_for(pilot, lambda: not app.running)


@pytest.mark.parametrize("size", SIZES)
async def test_the_runs_table_never_shows_a_cut_value(size: tuple[int, int]) -> None:
    app = make_app(bundled_datasets_dir() / "people.csv")
    async with app.run_test(size=size) as pilot:
        await run_with(pilot, app, "2", 0)
        await run_with(pilot, app, "4", 1)
        app.view = "runs"
        await pilot.pause()
        table = app.query_one(RunsTable)
        assert table.row_count == 2 and table.display
        whole = table_words(table) | words(list(SHORT.values()))
        at_start = cut_words(shown_lines(app, table), whole)
        assert at_start == [], at_start
        assert table.max_scroll_x > 0  # columns left to scroll to
        cut = await every_scroll(pilot, table)
        assert cut == [], cut[:10]


@pytest.mark.parametrize("size", SIZES)
async def test_the_results_table_never_shows_a_cut_value(size: tuple[int, int]) -> None:
    app = make_app(bundled_datasets_dir() / "contacts.csv", Contact)
    async with app.run_test(size=size) as pilot:
        await pick(pilot, app, "model", "sim-fast")
        await run_with(pilot, app, "r", 0)
        table = app.query_one(ResultsTable)
        assert table.row_count > 5
        values = [c.label for c in (*table._left, *table._middle, *table._right)]
        for row in table.rows:
            values += [row.id, visible(" ".join(row.text.split())), row.status.value]
            values += [str(row.attempts), delivered(row, 9).text]
            if row.latency_s is not None:
                values.append(f"{row.latency_s:.2f} s")
            if row.error:
                values.append(row.error)
            for column in field_columns(Contact):
                values.append(data_cell(column.value(row.data), as_json=column.json_cell))
        whole = words(values) | {"~" + word for word in words(values)}
        table.focus()
        for _ in range(len(table._middle)):  # each sideways stop, one whole column each
            await pilot.pause()
            cut = cut_words(shown_lines(app, table), whole, figures=False)
            assert cut == [], (table.scroll_x, cut[:10])
            await pilot.press("right")


@pytest.mark.parametrize("size", SIZES)
async def test_past_runs_never_show_a_cut_value(size: tuple[int, int], tmp_path: Path) -> None:
    app = make_app(bundled_datasets_dir() / "people.csv", store=tmp_path / "runs.sqlite3")
    async with app.run_test(size=size) as pilot:
        await run_with(pilot, app, "2", 0)
        await run_with(pilot, app, "4", 1)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.pause()
        table = app.screen.query_one("#history-table", DataTable)
        assert table.row_count == 2
        cut = cut_words(shown_lines(app, table), table_words(table))
        assert cut == [], cut
        cut_anywhere = await every_scroll(pilot, table)
        assert cut_anywhere == [], cut_anywhere[:10]
