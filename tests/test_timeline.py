"""The time line per request, end to end: a client-side rpm limit against the simulator.

The real openai + instructor stack over real HTTP. The simulator answers in
exactly ``LATENCY`` seconds and counts the requests it sees at once; the
client is limited to 60 requests a minute (one a second) with a semaphore of
20, so all rows get a slot at once and then queue in the rate limiter. The
sends are a second apart and each answer takes half that, so the endpoint
never has more than one request at a time, with half a second to spare on
either side: the checks below hold on a busy machine too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx2 as httpx
import pytest

from core.client import choose_endpoint, close_client
from core.dataset import load_dataset
from core.engine import ClientOptions, Engine
from core.localserver import LocalServer, ServerConfig
from core.models import Person
from core.options import bundled_datasets_dir
from core.results import Row, Status
from core.runner import Run
from core.stats import RunStats

LATENCY = 0.5
ROWS = 5
SEMAPHORE = 20
PEOPLE = load_dataset(bundled_datasets_dir() / "people_1000.csv").records


@dataclass
class Limited:
    run: Run
    stats: RunStats
    health: dict[str, object]

    @property
    def rows(self) -> list[Row]:
        return self.run.rows


async def limited_run() -> Limited:
    config = ServerConfig(latency=LATENCY, jitter=0.0)
    with LocalServer(config) as running:
        endpoint = choose_endpoint(base_url=running.base_url, env={})
        async with (
            Engine(endpoint, options=ClientOptions(rpm=60)) as engine,
            engine.run(
                PEOPLE[:ROWS], Person, strategy="gather_semaphore", concurrency=SEMAPHORE
            ) as run,
        ):
            stats = await run.execute()
        health_url = running.base_url.removesuffix("/v1") + "/health"
        async with httpx.AsyncClient() as client:
            health = (await client.get(health_url)).json()
    return Limited(run, stats, health)


@pytest.fixture(scope="module")
def limited() -> Limited:
    """One run shared by the checks below (it takes ~5 s)."""
    return asyncio.run(limited_run())


def test_max_in_flight_never_exceeds_what_the_endpoint_saw(limited: Limited) -> None:
    seen = limited.health["max_open_requests"]
    assert isinstance(seen, int) and seen >= 1
    assert limited.stats.ok == ROWS
    assert 1 <= limited.stats.max_in_flight <= seen
    # Before, every row holding a semaphore slot counted: all of them at once.
    assert limited.stats.max_in_flight < ROWS
    assert limited.run.in_flight == 0


def test_p50_latency_is_the_endpoints_latency_not_the_queue(limited: Limited) -> None:
    p50 = limited.stats.p50_latency_s
    assert p50 is not None and abs(p50 - LATENCY) <= 0.1 * LATENCY
    # The rows did queue: the last one was sent about ROWS - 1 seconds in.
    spans = sorted(row.span_s or 0.0 for row in limited.rows)
    assert spans[-1] > ROWS - 1.5


def test_limiter_waits_show_as_waits_not_wire_time(limited: Limited) -> None:
    waits = sorted(row.phases.wait_limiter_s for row in limited.rows if row.phases)
    assert len(waits) == ROWS
    assert waits[0] < 0.2 and waits[-1] > ROWS - 1.5  # one a second: 0, 1, 2, ...
    assert limited.stats.p50_wait_limiter_s == pytest.approx(waits[ROWS // 2])
    assert limited.stats.p50_wait_limiter_s is not None
    assert limited.stats.p50_wait_limiter_s > 1.0
    for row in limited.rows:
        phases = row.phases
        assert row.status is Status.OK and phases is not None and row.span_s is not None
        assert phases.wire_s < 1.5 * LATENCY
        assert phases.wait_sem_s < 0.5  # a semaphore of 20 holds no one back
        assert phases.backoff_s == 0 and phases.retries == 0
        accounted = phases.wait_limiter_s + phases.wire_s + phases.client_s
        assert accounted == pytest.approx(row.span_s, abs=0.05)


async def test_waiting_for_a_pool_connection_is_its_own_phase_not_wire() -> None:
    # A pool of one connection under gather: three requests, one on the wire at a time.
    with LocalServer(ServerConfig(latency=0.3, jitter=0.0)) as running:
        endpoint = choose_endpoint(base_url=running.base_url, env={})
        async with Engine(endpoint) as engine:
            extractor = engine.extractor(Person, connections=1)
            run = Run(PEOPLE[:3], extractor, strategy="gather", wire=extractor.wire)
            try:
                stats = await run.execute()
            finally:
                await close_client(extractor.client)
    assert stats.ok == 3 and stats.max_in_flight == 1
    assert stats.p50_latency_s is not None and abs(stats.p50_latency_s - 0.3) <= 0.03
    waits = sorted(row.phases.connect_s for row in run.rows if row.phases is not None)
    assert waits[0] < 0.1  # the first only opened the connection
    assert waits[1] == pytest.approx(0.3, abs=0.1) and waits[2] == pytest.approx(0.6, abs=0.1)
