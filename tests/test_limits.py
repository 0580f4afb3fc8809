"""Client rate limits, tokens and cost, the budget: end to end against the simulator."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from core.client import choose_endpoint
from core.dataset import load_dataset
from core.engine import ClientOptions, Engine
from core.export import export_results
from core.extract import RetryPolicy
from core.localserver import LocalServer, ServerConfig
from core.models import Person
from core.options import bundled_datasets_dir
from core.prices import load_prices, price_for
from core.ratelimit import Budget, ClientRateLimit
from core.results import Status
from core.stats import RunStats

PEOPLE = load_dataset(bundled_datasets_dir() / "people_1000.csv").records


async def gather_150_against_a_1500_rpm_server(options: ClientOptions) -> RunStats:
    """150 rows at once against a server that allows 125 in its 5 s window."""
    server = ServerConfig(latency=0.0, jitter=0.0, rpm=1500, rate_window=5.0)
    with LocalServer(server) as running:
        endpoint = choose_endpoint(base_url=running.base_url, env={})
        async with (
            Engine(endpoint, options=options) as engine,
            engine.run(PEOPLE[:150], Person, strategy="gather", concurrency=1) as run,
        ):
            return await run.execute()


async def test_client_rpm_under_the_server_limit_never_gets_a_429() -> None:
    # The 120 vs 150 per minute, scaled 10x with a 5 s window so it runs in
    # seconds: the client bursts at most one second's worth, 20, then 20/s, so any
    # 5 s window sees at most 120 requests; the server allows 125.
    stats = await gather_150_against_a_1500_rpm_server(
        ClientOptions(rpm=1200, retry=RetryPolicy(max_retries=0))
    )
    assert stats.ok == 150
    assert stats.rate_limited == 0
    assert stats.elapsed_s > 4  # it really was paced: unpaced, 150 requests take ~0.3 s


async def test_without_the_client_limit_the_same_run_gets_429s() -> None:
    stats = await gather_150_against_a_1500_rpm_server(
        ClientOptions(retry=RetryPolicy(max_retries=0))
    )
    assert stats.rate_limited == 25  # 125 allowed in the window, 25 refused
    assert stats.errors_by_kind == {"429": 25}


async def test_token_and_cost_totals_match_the_export(tmp_path: Path) -> None:
    # The simulator echoes any model name; asking for a priced one gives real costs.
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0)) as running:
        endpoint = choose_endpoint(base_url=running.base_url, model="gpt-4o-mini", env={})
        async with (
            Engine(endpoint) as engine,
            engine.run(PEOPLE[:60], Person, strategy="gather_semaphore", concurrency=8) as run,
        ):
            stats = await run.execute()
    price = price_for("gpt-4o-mini", load_prices())
    assert price is not None
    out = export_results(run.rows, Person, tmp_path / "out.csv")
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60
    prompt = sum(int(r["prompt_tokens"]) for r in rows)
    completion = sum(int(r["completion_tokens"]) for r in rows)
    assert prompt == stats.prompt_tokens > 0
    assert completion == stats.completion_tokens > 0
    assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(stats.cost_usd, rel=1e-4)
    assert stats.cost_usd == pytest.approx(price.cost(prompt, completion))


async def test_budget_stops_cleanly_and_accounts_for_every_row() -> None:
    price = price_for("gpt-4o", load_prices())
    assert price is not None
    budget = 20 * price.cost(60, 10)  # roughly twenty requests' worth
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0)) as running:
        endpoint = choose_endpoint(base_url=running.base_url, model="gpt-4o", env={})
        options = ClientOptions(budget_usd=budget)
        async with (
            Engine(endpoint, options=options) as engine,
            engine.run(PEOPLE[:200], Person, strategy="sequential", concurrency=1) as run,
        ):
            stats = await run.execute()
    assert 0 < stats.ok < 200
    assert stats.ok + stats.failed + stats.cancelled == 200
    assert stats.cost_usd <= budget
    assert stats.stopped_reason is not None and "budget" in stats.stopped_reason
    cancelled = [r for r in run.rows if r.status is Status.CANCELLED]
    assert cancelled and all(r.attempts == 0 and r.prompt_tokens == 0 for r in cancelled)


def test_budget_reserves_in_flight_spending() -> None:
    budget = Budget(1.0)
    assert budget.reserve(0.6)
    assert not budget.reserve(0.5)  # 0.6 is promised to a request in flight
    budget.settle(0.6, 0.3)
    assert budget.reserve(0.5) and budget.spent_usd == 0.3


class FakeTime:
    """A clock that only moves when someone sleeps: acquires run in order, instantly."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("rpm", [1, 20, 25, 600])
async def test_rpm_schedule_is_exact_at_any_rate(rpm: int) -> None:
    time = FakeTime()
    limits = ClientRateLimit(rpm=rpm, clock=time.clock, sleep=time.sleep)
    sent = []
    for _ in range(3 * rpm + 1):
        await limits.acquire(1)
        sent.append(time.now)
    # Evenly spaced 60/rpm apart from the first: no one-second floor (main sent --rpm 20
    # at one a second), no burst.
    assert sent == pytest.approx([i * 60 / rpm for i in range(3 * rpm + 1)])
    # Any 60 s window holds at most rpm requests.
    assert max(sum(1 for t in sent if s <= t < s + 60 - 1e-6) for s in sent) == rpm


async def test_rpm_holds_for_requests_waiting_together() -> None:
    time = FakeTime()
    limits = ClientRateLimit(rpm=20, clock=time.clock, sleep=time.sleep)
    sent: list[float] = []

    async def one() -> None:
        await limits.acquire(1)
        sent.append(time.now)

    await asyncio.gather(*(one() for _ in range(10)))  # everyone asks at t = 0
    assert sent == pytest.approx([i * 3.0 for i in range(10)])


class AnsweringTime(FakeTime):
    """Fake time in which answers arrive ``latency`` after sending, each correcting the
    limit from its usage as time passes."""

    def __init__(self, limits: list[ClientRateLimit], latency: float, actual: int) -> None:
        super().__init__()
        self.limits = limits
        self.latency = latency
        self.actual = actual
        self.pending: list[tuple[float, int]] = []

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        for answer in [a for a in self.pending if a[0] <= self.now]:
            self.pending.remove(answer)
            self.limits[0].correct(answer[1], self.actual)
        await asyncio.sleep(0)


@pytest.mark.parametrize("together", [False, True])
async def test_tpm_reaches_its_budget_for_a_small_schema(together: bool) -> None:
    # The estimate says 140 tokens a request, answers really cost 58 (main kept charging
    # 140: ~40 % of the budget). At 6,000 tpm, answers 0.5 s after sending, the client
    # must use at least 90 % of the budget, rows asking one by one or all at once (gather).
    box: list[ClientRateLimit] = []
    time = AnsweringTime(box, latency=0.5, actual=58)
    limits = ClientRateLimit(tpm=6000, clock=time.clock, sleep=time.sleep)
    box.append(limits)
    rows = 300

    async def one() -> None:
        charged = await limits.acquire(140)
        time.pending.append((time.now + time.latency, charged))

    if together:
        await asyncio.gather(*(one() for _ in range(rows)))
    else:
        for _ in range(rows):
            await one()
    used_per_minute = (rows * 58 - 100) / time.now * 60  # less the bucket's first 100
    assert used_per_minute >= 0.9 * 6000, used_per_minute
    assert limits.ratio == pytest.approx(58 / 140, rel=0.05)


@pytest.mark.parametrize(("actual", "level"), [(100, 900.0), (900, 100.0), (40, 960.0)])
async def test_client_rate_limit_corrects_from_usage_both_ways(actual: int, level: float) -> None:
    time = FakeTime()
    limits = ClientRateLimit(tpm=60_000, clock=time.clock, sleep=time.sleep)  # 1,000 held
    charged = await limits.acquire(100)
    limits.correct(charged, actual)  # an under-estimate costs more, an over-estimate less
    bucket = limits._tokens
    assert bucket is not None
    assert bucket.level == pytest.approx(level)
