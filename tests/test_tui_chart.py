"""The in-flight chart's lines: peaks kept, and the running series kept up to now."""

from __future__ import annotations

import asyncio

from core.dataset import Record, records_from_texts
from core.extract import Extraction
from core.models import Person
from core.phases import WireGauge
from core.runner import Run
from tui.live import RunFeed
from tui.widgets.chart import Series, integer_ticks, line, steps


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
