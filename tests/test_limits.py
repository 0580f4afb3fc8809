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


@pytest.mark.parametrize(("actual", "room_left"), [(100, True), (900, False)])
async def test_client_rate_limit_corrects_from_usage(actual: int, room_left: bool) -> None:
    limits = ClientRateLimit(tpm=60_000)  # a bucket of 1,000 tokens, refilling 1,000/s
    await limits.acquire(100)
    limits.correct(estimated_tokens=100, actual_tokens=actual)  # an under-estimate costs more
    await asyncio.sleep(0)  # the correction is charged in the background
    bucket = limits._tokens
    assert bucket is not None
    assert bucket.has_capacity(300) is room_left
