"""The article's five ways to run ``extract`` over many records.

Each strategy is the article's pattern, run for real, as an async generator:
it calls ``extract(record)`` for every record and yields each result at the
moment the pattern hands it to the caller. That moment is the point of the
comparison: ``gather`` hands over everything at the end, in input order;
``as_completed`` hands over each result as it arrives, in completion order.

All strategies share one signature, ``(records, extract, concurrency)``;
``concurrency`` is only used by the semaphore variants (and ``adaptive``).
``extract`` must not raise: the runner's extract turns errors into rows.

The four patterns that start every row at once create their tasks a slice at
a time (``start_all``) instead of in one call: see there for why, and what it
does and does not change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from core.adaptive import adaptive
from core.dataset import Record

T = TypeVar("T")
Extract = Callable[[Record], Awaitable[T]]
Strategy = Callable[[Sequence[Record], Extract[T], int], AsyncIterator[T]]


async def sequential(
    records: Sequence[Record], extract: Extract[T], concurrency: int = 1
) -> AsyncIterator[T]:
    """``for`` loop: await each request before sending the next."""
    for record in records:
        yield await extract(record)


async def gather(
    records: Sequence[Record], extract: Extract[T], concurrency: int = 0
) -> AsyncIterator[T]:
    """``asyncio.gather``: send everything at once, get all results at the end, in order."""
    tasks = await start_all(extract(record) for record in records)
    results = await asyncio.gather(*tasks)
    for result in results:
        yield result


async def as_completed(
    records: Sequence[Record], extract: Extract[T], concurrency: int = 0
) -> AsyncIterator[T]:
    """``asyncio.as_completed``: send everything at once, take results as they arrive."""
    tasks = await start_all(extract(record) for record in records)
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        _cancel_unfinished(tasks)


async def gather_semaphore(
    records: Sequence[Record], extract: Extract[T], concurrency: int
) -> AsyncIterator[T]:
    """``gather`` with at most ``concurrency`` requests in flight (``asyncio.Semaphore``)."""
    limited = _limit(extract, concurrency)
    tasks = await start_all(limited(record) for record in records)
    results = await asyncio.gather(*tasks)
    for result in results:
        yield result


async def as_completed_semaphore(
    records: Sequence[Record], extract: Extract[T], concurrency: int
) -> AsyncIterator[T]:
    """``as_completed`` with at most ``concurrency`` requests in flight."""
    limited = _limit(extract, concurrency)
    tasks = await start_all(limited(record) for record in records)
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        _cancel_unfinished(tasks)


PASS_BUDGET_S = 0.02
"""How long one event-loop pass of freshly started tasks may take (``start_all``)."""
FIRST_SLICE = 64
MAX_SLICE = 4096


async def start_all(coros: Iterable[Awaitable[T]]) -> list[asyncio.Future[T]]:
    """A task for every coroutine (``asyncio.ensure_future``), a slice per event-loop pass.

    The article hands all N coroutines to ``gather``/``as_completed``, which
    wrap them in tasks in one call; the first steps of all N tasks then run in
    a single pass of the event loop. At 10,000 rows that pass takes 0.2-0.5 s,
    and everything else on the loop (a dashboard's keys and frames, answers
    already back) waits for it. Here the tasks are created in slices with a
    loop pass between them, sized so each pass of first steps stays near
    ``PASS_BUDGET_S`` (cheap first steps, such as waiting on a semaphore, get
    big slices; first steps that build and send a request, small ones).

    What stays the article's: every row gets its own task before the first
    result is taken, the tasks start in input order, and the caller still
    awaits ``asyncio.gather`` / ``asyncio.as_completed`` over all of them. A
    run of ``FIRST_SLICE`` rows or fewer is started exactly as the article does.
    """
    tasks: list[asyncio.Future[T]] = []
    size = FIRST_SLICE
    in_slice = 0
    try:
        for coro in coros:
            tasks.append(asyncio.ensure_future(coro))
            in_slice += 1
            if in_slice < size:
                continue
            began = time.perf_counter()
            await asyncio.sleep(0)  # the slice's first steps run in this pass
            took = time.perf_counter() - began
            if took < PASS_BUDGET_S / 2:
                size = min(size * 2, MAX_SLICE)
            elif took > PASS_BUDGET_S:
                size = max(size // 2, 1)
            in_slice = 0
    except BaseException:
        _cancel_unfinished(tasks)
        raise
    return tasks


def _cancel_unfinished(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel what a strategy started and nobody will wait for any more."""
    for task in tasks:
        if not task.done():
            task.cancel()


def _limit(extract: Extract[T], concurrency: int) -> Extract[T]:
    """The article's ``rate_limited_extract_person``: extract while holding a semaphore slot."""
    if concurrency < 1:
        raise ValueError(f"a semaphore needs a size of at least 1, got {concurrency}")
    semaphore = asyncio.Semaphore(concurrency)

    async def limited(record: Record) -> T:
        # ``async with semaphore`` without its ``__aenter__`` coroutine: a row
        # waiting its turn holds ~270 bytes less (27 MB at 100,000 rows).
        await semaphore.acquire()
        try:
            return await extract(record)
        finally:
            semaphore.release()

    return limited


STRATEGIES: dict[str, Strategy[object]] = {
    "sequential": sequential,
    "gather": gather,
    "as_completed": as_completed,
    "gather_semaphore": gather_semaphore,
    "as_completed_semaphore": as_completed_semaphore,
    "adaptive": adaptive,
}
"""Strategies by name: the article's five in its order, then fanout's own."""

ARTICLE_STRATEGIES = tuple(list(STRATEGIES)[:5])

LABELS: dict[str, str] = {
    "sequential": "for loop",
    "gather": "asyncio.gather",
    "as_completed": "asyncio.as_completed",
    "gather_semaphore": "gather + Semaphore",
    "as_completed_semaphore": "as_completed + Semaphore",
    "adaptive": "adaptive (AIMD)",
}

USES_CONCURRENCY = frozenset({"gather_semaphore", "as_completed_semaphore", "adaptive"})
"""Strategies that read ``concurrency`` (for adaptive it is the ceiling)."""


def get_strategy(name: str) -> Strategy[object]:
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(STRATEGIES)
        raise ValueError(f"unknown strategy {name!r}; choose one of: {known}") from None
