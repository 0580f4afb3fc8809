"""The results table during a run: what a frame repaints, and the growing time axis."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import BaseModel
from textual.app import App, ComposeResult
from textual.geometry import Region

from core.models import Person
from core.results import Phases, Row, Status
from tui.widgets.results_table import ResultsTable
from tui.widgets.waterfall import LEGEND, Timeline, nice_ceiling, waterfall

VISIBLE = 10  # rows in view: an 11-line table has a header line and 10 rows


class TableApp(App[None]):
    """A results table alone, made ready for a run of ``rows`` people."""

    CSS = "ResultsTable { height: 11; }"

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        yield ResultsTable()

    def on_mount(self) -> None:
        table = self.query_one(ResultsTable)
        table.set_schema(Person)
        table.reserve(self.rows)


def finished(index: int, *, delivered: bool = True) -> Row:
    return Row(
        index,
        f"p{index}",
        f"My name is P{index} and I am 30 years old",
        Status.OK,
        data={"name": f"P{index}", "age": 30},
        queued_s=0.0,
        started_s=0.01,
        finished_s=0.05,
        delivered_s=0.05 if delivered else None,
        attempts=1,
    )


class Repaints:
    """What the table asked to repaint: None for all of it, else the screen lines."""

    def __init__(self, table: ResultsTable) -> None:
        self.calls: list[list[int] | None] = []
        original = table.refresh

        def refresh(*regions: Region, **kwargs: Any) -> Any:
            if regions:
                self.calls.append([y for region in regions for y in region.line_range])
            else:
                self.calls.append(None)
            return original(*regions, **kwargs)

        table.refresh = refresh  # type: ignore[method-assign]

    def take(self) -> list[list[int] | None]:
        calls, self.calls = self.calls, []
        return calls


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.07, 0.08), (0.1, 0.1), (0.11, 0.12), (1.3, 1.5), (2.2, 2.5), (7.0, 8.0), (9.0, 10.0)],
)
def test_nice_ceiling(seconds: float, expected: float) -> None:
    assert nice_ceiling(seconds) == pytest.approx(expected)


def test_the_axis_grows_in_steps_and_says_when() -> None:
    timeline = Timeline(scale=1.0)
    assert not timeline.stretch(0.9)  # still covered
    assert timeline.stretch(1.1) and timeline.scale == pytest.approx(1.2)
    assert not timeline.stretch(1.15)
    assert timeline.stretch(1.21) and timeline.scale == pytest.approx(1.5)


async def test_a_frame_repaints_only_the_new_rows_in_view() -> None:
    app = TableApp(rows=100)
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(ResultsTable)
        await pilot.pause()
        assert table.size.height - 1 == VISIBLE
        repaints = Repaints(table)

        table.show_progress([finished(i) for i in range(4)], elapsed=0.005)
        assert repaints.take() == [[1, 2, 3, 4]]  # lines 1-4 (line 0 is the header)

        table.show_progress([finished(i) for i in range(4, 30)], elapsed=0.009)
        assert repaints.take() == [[5, 6, 7, 8, 9, 10]]  # the rest is out of view

        table.show_progress([finished(i) for i in range(30, 40)], elapsed=0.009)
        assert repaints.take() == []  # nothing on screen changed

        table.show_progress([], elapsed=0.5)  # the axis grows a step: every bar moves
        assert repaints.take() == [None]
        assert table.row_count == 40


async def test_a_row_delivered_after_it_was_drawn_is_repainted() -> None:
    """gather hands rows over only at its end; their markers appear then."""
    app = TableApp(rows=10)
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(ResultsTable)
        rows = [finished(i, delivered=False) for i in range(3)]
        table.show_progress(rows, elapsed=0.005)
        await pilot.pause()
        assert "◆" not in table.render_line(2).text  # no delivery marker yet
        repaints = Repaints(table)
        table.show_progress([], elapsed=0.006)
        assert repaints.take() == []
        rows[1].delivered_s = 0.006
        table.show_progress([], elapsed=0.007)
        assert repaints.take() == [[2]]
        await pilot.pause()
        assert "◆" in table.render_line(2).text


async def test_the_runs_end_fits_the_height_and_the_axis_exactly() -> None:
    app = TableApp(rows=100)
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(ResultsTable)
        table.show_progress([finished(i) for i in range(30)], elapsed=0.7)
        await pilot.pause()
        assert table.virtual_size.height == 101  # the room reserved for 100 rows
        assert table.timeline.scale == pytest.approx(0.8)  # a step of the growing axis
        table.add_results([finished(i) for i in range(30, 40)], span=0.73)
        await pilot.pause()
        assert table.virtual_size.height == 41  # header and the 40 rows the run had
        assert table.timeline.scale == pytest.approx(0.73)


class Inner(BaseModel):
    x: int


class Wide(BaseModel):
    """More fields than any terminal shows, one named like fanout's status column."""

    status: str
    nested: Inner
    items: list[Inner]
    f01: int = 0
    f02: int = 0
    f03: int = 0
    f04: int = 0
    f05: int = 0
    f06: int = 0
    f07: int = 0
    f08: int = 0
    f09: int = 0
    f10: int = 0
    last_field: str = "end"


class WideApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ResultsTable()

    def on_mount(self) -> None:
        self.query_one(ResultsTable).set_schema(Wide)


def wide_row() -> Row:
    row = finished(0)
    row.data = {
        "status": "paid",
        "nested": {"x": 1},
        "items": [{"x": 2}],
        **{f"f{i:02d}": i for i in range(1, 11)},
        "last_field": "end",
    }
    row.guessed = ("items[].x",)
    return row


@pytest.mark.parametrize("width", [80, 120, 160, 220])
async def test_a_wide_schema_scrolls_its_fields_but_never_the_status_and_waterfall(
    width: int,
) -> None:
    app = WideApp()
    async with app.run_test(size=(width, 10)) as pilot:
        table = app.query_one(ResultsTable)
        table.add_results([wide_row()], span=0.1)
        await pilot.pause()
        for _ in range(2):  # as first shown, then scrolled all the way right
            header, line = table.render_line(0).text, table.render_line(1).text
            assert len(header) == table.scrollable_content_region.width
            assert header.lstrip().startswith("id")
            for label in ("status", "latency", "tries", "waterfall", "delivered"):
                assert label in header, (width, header)
            assert "│ok " in line and "◆" in line and "0.05 s" in line
            table.scroll_to(x=table.max_scroll_x, animate=False)
            await pilot.pause()
        # scrolled right: the last field is in view, the text is not
        assert "data.last_field" in header and "end" in line
        assert "My name is" not in line
        # a field and the fanout column of the same name are told apart
        table.scroll_to(x=0, animate=False)
        await pilot.pause()
        if width >= 120:
            assert "data.status" in table.render_line(0).text


async def test_made_up_values_are_marked() -> None:
    app = WideApp()
    async with app.run_test(size=(220, 10)) as pilot:
        table = app.query_one(ResultsTable)
        table.add_results([wide_row()], span=0.1)
        table.scroll_to(x=30, animate=False)
        await pilot.pause()
        line = table.render_line(1).text
        assert '~[{"x":2}]' in line and table.guessed_rows == 1
        assert "~paid" not in line  # a field found by a rule is not marked


def test_the_waterfall_draws_where_the_time_went() -> None:
    row = finished(0)
    row.queued_s, row.started_s, row.finished_s, row.delivered_s = 0.0, 2.0, 10.0, None
    row.phases = Phases(wait_sem_s=2.0, wait_limiter_s=2.0, connect_s=1.0, backoff_s=2.0)
    row.phases.wire_s = 3.0
    cells = "".join(segment.text for segment in waterfall(row, Timeline(scale=10.0), 10))
    assert cells == "··░░·▒▒███"
    assert LEGEND.startswith("· waiting its turn  ░ rate limiter  ▒ backoff  █ on the wire")


def test_a_finished_row_keeps_at_least_one_cell_of_wire() -> None:
    row = finished(0)
    row.queued_s, row.started_s, row.finished_s, row.delivered_s = 0.0, 0.0, 5.0, None
    row.phases = Phases(wait_limiter_s=4.99, wire_s=0.01)
    cells = "".join(segment.text for segment in waterfall(row, Timeline(scale=5.0), 5))
    assert cells == "░░░░█"


def test_rows_without_phases_draw_a_plain_bar() -> None:
    row = finished(0)
    row.queued_s, row.started_s, row.finished_s, row.delivered_s = 0.0, 1.0, 4.0, None
    cells = "".join(segment.text for segment in waterfall(row, Timeline(scale=5.0), 5))
    assert cells == "·████"


async def test_left_and_right_scroll_the_fields_a_whole_column_at_a_time() -> None:
    app = WideApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(ResultsTable)
        table.add_results([wide_row()], span=0.1)
        table.focus()
        await pilot.pause()
        seen: list[int] = [int(table.scroll_x)]
        for _ in range(40):
            await pilot.press("right")
            seen.append(int(table.scroll_x))
        assert seen[-1] == table.max_scroll_x > 0
        # every stop before the end is where a column starts: its label opens the view
        for x in sorted(set(seen[1:]) - {table.max_scroll_x}):
            table.scroll_to(x=x, animate=False)
            await pilot.pause()
            header = table.render_line(0).text
            start = table._left_width
            assert header[start : start + 5] == "data.", header
        steps = sorted(set(seen))
        assert len(steps) > 3 and all(b - a > 1 for a, b in itertools.pairwise(steps))
        for _ in range(40):
            await pilot.press("left")
        assert int(table.scroll_x) == 0
