"""The article's five ways to run ``extract`` over many records.

Each strategy is the article's pattern, run for real, as an async generator:
it calls ``extract(record)`` for every record and yields each result at the
moment the pattern hands it to the caller. That moment is the point of the
comparison: ``gather`` hands over everything at the end, in input order;
``as_completed`` hands over each result as it arrives, in completion order.

All strategies share one signature, ``(records, extract, concurrency)``;
``concurrency`` is only used by the semaphore variants (and ``adaptive``).
``extract`` must not raise: the runner's extract turns errors into rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

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
    results = await asyncio.gather(*(extract(record) for record in records))
    for result in results:
        yield result


async def as_completed(
    records: Sequence[Record], extract: Extract[T], concurrency: int = 0
) -> AsyncIterator[T]:
    """``asyncio.as_completed``: send everything at once, take results as they arrive."""
    for next_done in asyncio.as_completed([extract(record) for record in records]):
        yield await next_done


async def gather_semaphore(
    records: Sequence[Record], extract: Extract[T], concurrency: int
) -> AsyncIterator[T]:
    """``gather`` with at most ``concurrency`` requests in flight (``asyncio.Semaphore``)."""
    limited = _limit(extract, concurrency)
    results = await asyncio.gather(*(limited(record) for record in records))
    for result in results:
        yield result


async def as_completed_semaphore(
    records: Sequence[Record], extract: Extract[T], concurrency: int
) -> AsyncIterator[T]:
    """``as_completed`` with at most ``concurrency`` requests in flight."""
    limited = _limit(extract, concurrency)
    for next_done in asyncio.as_completed([limited(record) for record in records]):
        yield await next_done


def _limit(extract: Extract[T], concurrency: int) -> Extract[T]:
    """The article's ``rate_limited_extract_person``: extract while holding a semaphore slot."""
    if concurrency < 1:
        raise ValueError(f"a semaphore needs a size of at least 1, got {concurrency}")
    semaphore = asyncio.Semaphore(concurrency)

    async def limited(record: Record) -> T:
        async with semaphore:
            return await extract(record)

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
