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
import inspect
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


def gather(
    records: Sequence[Record], extract: Extract[T], concurrency: int = 0
) -> AsyncIterator[T]:
    """``asyncio.gather``: send everything at once, get all results at the end, in order."""
    return _gathered(records, extract, SEND_SLICE)


def as_completed(
    records: Sequence[Record], extract: Extract[T], concurrency: int = 0
) -> AsyncIterator[T]:
    """``asyncio.as_completed``: send everything at once, take results as they arrive."""
    return _as_they_complete(records, extract, SEND_SLICE)


def gather_semaphore(
    records: Sequence[Record], extract: Extract[T], concurrency: int
) -> AsyncIterator[T]:
    """``gather`` with at most ``concurrency`` requests in flight (``asyncio.Semaphore``)."""
    return _gathered(records, _limit(extract, concurrency), WAIT_SLICE)


def as_completed_semaphore(
    records: Sequence[Record], extract: Extract[T], concurrency: int
) -> AsyncIterator[T]:
    """``as_completed`` with at most ``concurrency`` requests in flight."""
    return _as_they_complete(records, _limit(extract, concurrency), WAIT_SLICE)


async def _gathered(
    records: Sequence[Record], extract: Extract[T], per_pass: int
) -> AsyncIterator[T]:
    tasks = await start_all((extract(record) for record in records), per_pass)
    for result in await asyncio.gather(*tasks):
        yield result


async def _as_they_complete(
    records: Sequence[Record], extract: Extract[T], per_pass: int
) -> AsyncIterator[T]:
    tasks = await start_all(in_set_order([extract(record) for record in records]), per_pass)
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        _cancel_unfinished(tasks)


SEND_SLICE = 256
"""Tasks started per loop pass when each goes straight into its request."""
WAIT_SLICE = 2048
"""Tasks started per loop pass when most of them only queue on a semaphore."""


async def start_all(coros: Iterable[Awaitable[T]], per_pass: int) -> list[asyncio.Future[T]]:
    """A task for every coroutine (``asyncio.ensure_future``), ``per_pass`` per loop pass.

    The article hands all N coroutines to ``gather``/``as_completed``, which
    wrap them in tasks in one call; the first steps of all N tasks then run in
    a single pass of the event loop. At 10,000 rows that pass took 0.2 s, at
    100,000 rows 0.5 s, and everything else on the loop (a dashboard's keys
    and frames, answers already back) waited for it. Here the tasks are
    created in slices with a loop pass between them. A slice's first steps
    cost about 10 ms: ``SEND_SLICE`` rows that each build a request (the
    heavy part of sending is spread further by ``core.fairshare``), or
    ``WAIT_SLICE`` rows that mostly queue on a semaphore.

    What stays the article's: every row gets its own task before the first
    result is taken, the tasks start in the order the article's call would
    start them (input order for ``gather``, ``in_set_order`` for
    ``as_completed``), and the caller then awaits ``asyncio.gather`` /
    ``asyncio.as_completed`` over all of them. Up to ``per_pass`` rows start
    exactly as the article starts them.
    """
    tasks: list[asyncio.Future[T]] = []
    pending = iter(coros)
    try:
        for coro in pending:
            tasks.append(asyncio.ensure_future(coro))
            if len(tasks) % per_pass == 0:
                await asyncio.sleep(0)  # this slice's first steps run in this pass
    except BaseException:
        _cancel_unfinished(tasks)
        if isinstance(coros, Sequence):  # made already, never to run: close them quietly
            for coro in pending:
                if inspect.iscoroutine(coro):
                    coro.close()
        raise
    return tasks


def in_set_order(coros: list[Awaitable[T]]) -> list[Awaitable[T]]:
    """The order in which ``asyncio.as_completed(coros)`` would start them.

    ``as_completed`` wraps its awaitables in tasks while iterating
    ``set(coros)``, so rows start in the set's (hash) order, not input order:
    under a semaphore the first k requests are not the first k rows. That is
    part of what the dashboard's waterfall shows, so it is kept.
    """
    return list(set(coros))


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
