"""Rate limits against real HTTP servers on loopback: --rpm below 60, a 429 that gives
no wait (LiteLLM's own limit), a LiteLLM-like gateway in front of a lower upstream limit
(every strategy), and a quota error that stops the run."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import ClientOptions, Engine
from core.events import Event, RowRetrying
from core.extract import RateGate, RetryPolicy
from core.models import Person
from core.results import ErrorKind, Row, Status
from core.stats import RunStats
from core.strategies import STRATEGIES
from tests.gateway_replay import Gateway, gateway
from tests.hostile_server import HostileServer, hostile


async def run_on(
    server: HostileServer | Gateway,
    rows: int,
    options: ClientOptions,
    strategy: str = "gather",
    concurrency: int | None = None,
) -> tuple[list[Row], RunStats, list[Event]]:
    endpoint = choose_endpoint(base_url=server.base_url, env={})
    events: list[Event] = []
    async with (
        Engine(endpoint, options=options) as engine,
        engine.run(
            records_from_texts(["My name is Ann and I am 30"] * rows),
            Person,
            strategy=strategy,
            concurrency=concurrency or rows,
        ) as run,
    ):
        run.subscribe(events.append)
        stats = await asyncio.wait_for(run.execute(), 120)  # a guard against a hang only
    return run.rows, stats, events


async def test_rpm_20_reaches_the_server_at_that_rate() -> None:
    # --rpm 20: one request every 3 s, measured where they arrive. Main floored the
    # limiter at one a second (--rpm 20 sent 63 a minute). Four rows (9 s) keep CI short;
    # a full minute is measured by `python -m benchmarks ratelimits`.
    with hostile("ok") as server:
        rows, _, _ = await run_on(server, 4, ClientOptions(rpm=20))
        arrivals = sorted(server.arrivals)
    assert all(row.status is Status.OK for row in rows)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert min(gaps) > 3.0 * 0.95, gaps
    per_minute = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) * 60
    assert 20 * 0.95 <= per_minute <= 20 * 1.05, per_minute


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


@pytest.mark.parametrize(
    ("policy", "attempts"),
    [
        (RetryPolicy(), 7),  # 3 retries for 5xx, 6 for 429s: the server pacing the run
        (RetryPolicy(max_retries=8), 9),  # the larger of the two
        (RetryPolicy(max_retries=0), 1),  # no retry at all
    ],
)
async def test_429s_have_a_retry_budget_of_their_own(policy: RetryPolicy, attempts: int) -> None:
    with hostile("long_retry_after", delay=0.01) as server:
        rows, stats, _ = await run_on(server, 1, ClientOptions(retry=policy))
        requests = server.requests
    (row,) = rows
    assert row.status is Status.FAILED and row.error_kind is ErrorKind.RATE_LIMIT
    assert requests == row.attempts == row.rate_limited == attempts
    assert row.error is not None and f"after {attempts} attempt" in row.error


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


WINDOW = 2.0
"""LiteLLM's one-minute window, scaled down 30x for CI; fanout's backoff for a 429 that
gives no wait (20/40/60 s by default) is scaled with it."""
SCALED = RetryPolicy(bare_429_delays=(WINDOW / 3, 2 * WINDOW / 3, WINDOW))


@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_150_rows_through_a_litellm_like_gateway_all_end_ok(strategy: str) -> None:
    # The gateway lets 60 requests through per window (sliding) and answers the rest with
    # bare 429s; its upstream takes 50 per window and refuses the rest with waits only in
    # llm_provider-* headers. Through LiteLLM at 60 rpm main lost 30 of 150 rows with
    # gather, 30 with as_completed + Semaphore(8) and 4 with the for loop.
    with gateway(60, WINDOW, upstream_rpm=50) as server:
        rows, stats, events = await run_on(server, 150, ClientOptions(retry=SCALED), strategy, 16)
        refused = {kind: server.count(kind) for kind in ("gateway", "upstream")}
        most = server.max_in_window("ok")
    assert [row.status for row in rows] == [Status.OK] * 150, {
        r.error for r in rows if r.status is not Status.OK
    }
    assert most <= 50  # the replay held its limit (a check of the test server)
    assert stats.rate_limited == refused["gateway"] + refused["upstream"]  # each one counted
    bare = [e for e in events if isinstance(e, RowRetrying) and "no wait given" in e.reason]
    assert len(bare) == refused["gateway"]
    assert all(e.delay >= WINDOW / 3 for e in bare)
    # What each strategy runs into (the for loop may stay under both limits on a slow
    # machine; adaptive paces itself and meets only the upstream's):
    if strategy != "sequential":
        assert refused["upstream"] > 0
    if strategy not in ("sequential", "adaptive"):
        assert refused["gateway"] > 0


@pytest.mark.parametrize("strategy", ["gather", "as_completed"])
async def test_the_release_after_a_pause_is_paced_not_a_herd(strategy: str) -> None:
    # An upstream with a burst limit: 10 requests per 0.25 s, 429s with the wait in
    # llm_provider-* headers. 150 rows at once, no semaphore. Main released every waiting
    # row the instant the run-wide pause ended: 10 got in, the rest met another 429, and
    # rows ran out of their 7 attempts (~30 of 150 failed). Paced at what the window
    # admitted, a row needs about one retry, and the run ~150 / 10 windows.
    with gateway(100_000, 60.0, upstream_rpm=10, upstream_window=0.25) as server:
        rows, stats, events = await run_on(server, 150, ClientOptions(), strategy)
        refused = server.count("upstream")
        most = server.max_in_window("ok", 0.25)
    assert [row.status for row in rows] == [Status.OK] * 150, {
        r.error for r in rows if r.status is not Status.OK
    }
    assert most <= 10  # the replay held its limit
    # The first burst meets 140 refusals; the paced release only a few more (the herd
    # met several per row: ~600 for 150 rows).
    assert refused < 150 * 2, refused
    assert max(row.attempts for row in rows) <= 5


async def _released(gate: RateGate, waiters: int) -> list[float]:
    """When each of ``waiters`` rows, all waiting on the gate, was let go."""
    times: list[float] = []

    async def row() -> None:
        await gate.wait()
        times.append(time.monotonic())

    await asyncio.gather(*(row() for _ in range(waiters)))
    return sorted(times)


async def test_the_gate_paces_its_release_at_what_the_window_admitted() -> None:
    gate = RateGate()
    for _ in range(4):  # the window before the 429 admitted 4 answers
        gate.admitted()
    gate.pause(0.2)
    started = time.monotonic()
    times = await _released(gate, 8)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert times[0] - started >= 0.2 * 0.99  # nobody before the pause's end
    # 0.2 s / 4 answers (jitter only adds), a fifth faster after each 0.2 s without a 429
    # (a loaded machine stretches the gaps, so more of those may pass: only the first two
    # are sure to be at the full interval)
    assert min(gaps[:2]) >= 0.05 * 0.99, gaps
    assert min(gaps) >= 0.02, gaps
    assert gate.pacing < 0.05
    # A gate told of no answer (one that relays pauses only) lets everyone go at once.
    relay = RateGate()
    relay.pause(0.1)
    times = await _released(relay, 8)
    assert times[-1] - times[0] < 0.05
