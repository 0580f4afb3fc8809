"""``--ray``: rows made by Ray actors on a local Ray instance, the run kept by the driver.

One local Ray instance serves the module (started once: it takes seconds); the
driver's runs reach it by ``ray.is_initialized()``, a ``fanout run`` child by
its address. Requests go over real HTTP to the simulator on loopback.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from core.cli import main
from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import ClientOptions, Engine
from core.events import Event, RowFinished, RowRetrying
from core.extract import RetryPolicy
from core.localserver import LocalServer, ServerConfig
from core.models import Person
from core.results import Status
from core.runner import Run
from core.store import Store
from core.workers.ray_pool import RayPool

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray instance for the module; its address."""
    context = ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


def texts(n: int) -> list[str]:
    names = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"]
    return [
        f"My name is {names[i % 4]} and I am {20 + i % 60} years old (row {i})" for i in range(n)
    ]


def health(server: LocalServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/health", timeout=10) as r:
        data: dict[str, Any] = json.loads(r.read())
    return data


async def run_rows(
    server: LocalServer,
    n: int,
    *,
    ray_address: str | None,
    workers: int = 2,
    concurrency: int = 16,
    options: ClientOptions | None = None,
) -> Run:
    engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}), options=options)
    async with (
        engine,
        engine.run(
            records_from_texts(texts(n)),
            Person,
            strategy="as_completed_semaphore",
            concurrency=concurrency,
            workers=workers,
            ray=ray_address,
        ) as run,
    ):
        if ray_address is not None:
            assert isinstance(getattr(run, "pool", None), RayPool)
        await run.execute()
    return run


async def test_ray_actors_give_the_results_of_a_local_run_and_honour_retry_after(
    cluster: str,
) -> None:
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0)) as server:
        local = await run_rows(server, 40, ray_address=None, workers=1)
    # This server allows 8 requests a second; 16 at once get 429s with a retry-after.
    config = ServerConfig(latency=0.02, jitter=0.0, rpm=480, rate_window=1.0)
    patient = ClientOptions(retry=RetryPolicy(max_retries=10))
    with LocalServer(config) as server:
        remote = await run_rows(server, 40, ray_address="local", options=patient)
        after = health(server)["counts"]
    before = {"rate_limited": 0, "completions": 0}
    assert [r.status for r in remote.rows] == [Status.OK] * 40
    assert [r.data for r in remote.rows] == [r.data for r in local.rows]
    refused = after["rate_limited"] - before["rate_limited"]
    assert refused > 0 and remote.rate_limited == refused  # every 429 seen and counted
    assert remote.retries >= refused
    assert after["completions"] - before["completions"] == 40  # each row answered once
    # retry-after honoured: 40 rows at 8 a second cannot finish in much under 4 s
    assert remote.elapsed >= 3.5


async def test_retries_reach_the_driver_as_they_happen_not_when_the_row_ends(
    cluster: str,
) -> None:
    # Every answer takes 0.3 s and about a third are 500/503s: a row that fails once
    # is told of it at ~0.3 s and ends at ~0.65 s (a short backoff, then a good answer).
    latency = 0.3
    config = ServerConfig(latency=latency, jitter=0.0, error_rate=0.35, seed=11)
    quick = ClientOptions(retry=RetryPolicy(max_retries=8, base_delay=0.02, max_delay=0.05))
    with LocalServer(config) as server:
        local = await run_rows(server, 40, ray_address=None, workers=1, options=quick)
    with LocalServer(config) as server:
        events: list[Event] = []
        engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}), options=quick)
        async with (
            engine,
            engine.run(
                records_from_texts(texts(40)),
                Person,
                strategy="as_completed_semaphore",
                concurrency=16,
                workers=2,
                ray="local",
            ) as run,
        ):
            run.subscribe(events.append)
            await run.execute()
        errors = health(server)["counts"]["error"]
    assert [r.status for r in run.rows] == [Status.OK] * 40
    assert [r.data for r in run.rows] == [r.data for r in local.rows]
    assert errors > 0 and run.retries == errors  # each 500/503 seen as one retry
    retried_at: dict[int, float] = {}
    finished_at: dict[int, float] = {}
    for event in events:
        if isinstance(event, RowRetrying):
            assert event.index not in finished_at  # never replayed after the row ended
            retried_at[event.index] = event.at  # the last retry of the row
        elif isinstance(event, RowFinished):
            finished_at[event.index] = event.at
    assert retried_at
    # The retry arrived while the row's next attempt (>= 0.3 s) was still to be answered;
    # replayed with the result, it would arrive in the same instant as the row's end.
    leads = [finished_at[i] - retried_at[i] for i in retried_at]
    assert min(leads) >= latency / 2, sorted(leads)[:5]
    assert {run.rows[i].attempts for i in retried_at} != {1}


async def test_rows_started_together_go_to_each_actor_in_one_call(cluster: str) -> None:
    # All 60 rows start in the first pass of the driver's loop (k = 60): one submit per
    # actor carries them all, where one call a row would make 60.
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0)) as server:
        local = await run_rows(server, 60, ray_address=None, workers=1)
        engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
        async with (
            engine,
            engine.run(
                records_from_texts(texts(60)),
                Person,
                strategy="as_completed_semaphore",
                concurrency=60,
                workers=2,
                ray="local",
            ) as run,
        ):
            pool = getattr(run, "pool", None)
            assert isinstance(pool, RayPool)
            await run.execute()
            calls, items = pool.calls, pool.items
    assert [r.status for r in run.rows] == [Status.OK] * 60
    assert [r.data for r in run.rows] == [r.data for r in local.rows]
    assert calls == 2
    assert 2 <= items <= 60  # results come back as they complete, several to an item


async def test_adaptive_on_ray_is_one_controller_fed_by_every_actor(cluster: str) -> None:
    # 20 requests in any half second; the actors relay each request and answer on their
    # streams to the driver's one AdaptiveLimit (core.workers.relay).
    limited = ServerConfig(latency=0.05, jitter=0.0, rpm=2400, rate_window=0.5)
    n = 120
    with LocalServer(limited) as server:
        engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
        async with (
            engine,
            engine.run(
                records_from_texts(texts(n)),
                Person,
                strategy="adaptive",
                concurrency=60,
                workers=2,
                ray="local",
            ) as run,
        ):
            pool = getattr(run, "pool", None)
            assert isinstance(pool, RayPool) and pool.config.relay
            await run.execute()
        seen = health(server)["counts"]
    limit = run.limiter
    assert limit is not None
    assert [r.status for r in run.rows] == [Status.OK] * n and seen["completions"] == n
    answered = seen["completions"] + seen.get("rate_limited", 0)
    assert limit.responses == answered  # heard every answer either actor got
    assert limit.sent == sum(r.attempts for r in run.rows) == answered
    assert limit.server_rpm == limited.rpm  # a header only the actors saw
    assert seen.get("rate_limited", 0) <= n // 10, seen


async def test_rpm_is_one_limit_for_all_actors(cluster: str) -> None:
    # Server: 12 requests in any 1 s window; client --rpm 600 (10/s) over 2 actors.
    config = ServerConfig(latency=0.05, jitter=0.0, rpm=720, rate_window=1.0)
    with LocalServer(config) as server:
        run = await run_rows(
            server, 24, ray_address="local", concurrency=24, options=ClientOptions(rpm=600)
        )
        seen = health(server)["counts"]
    assert run.ok == 24
    assert seen["rate_limited"] == 0 and seen["completions"] == 24
    assert run.elapsed >= 2.0


def write_dataset(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i in range(n):
            writer.writerow([f"r{i}", f"Person {i}: Alice Number{i} is {20 + i % 60} years old."])
    return path


def stored_ok(db: Path) -> int:
    try:
        conn = sqlite3.connect(db, timeout=1)
        try:
            return int(conn.execute("SELECT count(*) FROM rows WHERE status = 'ok'").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_a_killed_ray_driver_resumes_with_every_row_once(cluster: str, tmp_path: Path) -> None:
    n = 300
    dataset = write_dataset(tmp_path / "people.csv", n)
    db = tmp_path / "runs.sqlite3"
    with LocalServer(ServerConfig(latency=0.05, jitter=0.0)) as server:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "tui", "run", str(dataset), "-s", "gather_semaphore"]
        command += ["-c", "8", "--store", str(db), "--base-url", server.base_url, "--quiet"]
        command += ["--ray", cluster, "--workers", "2", "--out", str(tmp_path / "out.csv")]
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 90
            while child.poll() is None and time.monotonic() < deadline and stored_ok(db) < 40:
                time.sleep(0.05)
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait()
            if child.stderr is not None:
                child.stderr.close()
        with Store(db, create=False) as store:
            (info,) = store.list_runs()
            ok_before = {r.index: r.data for r in store.load_rows(info.id) if r.status is Status.OK}
        assert info.status == "interrupted" and 40 <= len(ok_before) < n
        assert (info.options["workers"], info.options["ray"]) == (2, cluster)  # where it ran
        sent_before = health(server)["counts"]["completions"]
        time.sleep(0.5)  # the killed driver's actors are gone: nothing more arrives
        assert health(server)["counts"]["completions"] == sent_before

        out = tmp_path / "resumed.csv"
        args = ["resume", info.id, "--store", str(db), "--quiet", "--out", str(out)]
        assert main([*args, "--ray", cluster, "--workers", "2"]) == 0
        resent = health(server)["counts"]["completions"] - sent_before
    assert resent == n - len(ok_before)  # only the rows not stored ok were sent again
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(n)]
    assert all(r["status"] == "ok" for r in rows)
    with Store(db, create=False) as store:
        done = store.get_run(info.id)
        assert (done.status, done.ok, done.pending) == ("finished", n, 0)
        after = {r.index: r.data for r in store.load_rows(info.id)}
    assert {i: after[i] for i in ok_before} == ok_before


async def test_an_actor_killed_mid_run_loses_no_row(cluster: str) -> None:
    n = 200
    with LocalServer(ServerConfig(latency=0.05, jitter=0.0)) as server:
        engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
        async with (
            engine,
            engine.run(
                records_from_texts(texts(n)),
                Person,
                strategy="as_completed_semaphore",
                concurrency=16,
                workers=2,
                ray="local",
            ) as run,
        ):
            pool = getattr(run, "pool", None)
            assert isinstance(pool, RayPool)
            victim = pool.pids[0]
            third = asyncio.Event()
            events: list[Event] = []
            run.subscribe(events.append)
            run.subscribe(lambda _: third.set() if run.finished >= n // 3 else None)
            task = asyncio.create_task(run.execute())
            await asyncio.wait_for(third.wait(), 60)
            os.kill(victim, signal.SIGKILL)
            stats = await asyncio.wait_for(task, 60)
            deaths = list(pool.deaths)
        seen = health(server)["counts"]
    assert stats.ok == n and stats.failed == stats.cancelled == 0
    assert deaths and all("actor 1" in d for d in deaths)
    assert run.retries >= 1
    # Each row the dead actor held: one retry, told before the row ends, one attempt more.
    moved = {e.index for e in events if isinstance(e, RowRetrying) and "another" in e.reason}
    assert moved and len(moved) <= 16
    ended = {e.index: n for n, e in enumerate(events) if isinstance(e, RowFinished)}
    for number, event in enumerate(events):
        if isinstance(event, RowRetrying) and event.index in moved:
            assert number < ended[event.index]
    assert all(run.rows[i].attempts >= 2 for i in moved)
    answered = [r.request_ids[-1] for r in run.rows]
    assert len(set(answered)) == n
    assert n <= seen["completions"] <= n + run.retries


async def test_stop_cancels_the_rows_at_the_actors(cluster: str) -> None:
    with LocalServer(ServerConfig(latency=0.2, jitter=0.0)) as server:
        engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
        async with (
            engine,
            engine.run(
                records_from_texts(texts(200)),
                Person,
                strategy="as_completed_semaphore",
                concurrency=10,
                workers=2,
                ray="local",
            ) as run,
        ):
            fifteen = asyncio.Event()
            run.subscribe(lambda _: fifteen.set() if run.ok >= 15 else None)
            task = asyncio.create_task(run.execute())
            await asyncio.wait_for(fifteen.wait(), 60)
            run.stop("cancelled")
            stats = await asyncio.wait_for(task, 10)
            await asyncio.sleep(0.5)
            sent = health(server)["counts"]["completions"]
        await asyncio.sleep(0.5)
        assert health(server)["counts"]["completions"] == sent  # the actors sent nothing more
    assert stats.ok >= 15 and stats.cancelled > 0
    assert stats.ok + stats.failed + stats.cancelled == 200
    assert stats.ok + stats.failed <= sent <= stats.ok + stats.failed + 10
