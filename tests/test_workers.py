"""``--workers N``: worker processes make the requests, the parent keeps the run.

Everything runs for real: worker processes started from this interpreter, the
openai + instructor clients in them, HTTP to the simulator on loopback. What
the simulator saw (``/health``: its counters and the most requests it had open
at once) is the proof that limits were global and that no row was lost or
answered twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import textwrap
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from core.cli import main
from core.client import choose_endpoint
from core.dataset import Record, load_dataset, records_from_texts
from core.engine import ClientOptions, Engine
from core.errors import ConfigError
from core.localserver import LocalServer, ServerConfig
from core.models import Person, load_schema
from core.prices import load_prices, price_for
from core.recorder import recording, run_meta
from core.results import Status
from core.runner import Run
from core.store import Store
from core.workers.pool import WorkerPool

ODD_SCHEMA = """
from datetime import date
from typing import Literal
from pydantic import BaseModel


class Item(BaseModel):
    id: int
    status: Literal["open", "closed"] | None = None


class Ticket(BaseModel):
    id: str
    status: str
    opened: date | None = None
    items: list[Item] = []
    priority: int | str | None = None
"""


def texts(n: int) -> list[str]:
    names = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"]
    return [
        f"My name is {names[i % 5]} and I am {20 + i % 60} years old (row {i})" for i in range(n)
    ]


def health(server: LocalServer) -> dict[str, Any]:
    url = server.base_url.removesuffix("/v1") + "/health"
    with urllib.request.urlopen(url, timeout=10) as answer:
        data: dict[str, Any] = json.loads(answer.read())
    return data


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def pool_of(run: Run) -> WorkerPool:
    pool = getattr(run, "pool", None)
    assert isinstance(pool, WorkerPool)
    return pool


async def run_rows(
    server: LocalServer,
    records: Sequence[Record],
    schema: type[BaseModel],
    *,
    workers: int,
    concurrency: int = 8,
    options: ClientOptions | None = None,
) -> Run:
    engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}), options=options)
    async with (
        engine,
        engine.run(
            records,
            schema,
            strategy="as_completed_semaphore",
            concurrency=concurrency,
            workers=workers,
        ) as run,
    ):
        await run.execute()
    return run


async def test_two_workers_give_the_results_of_one_process_on_an_odd_user_schema(
    tmp_path: Path,
) -> None:
    (tmp_path / "odd.py").write_text(textwrap.dedent(ODD_SCHEMA), encoding="utf-8")
    schema = load_schema(f"{tmp_path / 'odd.py'}:Ticket")  # a module no worker can import
    records = records_from_texts(
        [
            f"Ticket T-{i} is {'open' if i % 2 else 'closed'}, opened 2024-03-{1 + i % 28:02d}"
            for i in range(60)
        ]
    )
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0, seed=3)) as server:
        one = await run_rows(server, records, schema, workers=1)
        two = await run_rows(server, records, schema, workers=2)
        seen = health(server)
    assert [r.status for r in two.rows] == [Status.OK] * 60
    assert [r.data for r in two.rows] == [r.data for r in one.rows]
    assert [r.guessed for r in two.rows] == [r.guessed for r in one.rows]
    assert two.prompt_tokens == one.prompt_tokens and two.retries == 0
    assert seen["counts"]["completions"] == 120  # one request a row, each run


async def test_concurrency_and_rpm_are_limits_for_the_whole_run_not_per_worker() -> None:
    # Server: at most 12 requests in any 1 s window (a 13th is a 429). Client: --rpm 600
    # (10/s) over 3 workers; three limiters of 600 each would send ~30/s and be refused.
    config = ServerConfig(latency=0.15, jitter=0.0, rpm=720, rate_window=1.0)
    records = records_from_texts(texts(24))
    options = ClientOptions(rpm=600)
    with LocalServer(config) as server:
        run = await run_rows(server, records, Person, workers=3, concurrency=50, options=options)
        seen = health(server)
    assert run.ok == 24
    assert seen["counts"]["rate_limited"] == 0
    assert seen["counts"]["completions"] == 24
    assert run.elapsed >= 2.0  # 24 requests at 10/s, the first one free

    with LocalServer(ServerConfig(latency=0.1, jitter=0.0)) as server:
        run = await run_rows(
            server, records_from_texts(texts(60)), Person, workers=2, concurrency=6
        )
        seen = health(server)
    assert run.ok == 60
    assert 4 <= seen["max_open_requests"] <= 6  # the parent's semaphore, not 6 per worker
    assert run.max_in_flight <= 6


async def test_a_worker_killed_mid_run_loses_no_row_and_none_is_stored_twice(
    tmp_path: Path,
) -> None:
    n = 300
    csv = tmp_path / "people.csv"
    csv.write_text("text\n" + "\n".join(texts(n)) + "\n", encoding="utf-8")
    dataset = load_dataset(csv)
    with (
        LocalServer(ServerConfig(latency=0.05, jitter=0.0)) as server,
        Store(tmp_path / "runs.sqlite3") as store,
    ):
        engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
        async with (
            engine,
            engine.run(
                dataset.records,
                Person,
                strategy="as_completed_semaphore",
                concurrency=20,
                workers=2,
            ) as run,
        ):
            meta = run_meta(
                dataset=dataset,
                schema_spec="Person",
                schema=Person,
                strategy="as_completed_semaphore",
                concurrency=20,
                endpoint=engine.endpoint,
                options=engine.options,
            )
            pool = pool_of(run)
            victim = pool.pids[0]
            async with recording(store, run, meta) as recorder:
                assert recorder is not None
                third = asyncio.Event()
                run.subscribe(lambda _: third.set() if run.finished >= n // 3 else None)
                task = asyncio.create_task(run.execute())
                await asyncio.wait_for(third.wait(), 30)
                assert pool.wire.in_flight > 0
                os.kill(victim, signal.SIGKILL)
                stats = await asyncio.wait_for(task, timeout=60)
            deaths = list(pool.deaths)
        seen = health(server)
        stored = store.load_rows(recorder.run_id)
    assert stats.ok == n and stats.failed == stats.cancelled == 0
    assert len(deaths) == 1 and "SIGKILL" in deaths[0] and str(victim) in deaths[0]
    assert run.retries >= 1  # the dead worker's rows, sent again
    assert not alive(victim)
    assert sorted(r.index for r in stored) == list(range(n))
    assert all(r.status is Status.OK for r in stored)
    assert [r.data for r in stored] == [run.rows[i].data for i in range(n)]
    answered = [r.request_ids[-1] for r in stored]
    assert len(set(answered)) == n  # no answer stored for two rows
    # Every stored answer is a completion the server made; the dead worker's requests
    # made a few more that nobody stored.
    assert n <= seen["counts"]["completions"] <= n + run.retries
    assert sum(r.attempts for r in stored) >= seen["counts"]["completions"]


async def test_stop_cancels_the_rows_at_the_workers_and_the_workers_end() -> None:
    records = records_from_texts(texts(200))
    with LocalServer(ServerConfig(latency=0.2, jitter=0.0)) as server:
        engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
        async with engine:
            async with engine.run(
                records, Person, strategy="as_completed_semaphore", concurrency=10, workers=2
            ) as run:
                pids = pool_of(run).pids
                fifteen = asyncio.Event()
                run.subscribe(lambda _: fifteen.set() if run.ok >= 15 else None)
                task = asyncio.create_task(run.execute())
                await asyncio.wait_for(fifteen.wait(), 30)
                run.stop("cancelled")
                stats = await asyncio.wait_for(task, timeout=10)
                await asyncio.sleep(0.5)
                sent = health(server)["counts"]["completions"]
            assert not any(alive(pid) for pid in pids)
            await asyncio.sleep(0.3)
            assert health(server)["counts"]["completions"] == sent  # nothing sent after
    assert stats.ok >= 15 and stats.cancelled > 0
    assert stats.ok + stats.failed + stats.cancelled == 200
    assert stats.ok + stats.failed <= sent <= stats.ok + stats.failed + 10


def test_cli_workers_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    code = main(["run", "--workers", "2", "--latency", "0", "--no-store", "-q", "--out", str(out)])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and all(r["status"] == "ok" for r in rows)


async def test_a_schema_defined_inside_a_function_is_refused_with_a_reason() -> None:
    class Local(BaseModel):
        name: str

    with LocalServer(ServerConfig(latency=0.0)) as server, pytest.raises(ConfigError, match="top"):
        await run_rows(server, records_from_texts(["x"]), Local, workers=2)


async def test_the_dashboard_follows_a_run_on_workers_and_cancels_it(tmp_path: Path) -> None:
    from textual.widgets import Button

    from core.options import bundled_datasets_dir
    from tests.tui_support import wait_for
    from tui.app import FanoutApp
    from tui.settings import DashboardSettings
    from tui.widgets.runs_table import RunsTable

    store = tmp_path / "runs.sqlite3"
    settings = DashboardSettings(
        dataset=bundled_datasets_dir() / "people_1000.csv",
        strategy="as_completed_semaphore",
        concurrency=4,
        server=ServerConfig(latency=0.1, jitter=0.0),
        store=store,
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
        await pilot.press("5", "r")
        await wait_for(pilot, lambda: "starting 2 worker processes…" in said)
        await wait_for(pilot, lambda: app.feed is not None and app.feed.run.ok >= 20, 60)
        run = app.feed.run if app.feed is not None else None
        assert run is not None
        pids = pool_of(run).pids
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.running, 30)
        stats = app.query_one(RunsTable).history[0][1]
        assert stats.ok >= 20 and stats.cancelled > 0 and stats.ok + stats.cancelled == 1000
        assert app.query_one("#run", Button).disabled is False
        await wait_for(pilot, lambda: not any(alive(pid) for pid in pids), 10)
    with Store(store, create=False) as opened:
        (info,) = opened.list_runs()
    assert (info.status, info.ok, info.cancelled) == ("cancelled", stats.ok, stats.cancelled)


async def test_the_dashboard_says_why_a_run_on_workers_cannot_start() -> None:
    from textual.widgets import Button

    from core.options import bundled_datasets_dir
    from tests.tui_support import wait_for
    from tui.app import FanoutApp
    from tui.settings import DashboardSettings

    class Nearby(BaseModel):  # defined in a function: a worker process cannot import it
        name: str

    settings = DashboardSettings(
        dataset=bundled_datasets_dir() / "people.csv",
        strategy="gather_semaphore",
        server=ServerConfig(latency=0.0),
        workers=2,
    )
    app = FanoutApp(settings, load_dataset(settings.dataset), Nearby)
    said: list[str] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        said.append(message)
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await wait_for(
            pilot, lambda: any("schema defined at a module's top level" in m for m in said)
        )
        await wait_for(pilot, lambda: not app.running)
        assert app.query_one("#run", Button).disabled is False


async def test_budget_is_one_for_all_workers_and_stops_the_run_cleanly() -> None:
    price = price_for("gpt-4o", load_prices())
    assert price is not None
    budget = 20 * price.cost(60, 10)  # roughly twenty requests' worth
    with LocalServer(ServerConfig(latency=0.02, jitter=0.0)) as server:
        endpoint = choose_endpoint(base_url=server.base_url, model="gpt-4o", env={})
        options = ClientOptions(budget_usd=budget)
        async with (
            Engine(endpoint, options=options) as engine,
            engine.run(
                records_from_texts(texts(200)),
                Person,
                strategy="as_completed_semaphore",
                concurrency=4,
                workers=2,
            ) as run,
        ):
            stats = await run.execute()
        sent = health(server)["counts"]["completions"]
    # Two budgets of this size (one per worker) would pay for ~40 rows.
    assert 10 <= stats.ok <= 25
    assert stats.cost_usd <= budget and stats.cost_usd == pytest.approx(
        sum(r.cost_usd for r in run.rows)
    )
    # Nothing sent once the budget was reached: only rows in flight then were cancelled.
    assert stats.ok <= sent <= stats.ok + 4
    assert stats.stopped_reason is not None and "budget" in stats.stopped_reason
    assert stats.ok + stats.failed + stats.cancelled == 200


def test_the_api_key_reaches_the_workers_but_no_output_or_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-test-workers-SECRET-5d1c9a"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    db = tmp_path / "runs.sqlite3"
    out = tmp_path / "out.jsonl"
    with LocalServer(ServerConfig(latency=0.0, api_key=key)) as server:  # 401 without it
        code = main(
            ["run", "--workers", "2", "--base-url", server.base_url, "--store", str(db)]
            + ["--out", str(out)]
        )
        seen = health(server)["counts"]
    assert code == 0 and seen["completions"] == 7 and seen["unauthorized"] == 0
    with Store(db, create=False) as store:
        (info,) = store.list_runs()
    assert info.options["workers"] == 2 and "ray" not in info.options  # where it ran ...
    assert (info.to_dict()["workers"], info.to_dict()["ray"]) == (2, None)  # ... runs --json
    said = capsys.readouterr()
    assert key not in said.out + said.err
    for file in [out, *tmp_path.glob("runs.sqlite3*")]:
        assert key.encode() not in file.read_bytes(), file


def test_resume_makes_the_requests_where_the_run_made_them(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite3"
    assert main(["run", "--workers", "2", "--latency", "0", "--store", str(db), "-q"]) == 0
    with Store(db, create=False) as store:
        (info,) = store.list_runs()
    from core.cli_store import resume_parser, resume_settings

    def settings(*given: str, ray: str | None = None) -> tuple[int, str | None]:
        run = (
            info if ray is None else dataclasses.replace(info, options={**info.options, "ray": ray})
        )
        filled = resume_settings(resume_parser().parse_args([info.id, *given]), run)
        return filled.workers, filled.ray

    assert settings() == (2, None)  # the run's own two worker processes
    assert settings(ray="head:6379") == (2, "head:6379")  # a Ray run goes back to its cluster
    assert settings("--workers", "1", ray="head:6379") == (1, None)  # unless told otherwise
    assert settings("--ray", "local", ray="head:6379") == (2, "local")
