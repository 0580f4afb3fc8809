"""The runner: errors become rows, stopping keeps every finished row, events are ordered."""

from __future__ import annotations

import asyncio

import pytest

from core.dataset import records_from_texts
from core.events import RowDelivered, RowFinished, RowStarted, RunEnded, RunStopping
from core.results import ErrorKind, Status
from core.runner import Run
from tests.fakes import FakeExtract

RECORDS = records_from_texts([f"text {i}" for i in range(30)])


async def test_failures_are_rows_and_the_run_goes_on() -> None:
    fake = FakeExtract([0.001] * 30, fail={3, 7}, crash={11})
    run = Run(RECORDS, fake, strategy="gather", concurrency=1)
    stats = await run.execute()
    assert stats.ok == 27 and stats.failed == 3
    assert run.rows[3].status is Status.FAILED
    assert run.rows[3].error_kind is ErrorKind.SERVER
    assert run.rows[3].error == "HTTP 503 server error: busy"
    assert run.rows[3].attempts == 2
    assert run.rows[11].error_kind is ErrorKind.OTHER and "boom" in (run.rows[11].error or "")
    assert stats.errors_by_kind == {"5xx": 2, "other": 1}


@pytest.mark.parametrize(
    "strategy",
    ["sequential", "gather", "as_completed", "gather_semaphore", "as_completed_semaphore"],
)
async def test_stop_cancels_in_flight_keeps_finished_and_accounts_for_all(strategy: str) -> None:
    # The first three requests sent are quick, the rest would take long. (By call
    # order: as_completed starts its awaitables from a set, in no particular order.)
    fake = FakeExtract([0.01] * 3 + [5.0] * 27, by_call_order=True)
    run = Run(RECORDS, fake, strategy=strategy, concurrency=5)
    task = asyncio.create_task(run.execute())
    for _ in range(200):
        if run.ok == 3 and run.in_flight == (
            1 if strategy == "sequential" else 5 if "sem" in strategy else 27
        ):
            break
        await asyncio.sleep(0.005)
    finished_before_stop = run.ok
    run.stop()
    stats = await asyncio.wait_for(task, timeout=2)
    assert finished_before_stop == 3
    assert stats.ok == 3
    assert stats.failed == 0
    assert stats.cancelled == 27
    assert all(r.status.is_final for r in run.rows)
    assert all(r.data is not None for r in run.rows if r.status is Status.OK)
    assert fake.in_flight == 0
    assert stats.stopped_reason == "cancelled"


async def test_no_request_starts_after_stop() -> None:
    fake = FakeExtract([0.05] * 30)
    run = Run(RECORDS, fake, strategy="gather_semaphore", concurrency=2)
    task = asyncio.create_task(run.execute())
    await asyncio.sleep(0.01)
    run.stop()
    await task
    assert len(fake.calls) == 2


async def test_abort_cancels_the_run_and_still_accounts_for_every_row() -> None:
    fake = FakeExtract([5.0] * 30)
    run = Run(RECORDS, fake, strategy="gather", concurrency=1)
    task = asyncio.create_task(run.execute())
    await asyncio.sleep(0.01)
    run.abort()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(r.status is Status.CANCELLED for r in run.rows)
    assert run.stats is not None and run.stats.cancelled == 30


async def test_max_error_rate_stops_a_broken_run_early() -> None:
    fake = FakeExtract([0.001] * 30, fail=set(range(30)))
    run = Run(RECORDS, fake, strategy="sequential", max_error_rate=0.5)
    stats = await run.execute()
    assert stats.failed == 20  # judged once 20 rows have finished
    assert stats.cancelled == 10
    assert stats.stopped_reason is not None and "100% of 20" in stats.stopped_reason


async def test_events_come_in_order_for_each_row() -> None:
    fake = FakeExtract([0.001 * (i % 5) for i in range(30)])
    run = Run(RECORDS, fake, strategy="as_completed_semaphore", concurrency=4)
    seen: dict[int, list[str]] = {}
    events = [event async for event in run.stream()]
    for event in events:
        if isinstance(event, (RowStarted, RowFinished, RowDelivered)):
            seen.setdefault(event.index, []).append(type(event).__name__)
    assert isinstance(events[-1], RunEnded)
    assert all(kinds == ["RowStarted", "RowFinished", "RowDelivered"] for kinds in seen.values())
    assert len(seen) == 30
    assert not any(isinstance(e, RunStopping) for e in events)


async def test_a_run_executes_once() -> None:
    run = Run(RECORDS[:2], FakeExtract([0.0, 0.0]), strategy="gather")
    await run.execute()
    with pytest.raises(RuntimeError, match="once"):
        await run.execute()


async def test_tokens_and_counters_add_up() -> None:
    run = Run(RECORDS, FakeExtract([0.0] * 30), strategy="gather")
    stats = await run.execute()
    assert stats.prompt_tokens == 300 and stats.completion_tokens == 90
    assert run.in_flight == 0 and run.finished == 30 and run.delivered == 30
