"""Snapshots of the main screens, with deterministic data and virtual time.

Update after an intended change with ``pytest tests/test_tui_snapshots.py
--snapshot-update`` and look at the report before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from textual.pilot import Pilot

from tests.tui_support import scripted_app
from tui.layout import shows_one_view
from tui.widgets.results_table import ResultsTable
from tui.widgets.runs_table import RunsTable

SIZE = (160, 48)
FIXED_NOW = datetime(2026, 11, 24, 12, 0, 0)


async def wait_for(pilot: Pilot[int], condition: Callable[[], bool], timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError("condition not met in time")
    await pilot.pause(0.2)  # let the tick timer draw what the run produced


def test_idle(snap_compare: Callable[..., bool]) -> None:
    app, _ = scripted_app()
    assert snap_compare(app, terminal_size=SIZE)


def test_mid_run(snap_compare: Callable[..., bool]) -> None:
    app, _ = scripted_app(hold_from=4)

    async def run_before(pilot: Pilot[int]) -> None:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.query_one(ResultsTable).row_count == 4)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_finished_two_runs(snap_compare: Callable[..., bool]) -> None:
    app, _ = scripted_app()

    async def run_before(pilot: Pilot[int]) -> None:
        await pilot.press("2", "r")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 1)
        await pilot.press("4", "r")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 2)
        await wait_for(pilot, lambda: not app.running)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (160, 48), (220, 60)])
def test_after_a_run_at_each_size(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    """From the compact layout (stats in a bar, one view at a time) to everything at once."""
    app, _ = scripted_app()

    async def run_before(pilot: Pilot[int]) -> None:
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 1)
        await wait_for(pilot, lambda: not app.running)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_row_detail(snap_compare: Callable[..., bool]) -> None:
    app, _ = scripted_app()

    async def run_before(pilot: Pilot[int]) -> None:
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 1)
        app.query_one(ResultsTable).focus()
        await pilot.press("enter")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_export_dialog(snap_compare: Callable[..., bool]) -> None:
    app, _ = scripted_app()
    app.now = lambda: FIXED_NOW

    async def run_before(pilot: Pilot[int]) -> None:
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 1)
        await pilot.press("e")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (160, 48)])
def test_chart_overlay_of_five_runs_at_each_size(
    snap_compare: Callable[..., bool], size: tuple[int, int]
) -> None:
    """``v`` after five runs (the last: gather + Semaphore (3)): every legend entry whole,
    labels shortened where the chart is short of room (numbers at 120x36, as in the runs
    table's #), the plot keeping its rows."""
    app, _ = scripted_app()

    async def run_before(pilot: Pilot[int]) -> None:
        # not as_completed + Semaphore: its starting order changes from run to run
        for number, key in enumerate(["1", "2", "3", "4", "plus"], 1):
            await pilot.press(key, "r")
            await wait_for(pilot, lambda n=number: len(app.query_one(RunsTable).history) == n)
            await wait_for(pilot, lambda: not app.running)
        if shows_one_view(app.screen):
            while app.view != "chart":
                await pilot.press("t")
        await pilot.press("v")
        app.clear_notifications()  # the toast saying so would hide the legend it is about
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
