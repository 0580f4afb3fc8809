"""The in-flight chart's lines: peaks kept, and the running series kept up to now."""

from __future__ import annotations

import asyncio

import pytest

from core.dataset import Record, records_from_texts
from core.extract import Extraction
from core.models import Person
from core.phases import WireGauge
from core.runner import Run
from tests.test_tui_keys import run_once
from tests.tui_support import scripted_app
from tui.layout import shows_one_view
from tui.live import RunFeed
from tui.widgets.chart import (
    COLORS,
    MIN_PLOT_ROWS,
    ChartLegend,
    InFlightChart,
    Series,
    integer_ticks,
    labels,
    line,
    row_ticks,
    steps,
)


def test_steps_keep_the_peak_of_each_bucket() -> None:
    # a finish and the next start microseconds apart: the raw samples dip to 1
    samples = [(0.0, 0), (0.001, 1), (0.002, 2), (0.5, 1), (0.500001, 2), (1.0, 0)]
    points = steps(samples, buckets=10)
    assert max(value for _, value in points) == 2
    assert all(value == 2 for at, value in points if 0.01 < at < 0.5)
    assert points[-1] == (1.0, 0)


def test_a_running_series_is_held_at_its_last_value_up_to_now() -> None:
    series = Series("#1 gather", [(0.0, 0), (0.001, 5), (0.002, 7)])
    assert line(series)[-1] == (0.002, 7)
    held = line(series, now=0.8)
    assert held[-1] == (0.8, 7)  # nothing finished yet: seven in flight until now
    assert held[:-1] == line(series)
    assert line(series, now=0.001) == line(series)  # now never moves the line back


def test_a_series_with_no_starts_yet_is_flat_at_zero_up_to_now() -> None:
    assert line(Series("#1 for loop", [(0.0, 0)]), now=0.3) == [(0.0, 0), (0.3, 0)]


async def test_the_feed_samples_requests_going_on_the_wire_between_row_events() -> None:
    # Every row starts at once, then waits (as for a rate limiter) before it is sent:
    # no row event marks the moment the three go on the wire.
    wire = WireGauge()

    async def extract(record: Record, on_retry: object = None, phases: object = None) -> object:
        await asyncio.sleep(0.1)
        wire.sent()
        try:
            await asyncio.sleep(0.5)
        finally:
            wire.answered()
        return Extraction(Person(name="P", age=record.index), 1, 1, 1)

    run = Run(records_from_texts(["a", "b", "c"]), extract, strategy="gather", wire=wire)
    feed = RunFeed(run, None)
    task = asyncio.create_task(run.execute())
    await asyncio.sleep(0.35)
    assert max(value for _, value in feed.samples) == 0  # the row events saw none out
    feed.sample_now()
    assert feed.samples[-1][1] == 3
    await task
    points = list(feed.samples)
    feed.sample_now()  # after the run: no point added
    assert feed.samples == points


def test_ticks_are_round_and_name_the_peak() -> None:
    assert integer_ticks(10) == [0, 5, 10]
    assert integer_ticks(7) == [0, 2, 4, 6, 7]
    assert integer_ticks(1689) == [0, 500, 1000, 1500]  # 1689 too close to 1500 to label
    assert integer_ticks(1) == [0, 1]


# -- the legend: whole entries, in the rows the plot can spare ----------------------------

FIVE = [
    (labels(strategy, size, number), color)
    for number, (strategy, size), color in zip(
        range(1, 6),
        [
            ("sequential", None),
            ("gather", None),
            ("as_completed", None),
            ("gather_semaphore", 8),
            ("as_completed_semaphore", 8),
        ],
        COLORS,
        strict=True,
    )
]


def legend(entries: list[tuple[tuple[str, ...], str]], hint: str) -> ChartLegend:
    widget = ChartLegend()
    widget.show(entries, hint)
    return widget


def test_the_legend_keeps_full_labels_where_they_fit() -> None:
    lines = [line.plain for line in legend(FIVE, "v: this run only").lines(76, room=4)]
    assert lines == [
        "━━ #1 for loop  ━━ #2 asyncio.gather  ━━ #3 asyncio.as_completed",
        "━━ #4 gather + Semaphore (8)  ━━ #5 as_completed + Semaphore (8)",
        "v: this run only",
    ]


def test_a_legend_short_of_rows_shortens_every_label_one_step_at_a_time() -> None:
    # 120x36: the chart's box is 23 cells wide inside, and the plot spares 4 rows
    short = [line.plain for line in legend(FIVE, "v: this run only").lines(40, room=4)]
    assert short == [
        "━━ #1 for loop  ━━ #2 gather",
        "━━ #3 as_completed  ━━ #4 gather+sem (8)",
        "━━ #5 as_completed+sem (8)",
        "v: this run only",
    ]
    numbers = [line.plain for line in legend(FIVE, "v: this run only").lines(23, room=4)]
    assert numbers == ["━━ #1  ━━ #2  ━━ #3", "━━ #4  ━━ #5", "v: this run only"]
    # no room even for that: the hint goes before any entry
    assert [line.plain for line in legend(FIVE, "v: overlay").lines(23, room=2)] == numbers[:2]


def test_an_entry_wider_than_the_legend_wraps_whole_under_its_label() -> None:
    one = [(labels("as_completed_semaphore", 8, 5), "cyan")]
    lines = legend(one, "v: overlay").lines(23, room=4)
    assert [line.plain for line in lines] == [
        "━━ #5 as_completed +",
        "   Semaphore (8)",
        "v: overlay",
    ]
    assert all(line.cell_len <= 23 for line in lines)
    assert lines[1].style == "cyan"  # the continuation keeps its line's colour


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (160, 48)])
async def test_the_overlay_legend_is_whole_and_leaves_the_plot_its_rows(
    size: tuple[int, int],
) -> None:
    app, _ = scripted_app()
    async with app.run_test(size=size) as pilot:
        for key in "12345":
            await pilot.press(key)
            await run_once(pilot, app)
        if shows_one_view(app.screen):
            while app.view != "chart":
                await pilot.press("t")
        await pilot.press("v")
        await pilot.pause()
        chart, box = app.query_one(InFlightChart), app.query_one("#chart-box")
        shown = app.query_one(ChartLegend)
        drawn = shown.render().plain.splitlines()
        assert len(drawn) == shown.size.height  # every line on screen, none cut off
        assert shown.region.bottom <= box.content_region.bottom
        assert all(len(text) <= shown.size.width for text in drawn)
        assert chart.size.height >= MIN_PLOT_ROWS
        assert len(chart.drawn()) == 5
        for number in range(1, 6):
            assert f"━━ #{number}" in " ".join(drawn)
        assert "v: this run only" in drawn


def test_a_short_plot_gets_ticks_a_row_apart_and_names_the_peak() -> None:
    top = 8.0  # a plateau at 7: the axis ends at 8
    assert row_ticks(7, top, rows=12) == integer_ticks(7)  # room for all: unchanged
    assert row_ticks(7, top, rows=4) == [0, 7]  # 2, 4, 6 and 7 would share rows
    for rows in range(2, 14):
        ticks = row_ticks(7, top, rows)
        assert all(b - a >= top / (rows - 1) for a, b in zip(ticks, ticks[1:], strict=False))
