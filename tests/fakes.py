"""Deterministic stand-ins for the extract function (the real one is tested end to end)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from core.dataset import Record
from core.extract import Extraction, ExtractionFailed, RetryHook
from core.failures import Failure
from core.models import Person
from core.results import ErrorKind, Phases

ARTICLE_PEOPLE: list[tuple[str, int]] = [
    ("John", 20),
    ("Mary", 21),
    ("Bob", 22),
    ("Alice", 23),
    ("Jane", 24),
    ("Joe", 25),
    ("Jill", 26),
]
"""Who the article's seven sentences are about, in order."""


@dataclass
class FakeExtract:
    """Sleeps ``delays[i]`` for record i, measures real concurrency, can fail rows."""

    delays: list[float]
    by_call_order: bool = False
    """Use delays[n] for the n-th call instead of delays[record.index]."""
    fail: set[int] = field(default_factory=set)
    crash: set[int] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    calls: list[int] = field(default_factory=list)

    async def __call__(
        self, record: Record, on_retry: RetryHook | None = None, phases: Phases | None = None
    ) -> Extraction:
        delay = self.delays[len(self.calls) if self.by_call_order else record.index]
        self.calls.append(record.index)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(delay)
        finally:
            self.in_flight -= 1
        if record.index in self.fail:
            raise ExtractionFailed(
                Failure(ErrorKind.SERVER, "HTTP 503 server error: busy"), 2, 0, 0
            )
        if record.index in self.crash:
            raise RuntimeError("boom")
        return Extraction(Person(name=f"P{record.index}", age=record.index), 1, 10, 3)
