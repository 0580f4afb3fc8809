"""Each strategy's order and limit, measured on a fake extract with known delays."""

from __future__ import annotations

import pytest

from core.dataset import records_from_texts
from core.results import Status
from core.runner import Run
from core.strategies import STRATEGIES
from tests.fakes import FakeExtract

# Record i takes DELAYS[i]: later records finish first, so completion order is
# the reverse of input order whenever they run together.
N = 8
DELAYS = [0.02 * (N - i) for i in range(N)]
RECORDS = records_from_texts([f"text {i}" for i in range(N)])


async def run_strategy(strategy: str, concurrency: int = 3) -> tuple[Run, FakeExtract]:
    fake = FakeExtract(list(DELAYS))
    run = Run(RECORDS, fake, strategy=strategy, concurrency=concurrency)
    await run.execute()
    return run, fake


def delivery_order(run: Run) -> list[int]:
    return [r.index for r in sorted(run.rows, key=lambda r: r.delivered_s or 0.0)]


def finish_order(run: Run) -> list[int]:
    return [r.index for r in sorted(run.rows, key=lambda r: r.finished_s or 0.0)]


async def test_sequential_one_at_a_time_in_input_order() -> None:
    run, fake = await run_strategy("sequential")
    assert fake.max_in_flight == 1
    assert run.max_in_flight == 1
    assert delivery_order(run) == list(range(N))
    for before, after in zip(run.rows, run.rows[1:], strict=False):
        assert after.started_s is not None and before.finished_s is not None
        assert after.started_s >= before.finished_s


async def test_gather_sends_all_at_once_and_delivers_at_the_end_in_input_order() -> None:
    run, fake = await run_strategy("gather")
    assert fake.max_in_flight == N
    last_finish = max(r.finished_s or 0 for r in run.rows)
    first_finish = min(r.finished_s or 0 for r in run.rows)
    assert all(r.started_s is not None and r.started_s < first_finish for r in run.rows)
    assert all(r.delivered_s is not None and r.delivered_s >= last_finish for r in run.rows)
    assert delivery_order(run) == list(range(N))
    assert finish_order(run) == list(reversed(range(N)))


async def test_as_completed_delivers_in_completion_order_as_they_arrive() -> None:
    run, fake = await run_strategy("as_completed")
    assert fake.max_in_flight == N
    assert delivery_order(run) == finish_order(run) == list(reversed(range(N)))
    first = run.rows[N - 1]
    assert first.delivered_s is not None and first.finished_s is not None
    # the fastest row is handed over long before the slowest finishes
    assert first.delivered_s < max(r.finished_s or 0 for r in run.rows)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("strategy", ["gather_semaphore", "as_completed_semaphore"])
async def test_semaphore_never_exceeds_k_and_reaches_it(strategy: str, k: int) -> None:
    run, fake = await run_strategy(strategy, concurrency=k)
    assert fake.max_in_flight == k
    assert run.max_in_flight == k
    assert all(r.status is Status.OK for r in run.rows)


async def test_gather_semaphore_keeps_input_order() -> None:
    run, _ = await run_strategy("gather_semaphore", concurrency=3)
    assert delivery_order(run) == list(range(N))
    last_finish = max(r.finished_s or 0 for r in run.rows)
    assert min(r.delivered_s or 0 for r in run.rows) >= last_finish


async def test_as_completed_semaphore_hands_over_in_completion_order() -> None:
    run, _ = await run_strategy("as_completed_semaphore", concurrency=3)
    assert delivery_order(run) == finish_order(run)


async def test_semaphore_rows_are_queued_at_start_and_wait_for_a_slot() -> None:
    run, _ = await run_strategy("gather_semaphore", concurrency=2)
    assert all(r.queued_s == 0.0 for r in run.rows)
    waited = [r for r in run.rows if (r.started_s or 0) - (r.queued_s or 0) > 0.01]
    assert len(waited) == N - 2


@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_every_strategy_returns_every_row_once(strategy: str) -> None:
    run, fake = await run_strategy(strategy, concurrency=2)
    assert sorted(fake.calls) == list(range(N))
    assert [r.status for r in run.rows] == [Status.OK] * N
    assert all(r.data == {"name": f"P{r.index}", "age": r.index} for r in run.rows)
    assert run.delivered == N


def test_semaphore_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Run(RECORDS, FakeExtract(list(DELAYS)), strategy="gather_semaphore", concurrency=0)


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        Run(RECORDS, FakeExtract(list(DELAYS)), strategy="threads", concurrency=1)


# -- starting many rows: tasks are created a slice per loop pass -------------

MANY = 3_000  # well over FIRST_SLICE, so the start takes several loop passes


@pytest.mark.parametrize(
    "strategy", ["gather", "as_completed", "gather_semaphore", "as_completed_semaphore"]
)
async def test_every_row_has_its_task_before_the_first_result(strategy: str) -> None:
    import asyncio
    from typing import Any

    made = 0
    started: list[int] = []
    made_at_first_result: list[int] = []

    def count_tasks(loop: Any, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        nonlocal made
        made += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def extract(record: Any) -> int:
        started.append(record.index)
        await asyncio.sleep(0)
        return int(record.index)

    records = records_from_texts([f"t{i}" for i in range(MANY)])
    results: list[int] = []
    loop = asyncio.get_running_loop()
    loop.set_task_factory(count_tasks)
    try:
        async for result in STRATEGIES[strategy](records, extract, 50):
            if not results:
                made_at_first_result.append(made)
            results.append(result)  # type: ignore[arg-type]
    finally:
        loop.set_task_factory(None)
    assert sorted(results) == list(range(MANY))
    assert sorted(started) == list(range(MANY))
    assert made_at_first_result[0] >= MANY  # a task per row, all before the first result
    if strategy.startswith("gather"):
        # gather wraps its arguments in order: rows start (or queue) in input order
        assert started == list(range(MANY))


async def test_as_completed_starts_rows_in_the_order_asyncio_as_completed_would() -> None:
    """``as_completed`` iterates ``set(coros)``: fanout keeps that order, slices and all."""
    import asyncio
    from collections.abc import Coroutine
    from typing import Any

    made: list[Coroutine[Any, Any, int]] = []
    index_of: dict[int, int] = {}
    started: list[int] = []

    async def body(index: int) -> int:
        started.append(index)
        await asyncio.sleep(0)
        return index

    def extract(record: Any) -> Coroutine[Any, Any, int]:
        coro = body(record.index)
        made.append(coro)
        index_of[id(coro)] = record.index
        return coro

    records = records_from_texts([f"t{i}" for i in range(MANY)])
    async for _ in STRATEGIES["as_completed"](records, extract, 0):
        pass
    assert made and [index_of[id(c)] for c in made] == list(range(MANY))
    assert started == [index_of[id(c)] for c in set(made)]


async def test_the_loop_runs_other_work_while_many_rows_start() -> None:
    """A 3,000-row start is not one event-loop pass: a probe gets turns in between."""
    import asyncio

    started = 0
    started_when_probe_ran: list[int] = []
    release = asyncio.Event()

    async def extract(record: object) -> int:
        nonlocal started
        started += 1
        await release.wait()
        return 0

    async def probe() -> None:
        while started < MANY:
            started_when_probe_ran.append(started)
            await asyncio.sleep(0)
        release.set()

    probing = asyncio.create_task(probe())
    records = records_from_texts([f"t{i}" for i in range(MANY)])
    count = 0
    async for _ in STRATEGIES["as_completed"](records, extract, 0):
        count += 1
    await probing
    assert count == MANY
    assert any(0 < n < MANY for n in started_when_probe_ran)


async def test_cancelling_the_start_cancels_every_task_it_made() -> None:
    import asyncio

    from core.strategies import start_all

    gate = asyncio.Event()
    first_ran = asyncio.Event()
    made: list[asyncio.Task[None]] = []

    async def wait() -> None:
        made.append(asyncio.current_task())  # type: ignore[arg-type]
        first_ran.set()
        await gate.wait()

    starting = asyncio.create_task(start_all((wait() for _ in range(MANY)), 100))
    await first_ran.wait()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    await asyncio.sleep(0)
    assert 0 < len(made) < MANY
    assert all(task.cancelled() for task in made)


async def test_aborting_while_rows_start_leaves_no_coroutine_unawaited() -> None:
    """as_completed makes every coroutine up front (for its set order); an abort closes them."""
    import asyncio
    import gc
    import warnings

    release = asyncio.Event()

    async def extract(record: object) -> int:
        await release.wait()
        return 0

    async def consume() -> None:
        async for _ in STRATEGIES["as_completed"](
            records_from_texts([f"t{i}" for i in range(MANY)]), extract, 0
        ):
            pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = asyncio.create_task(consume())
        for _ in range(3):  # a few slices in, well before all MANY tasks exist
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        gc.collect()
    unawaited = [w for w in caught if "was never awaited" in str(w.message)]
    assert unawaited == []
