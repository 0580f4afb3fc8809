"""``--strategy adaptive`` with ``--workers N``: one controller, fed by every worker.

The adaptive strategy learns from each answer's status, latency and rate-limit
headers. With worker processes the answers arrive in the workers and the
controller lives in the parent; the workers relay them (``core.workers.relay``).
Everything here runs for real: worker processes, the openai + instructor
clients in them, HTTP to a rate-limited simulator on loopback, whose own
counts (``/health``) say how many requests it answered and how many it refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from core.adaptive import START_LIMIT, AdaptiveLimit
from core.cli import main
from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import Engine
from core.localserver import LocalServer, ServerConfig
from core.models import Person
from core.results import Status
from core.runner import Run
from core.workers import protocol as p
from core.workers.relay import Relay, replay
from tests.test_workers import health, pool_of, texts

N = 160
CEILING = 80
LIMITED = ServerConfig(latency=0.05, jitter=0.0, rpm=2400, rate_window=0.5)
"""20 requests in any half second (40/s); a 21st is a 429 with retry-after."""


async def run_on(server: LocalServer, strategy: str, workers: int) -> tuple[Run, dict[str, int]]:
    engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
    async with (
        engine,
        engine.run(
            records_from_texts(texts(N)),
            Person,
            strategy=strategy,
            concurrency=CEILING,
            workers=workers,
        ) as run,
    ):
        if workers > 1:
            assert pool_of(run).config.relay is (strategy == "adaptive")
        await run.execute()
    counts: dict[str, int] = health(server)["counts"]
    return run, counts


async def test_two_workers_feed_the_runs_one_adaptive_limit() -> None:
    with LocalServer(LIMITED) as server:
        run, seen = await run_on(server, "adaptive", workers=2)
    limit = run.limiter
    assert limit is not None
    # Every row ok, each answered once by the server.
    assert [r.status for r in run.rows] == [Status.OK] * N
    assert seen["completions"] == N
    assert len({r.request_ids[-1] for r in run.rows}) == N
    # The one controller heard every answer either worker got, and every request sent:
    # N controllers (or none) in the parent would have heard none of them.
    answered = seen["completions"] + seen.get("rate_limited", 0)
    assert limit.responses == answered
    assert limit.sent == sum(r.attempts for r in run.rows) == answered
    assert limit.rate_limited == seen.get("rate_limited", 0) == run.rate_limited
    # It learnt the server's stated rate (a header only the workers saw) and paced by it,
    # and its limit moved off where it starts.
    assert limit.server_rpm == LIMITED.rpm and limit.request_pacer is not None
    assert limit.history and max(value for _, value in limit.history) > START_LIMIT
    # Paced at 95 % of the stated rate, the run meets few 429s (a loaded machine can
    # bunch a few sends into one window; a semaphore of 80 meets ~70, the next test).
    assert seen.get("rate_limited", 0) <= N // 10, seen


async def test_adaptive_on_workers_meets_far_fewer_429s_than_a_blind_semaphore() -> None:
    # The same run with gather + Semaphore(80) on the same limit: 80 at once against 20 a
    # half second. Then adaptive in one process: what the workers' run is compared with.
    results: dict[str, dict[str, int]] = {}
    for name, strategy, workers in (
        ("blind", "gather_semaphore", 2),
        ("adaptive, 2 workers", "adaptive", 2),
        ("adaptive, one process", "adaptive", 1),
    ):
        with LocalServer(LIMITED) as server:
            run, seen = await run_on(server, strategy, workers)
        assert run.ok == N and seen["completions"] == N, (name, seen)
        results[name] = seen
    refused = {name: seen.get("rate_limited", 0) for name, seen in results.items()}
    assert refused["blind"] >= 3 * max(1, refused["adaptive, 2 workers"]), refused
    assert refused["adaptive, 2 workers"] <= max(N // 10, 3 * refused["adaptive, one process"])


async def test_a_relayed_answer_teaches_the_limit_as_one_seen_here_would() -> None:
    # The worker's side (Relay, writing frames) and the parent's (replay into the row's
    # adaptive slot), joined by the frame encoding the pipe uses.
    frames: list[bytes] = []
    outbox = p.Outbox(frames.append)
    limit = AdaptiveLimit(10, start=8)
    slot = limit.slot()

    async def exchange(status: int, headers: dict[str, str], delay: float = 0.0) -> None:
        relay = Relay(outbox, 7)
        relay.on_request()
        relay.on_response(status, headers)
        await asyncio.sleep(0)  # the outbox writes its frame at the end of the pass
        reader = asyncio.StreamReader()
        reader.feed_data(frames.pop())
        reader.feed_eof()
        messages = await p.read_frame(reader)
        assert messages is not None and [m[0] for m in messages] == [p.SENT, p.ANSWER]
        sent, answer = messages
        assert sent[1] == answer[1] == 7
        replay((slot,), sent)
        await asyncio.sleep(delay)  # the pipe and the parent's loop taking their time
        replay((slot,), answer)

    await exchange(200, {"x-ratelimit-limit-requests": "600", "content-type": "x"})
    assert limit.sent == 1 and limit.responses == 1
    assert limit.server_rpm == 600
    # Timed in the worker (microseconds), not here (0.2 s later than the first answer,
    # which took no time here either): not "a server queueing", so the limit grows.
    await exchange(200, {}, delay=0.2)
    assert limit.limit > 8
    grown = limit.limit
    await exchange(429, {"retry-after": "3"})
    assert limit.limit == pytest.approx(grown / 2) and limit.rate_limited == 1
    assert not limit._may_start()  # nobody sends until the server's retry-after is over
    # Only the headers the controller reads cross the pipe, already parsed.
    relay = Relay(outbox, 1)
    relay.on_request()
    relay.on_response(200, {"server": "x" * 1000, "x-request-id": "y" * 1000})
    relay.on_response(200, {"x-ratelimit-remaining-requests": "5"})
    await asyncio.sleep(0)
    assert len(frames[-1]) < 200


def test_cli_runs_adaptive_on_workers(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    args = ["run", "--workers", "2", "-s", "adaptive", "-c", "20", "--latency", "0.02"]
    args += ["--sim-rpm", "1200", "--sim-rate-window", "1", "--no-store", "-q", "--out", str(out)]
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and all(r["status"] == "ok" for r in rows)


async def test_the_dashboard_runs_adaptive_on_workers_and_draws_its_limit() -> None:
    from textual.widgets import Button

    from core.dataset import load_dataset
    from core.options import bundled_datasets_dir
    from tests.tui_support import wait_for
    from tui.app import FanoutApp
    from tui.settings import DashboardSettings

    settings = DashboardSettings(
        dataset=bundled_datasets_dir() / "people_1000.csv",
        strategy="adaptive",
        concurrency=30,
        server=ServerConfig(latency=0.02, jitter=0.0, rpm=6000, rate_window=1.0),
        workers=2,
    )
    app = FanoutApp(settings, load_dataset(settings.dataset), Person)
    said: list[str] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        said.append(message)
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: "starting 2 worker processes…" in said)
        await wait_for(pilot, lambda: app.feed is not None and app.feed.run.ok >= 150, 60)
        feed = app.feed
        assert feed is not None
        limiter = feed.run.limiter
        assert limiter is not None and limiter.server_rpm == 6000
        assert max(limit for _, limit in feed.limits) > START_LIMIT  # the chart's limit line
        assert not any("cannot run" in m for m in said)
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.running, 30)
        assert app.query_one("#run", Button).disabled is False


async def test_a_worker_killed_mid_run_leaves_the_controller_in_charge() -> None:
    # The dead worker's rows go to the other one, their slots stay held by the rows until
    # they end, and the controller goes on learning from the worker that is left.
    n = 240
    with LocalServer(ServerConfig(latency=0.05, jitter=0.0, rpm=3600, rate_window=1.0)) as server:
        engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
        async with (
            engine,
            engine.run(
                records_from_texts(texts(n)), Person, strategy="adaptive", concurrency=30, workers=2
            ) as run,
        ):
            pool = pool_of(run)
            victim = pool.pids[0]
            third = asyncio.Event()
            run.subscribe(lambda _: third.set() if run.finished >= n // 3 else None)
            task = asyncio.create_task(run.execute())
            await asyncio.wait_for(third.wait(), 60)
            heard = run.limiter.responses if run.limiter is not None else 0
            os.kill(victim, signal.SIGKILL)
            stats = await asyncio.wait_for(task, timeout=90)
        seen = health(server)["counts"]
    limit = run.limiter
    assert limit is not None
    assert stats.ok == n and stats.failed == stats.cancelled == 0
    assert len(pool.deaths) == 1 and "SIGKILL" in pool.deaths[0]
    assert len({r.request_ids[-1] for r in run.rows}) == n  # no answer taken for two rows
    assert n <= seen["completions"] <= n + run.retries
    # It heard the rest of the run: every answer but the dead worker's last few.
    answered = seen["completions"] + seen.get("rate_limited", 0)
    assert heard < limit.responses <= answered
    assert limit.responses >= answered - run.retries
    assert limit.in_use == 0  # every slot given back, the dead worker's rows' too
