"""The adaptive strategy: AIMD on 429s, pacing from the server's stated limit, budgets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from core.adaptive import AdaptiveLimit, adaptive
from core.dataset import Record, records_from_texts
from core.extract import Extraction
from core.models import Person
from core.runner import Run
from core.signals import request_hook, response_hook


@dataclass
class FakeResponse:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Answers through the same HTTP hooks the real client calls."""

    def __init__(self, latency: float = 0.01) -> None:
        self.latency = latency
        self.in_flight = 0
        self.max_in_flight = 0
        self.statuses: list[int] = []
        self.refuse_above: int | None = None
        self.headers: dict[str, str] = {}

    async def __call__(self, record: Record) -> int:
        await request_hook(None)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            status = 200
            if self.refuse_above is not None and self.in_flight > self.refuse_above:
                status = 429
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        self.statuses.append(status)
        headers = dict(self.headers)
        if status == 429:
            headers["retry-after-ms"] = "20"
        await response_hook(FakeResponse(status, headers))
        return record.index


async def drain(limit: AdaptiveLimit, server: FakeServer, n: int) -> list[int]:
    records = records_from_texts([str(i) for i in range(n)])
    return [r async for r in adaptive(records, server, limit.ceiling, limit=limit)]  # type: ignore[misc]


async def test_grows_while_the_server_keeps_up_and_never_passes_the_ceiling() -> None:
    limit = AdaptiveLimit(ceiling=16, start=2)
    server = FakeServer()
    results = await drain(limit, server, 200)
    assert sorted(results) == list(range(200))
    assert limit.limit == 16
    assert server.max_in_flight == 16
    assert limit.history[0][1] > 2  # it grew step by step


async def test_halves_on_429_and_settles_below_the_server_cap() -> None:
    limit = AdaptiveLimit(ceiling=64, start=4)
    server = FakeServer()
    server.refuse_above = 10
    await drain(limit, server, 600)
    refused = server.statuses.count(429)
    assert refused > 0
    assert refused < 0.1 * len(server.statuses)
    assert limit.limit <= 14  # about where halving from ~13 and growing back meet
    assert any(b < a for (_, a), (_, b) in zip(limit.history, limit.history[1:], strict=False))


async def test_paces_at_the_servers_stated_rate() -> None:
    limit = AdaptiveLimit(ceiling=50, start=2)
    server = FakeServer(latency=0.001)
    server.headers = {"x-ratelimit-limit-requests": "6000"}  # 100/s; paced at 95/s
    loop = asyncio.get_running_loop()
    started = loop.time()
    await drain(limit, server, 250)
    elapsed = loop.time() - started
    assert limit.server_rpm == 6000
    # Two go before the limit is known, then a one-second bucket of 95, then 95/s:
    # (250 - 2 - 95) / 95 = 1.6 s at least. Unpaced it would take a few milliseconds.
    assert elapsed > 1.4


async def test_waits_for_the_reset_when_the_budget_is_spent() -> None:
    limit = AdaptiveLimit(ceiling=4, start=4)
    server = FakeServer(latency=0.001)
    server.headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms"}
    loop = asyncio.get_running_loop()
    started = loop.time()
    await drain(limit, server, 8)
    assert loop.time() - started > 0.25  # the second four waited for the reset


class StaggeredServer:
    """Every answer says the budget is spent ("remaining 0"), resets ``reset`` later, and
    the first requests answer one after another (LiteLLM before an exhausted upstream):
    each answer moves the reset deadline later while others already wait on it."""

    def __init__(self, reset: Callable[[], str], latencies: tuple[float, ...]) -> None:
        self.reset = reset
        self.latencies = latencies
        self.sent_at: list[float] = []

    async def __call__(self, record: Record) -> int:
        await request_hook(None)
        loop = asyncio.get_running_loop()
        self.sent_at.append(loop.time())
        n = len(self.sent_at) - 1
        await asyncio.sleep(self.latencies[n % len(self.latencies)])
        headers = {
            "x-ratelimit-limit-requests": "100000",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": self.reset(),
        }
        await response_hook(FakeResponse(200, headers))
        return record.index


async def drain_within(limit: AdaptiveLimit, server: StaggeredServer, n: int) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    records = records_from_texts([str(i) for i in range(n)])
    async with asyncio.timeout(10):  # on main this never finished
        results = [r async for r in adaptive(records, server, limit.ceiling, limit=limit)]  # type: ignore[misc]
    assert sorted(results) == list(range(n))  # type: ignore[type-var]
    return loop.time() - started


async def test_staggered_remaining_zero_answers_never_stall() -> None:
    # Four answers 10, 50, 100, 150 ms after sending, each saying "0 left, reset in
    # 200 ms": the deadline moves from 0.21 s to 0.35 s while rows wait on it. Each
    # batch of four waits for the last reset it was given.
    server = StaggeredServer(lambda: "200ms", (0.01, 0.05, 0.1, 0.15))
    limit = AdaptiveLimit(ceiling=4, start=4)
    elapsed = await drain_within(limit, server, 12)
    assert 0.7 < elapsed < 2  # the schedule allows ~0.85 s: batches at 0, 0.35, 0.7 s
    # Nobody was sent before the reset the previous answers announced.
    starts = sorted(server.sent_at)
    assert starts[4] - starts[0] >= 0.34


async def test_an_epoch_reset_waits_until_that_moment() -> None:
    server = StaggeredServer(lambda: f"{time.time() + 0.3:.3f}", (0.01,))
    limit = AdaptiveLimit(ceiling=2, start=2)
    elapsed = await drain_within(limit, server, 6)
    assert 0.5 < elapsed < 5  # two waits of ~0.3 s, not 1.8e9 s


async def test_a_reset_too_long_is_capped_at_max_wait() -> None:
    server = StaggeredServer(lambda: "999h", (0.01,))
    limit = AdaptiveLimit(ceiling=2, start=2, max_wait=0.2)
    elapsed = await drain_within(limit, server, 6)
    assert 0.35 < elapsed < 5


async def test_close_lets_every_waiter_go_at_once() -> None:
    server = StaggeredServer(lambda: "1h", (0.01,))
    limit = AdaptiveLimit(ceiling=2, start=2)
    records = records_from_texts([str(i) for i in range(6)])
    got: list[object] = []

    async def consume() -> None:
        async for r in adaptive(records, server, 2, limit=limit):  # type: ignore[arg-type]
            got.append(r)  # noqa: PERF401

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    assert len(got) == 2  # the rest wait on the hour-long reset
    limit.close()
    async with asyncio.timeout(2):
        await task
    assert len(got) == 6


def test_ceiling_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimit(0)


async def test_the_first_stop_ends_a_run_waiting_on_a_reset_promptly() -> None:
    server = StaggeredServer(lambda: "1h", (0.01,))

    async def extract(record: Record, on_retry: object = None, phases: object = None) -> object:
        await server(record)
        return Extraction(Person(name="Ann", age=30), 1, 10, 3)

    run = Run(records_from_texts(["x"] * 6), extract, strategy="adaptive", concurrency=2)
    task = asyncio.create_task(run.execute())
    await asyncio.sleep(0.3)
    assert run.ok == 2  # the rest wait on the hour-long reset
    run.stop()
    async with asyncio.timeout(2):
        stats = await task
    assert (stats.ok, run.cancelled) == (2, 4)


class ScriptedServer:
    """Answers request n with ``statuses[n]`` (then 200), a 429 with no header at all."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.sent_at: list[float] = []

    async def __call__(self, record: Record) -> int:
        await request_hook(None)
        n = len(self.sent_at)
        self.sent_at.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.001)
        status = self.statuses[n] if n < len(self.statuses) else 200
        await response_hook(FakeResponse(status))
        return record.index


async def test_a_429_without_a_wait_pauses_for_the_next_step_of_the_bare_delays() -> None:
    # Main paused 1 s after a bare 429 (LiteLLM's own limit), then knocked again inside
    # the same one-minute window. Now: the steps (20, 40, 60 s by default; scaled here),
    # one further for each round of bare 429s, back to the first after a success.
    server = ScriptedServer([429, 429, 200, 429])
    limit = AdaptiveLimit(ceiling=1, start=1, bare_429_delays=(0.2, 0.4))
    records = records_from_texts([str(i) for i in range(6)])
    async with asyncio.timeout(10):
        got = [r async for r in adaptive(records, server, 1, limit=limit)]  # type: ignore[arg-type]
    assert len(got) == 6
    gaps = [b - a for a, b in zip(server.sent_at, server.sent_at[1:], strict=False)]
    assert 0.2 <= gaps[0] < 0.35  # first bare 429: the first step
    assert 0.4 <= gaps[1] < 0.55  # a second in a row: the next step
    assert gaps[2] < 0.1  # a success sends on
    assert 0.2 <= gaps[3] < 0.35  # after a success, back to the first step
    assert limit.rate_limited == 3


async def test_the_engine_gives_adaptive_the_runs_bare_429_delays() -> None:
    from core.client import choose_endpoint
    from core.engine import ClientOptions, Engine
    from core.extract import RetryPolicy

    options = ClientOptions(retry=RetryPolicy(bare_429_delays=(2.0, 4.0)))
    endpoint = choose_endpoint(base_url="http://127.0.0.1:9/v1", env={})
    async with (
        Engine(endpoint, options=options) as engine,
        engine.run(records_from_texts(["x"]), Person, strategy="adaptive", concurrency=2) as run,
    ):
        assert run.limiter is not None
        assert run.limiter.bare_429_delays == (2.0, 4.0)
    assert AdaptiveLimit(2).bare_429_delays == (20.0, 40.0, 60.0)
