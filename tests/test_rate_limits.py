"""Rate limits against real HTTP servers on loopback: --rpm below 60, a 429 that gives
no wait (LiteLLM's own limit), and a quota error that stops the run."""

from __future__ import annotations

import asyncio

from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import ClientOptions, Engine
from core.events import Event, RowRetrying
from core.extract import RetryPolicy
from core.models import Person
from core.results import ErrorKind, Row, Status
from core.stats import RunStats
from tests.hostile_server import HostileServer, hostile


async def run_on(
    server: HostileServer, rows: int, options: ClientOptions, strategy: str = "gather"
) -> tuple[list[Row], RunStats, list[Event]]:
    endpoint = choose_endpoint(base_url=server.base_url, env={})
    events: list[Event] = []
    async with (
        Engine(endpoint, options=options) as engine,
        engine.run(
            records_from_texts(["My name is Ann and I am 30"] * rows),
            Person,
            strategy=strategy,
            concurrency=rows,
        ) as run,
    ):
        run.subscribe(events.append)
        stats = await asyncio.wait_for(run.execute(), 120)  # a guard against a hang only
    return run.rows, stats, events


async def test_rpm_below_60_reaches_the_server_at_that_rate() -> None:
    # --rpm 40: one request every 1.5 s. Main floored the limiter at one a second
    # (--rpm 20 sent 63 a minute).
    with hostile("ok") as server:
        rows, _, _ = await run_on(server, 6, ClientOptions(rpm=40))
        arrivals = sorted(server.arrivals)
    assert all(row.status is Status.OK for row in rows)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert min(gaps) > 1.5 * 0.9, gaps
    per_minute = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) * 60
    assert 40 * 0.95 <= per_minute <= 40 * 1.05, per_minute


async def test_a_429_without_a_wait_pauses_the_run_long_enough_for_the_window() -> None:
    # 3 answers per 2 s window, the rest bare 429s (no retry-after, no x-ratelimit-*),
    # as LiteLLM's own rpm limit answers. The no-hint backoff (scaled from 20/40/60 s to
    # 2 s for the test) pauses the whole run past the window, so all 9 rows get through;
    # main's 0.5 -> 1 -> 2 s spent every retry inside the window and lost rows.
    policy = RetryPolicy(max_retries=3, bare_429_delays=(2.0,))
    with hostile("bare_429", delay=2.0, size=3) as server:
        rows, stats, events = await run_on(server, 9, ClientOptions(retry=policy))
        requests = server.requests
    assert [row.status for row in rows] == [Status.OK] * 9
    assert stats.rate_limited == requests - 9
    retries = [e for e in events if isinstance(e, RowRetrying)]
    assert retries and all(e.delay >= 2.0 for e in retries)
    assert all("no wait given: pausing the run" in e.reason for e in retries)


async def test_a_quota_error_fails_fast_and_stops_the_run() -> None:
    with hostile("quota") as server:
        rows, stats, events = await run_on(server, 5, ClientOptions(), strategy="sequential")
        requests = server.requests
    assert requests == 1  # no retry, and no other row sent
    first, *rest = rows
    assert first.status is Status.FAILED and first.error_kind is ErrorKind.QUOTA
    assert first.error is not None and first.error.startswith("quota exhausted after 1 attempt")
    assert first.error.endswith("; check billing")
    reason = stats.stopped_reason
    assert reason is not None and reason.startswith("quota exhausted: You exceeded")
    assert all(row.status is Status.CANCELLED and row.error == reason for row in rest)
    assert not any(isinstance(e, RowRetrying) for e in events)
