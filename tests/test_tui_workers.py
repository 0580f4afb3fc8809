"""Workers in the dashboard: the palette's "Workers: N" (and "Ray actors: N") chooses where
the next runs make their requests, the header says so at every size, and a choice the
strategy cannot have is refused with ``check_workers``'s own message.

The runs are real: the bundled people.csv, the built-in simulator over HTTP, worker
processes started from this interpreter (``core.workers.pool``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
from textual.pilot import Pilot

from core.client import choose_endpoint
from core.dataset import load_dataset
from core.localserver import ServerConfig
from core.models import Person
from core.options import bundled_datasets_dir
from core.workers.pool import WorkerPool
from tests.test_workers import alive
from tests.tui_support import wait_for
from tui.app import FanoutApp
from tui.commands import scale_out_commands, usable_cores
from tui.settings import DashboardSettings, ScaleOut
from tui.widgets.header import DatasetBar, HeaderInfo, header_text
from tui.widgets.runs_table import RunsTable


def make_app(
    strategy: str = "gather_semaphore",
    latency: float = 0.2,
    dataset: str = "people.csv",
    **scale: Any,
) -> tuple[FanoutApp, list[str]]:
    """The dashboard on a bundled dataset and the local simulator, and the messages it shows."""
    settings = DashboardSettings(
        dataset=bundled_datasets_dir() / dataset,
        strategy=strategy,
        concurrency=2,
        endpoint=choose_endpoint(local=True),
        server=ServerConfig(latency=latency, jitter=0.0),
        store=None,
        **scale,
    )
    app = FanoutApp(settings, load_dataset(settings.dataset), Person)
    said: list[str] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        said.append(message)
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return app, said


def header(app: FanoutApp) -> str:
    """The header as drawn, at the width it has."""
    bar = app.query_one(DatasetBar)
    return "".join(strip.text for strip in bar.render_lines(bar.region.reset_offset))


async def palette(pilot: Pilot[int], query: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause(0.3)
    await pilot.press(*query)
    await pilot.pause(0.5)
    await pilot.press("enter")


async def test_workers_2_from_the_palette_runs_on_two_processes_and_the_header_says_so() -> None:
    app, said = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert "workers" not in header(app)  # one process: nothing to say
        await palette(pilot, "Workers: 2")
        await wait_for(pilot, lambda: app.settings.workers == 2)
        assert any("from the next run: 2 worker processes" in m for m in said)
        assert "workers 2" in header(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.feed is not None and app.feed.run.ok >= 1, 60)
        assert app.feed is not None
        pool = getattr(app.feed.run, "pool", None)
        assert isinstance(pool, WorkerPool)
        pids = pool.pids
        assert len(pids) == 2 and os.getpid() not in pids
        assert all(alive(pid) for pid in pids)
        held: set[int] = set()  # which workers were given rows while the run went

        def done() -> bool:
            held.update(w.number for w in pool.workers if w.jobs)
            return not app.running

        await wait_for(pilot, done, 60)
        assert held == {1, 2}
        stats = app.query_one(RunsTable).history[0][1]
        assert (stats.ok, stats.failed) == (len(app.dataset), 0)
        text = header(app)
        assert "workers 2" in text and "Person" in text and "mode tools" in text
        await wait_for(pilot, lambda: not any(alive(pid) for pid in pids), 10)


async def test_ray_actors_from_the_palette_run_on_a_local_ray_instance() -> None:
    from core.workers.ray_pool import RayPool  # Ray is in the test extras

    app, said = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await palette(pilot, "Ray actors: 2 on a local instance")
        await wait_for(pilot, lambda: app.settings.scale == ScaleOut(2, "local"), 60)
        assert "ray 2 @ local" in header(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.feed is not None and app.feed.run.ok >= 1, 120)
        assert app.feed is not None
        pool = getattr(app.feed.run, "pool", None)
        assert isinstance(pool, RayPool) and len(pool.actors) == 2
        pids = [actor.pid for actor in pool.actors]
        assert os.getpid() not in pids and all(alive(pid) for pid in pids)
        await wait_for(pilot, lambda: not app.running, 120)
        stats = app.query_one(RunsTable).history[0][1]
        assert (stats.ok, stats.failed) == (len(app.dataset), 0)
        assert "ray 2 @ local" in header(app)
        assert "starting 2 Ray actor(s) on a local Ray instance…" in said


async def test_a_change_during_a_run_waits_for_the_next_run() -> None:
    # a for loop over 1,000 rows at 0.5 s: it is still going when the palette has acted
    app, said = make_app(strategy="sequential", latency=0.5, dataset="people_1000.csv")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.feed is not None and app.feed.run.ok >= 1, 30)
        await palette(pilot, "Workers: 2")
        await wait_for(pilot, lambda: app.settings.workers == 2)
        assert app.running
        message = next(m for m in said if m.startswith("from the next run"))
        assert "the run in flight keeps the dashboard's own process" in message
        assert app.feed is not None and getattr(app.feed.run, "pool", None) is None
        assert "workers" not in header(app)  # the run in flight is the one on screen
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.running, 30)
        assert "workers 2" in header(app)


async def test_a_refused_choice_says_why_once_and_keeps_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, said = make_app(latency=0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.run_action("set_workers(0)")
        await wait_for(pilot, lambda: any("at least 1" in m for m in said))
        assert app.settings.scale == ScaleOut()
        monkeypatch.setitem(sys.modules, "ray", None)  # as on a machine without Ray
        before = len(said)
        await app.run_action("set_workers(2, 'local')")  # the palette's "Ray actors: 2"
        await wait_for(pilot, lambda: len(said) > before)
        await pilot.pause(0.3)
        reason = "--ray needs Ray installed: pip install 'fanout[ray]'"
        assert said[before:] == [f"{reason} (still the dashboard's own process)"]
        assert app.settings.scale == ScaleOut()
        assert "workers" not in header(app) and "ray" not in header(app)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux affinity")
def test_the_palette_offers_one_more_worker_than_usable_cores_and_ray_if_installed() -> None:
    assert usable_cores() == len(os.sched_getaffinity(0))
    names = [c.name for c in scale_out_commands(2, True, ScaleOut(2))]
    assert names == [
        "Workers: 1",
        "Workers: 2",
        "Workers: 3",
        "Ray actors: 1 on a local instance",
        "Ray actors: 2 on a local instance",
        "Ray actors: 3 on a local instance",
    ]
    marked = [c.name for c in scale_out_commands(2, True, ScaleOut(2)) if "now" in c.help]
    assert marked == ["Workers: 2"]
    cluster = ScaleOut(4, "ray://head:10001")  # from the command line: offered again
    (last,) = list(scale_out_commands(1, True, ScaleOut(), cluster))[-1:]
    assert last.name == "Ray actors: 4 on ray://head:10001"
    assert last.action == "set_workers(4, 'ray://head:10001')"
    assert [c.name for c in scale_out_commands(1, False, ScaleOut(), cluster)] == [
        "Workers: 1",
        "Workers: 2",
    ]


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (160, 48)])
async def test_the_command_lines_ray_cluster_is_in_the_header_at_every_size(
    size: tuple[int, int],
) -> None:
    app, _ = make_app(latency=0.0, workers=4, ray="head-node:6379")
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.3)
        text = header(app)
        assert "ray 4 @ head-node:6379" in text and "Person" in text and "mode tools" in text
        assert "people.csv" in text  # at 80 columns too: minor pieces go first, nothing is cut


INFO = HeaderInfo(
    dataset="people.csv",
    rows=7,
    endpoint="local simulator on 127.0.0.1:8765",
    simulated=True,
    model="fanout-sim",
    schema="Person",
    mode="tools",
)


@pytest.mark.parametrize(
    ("workers", "ray", "shown"),
    [
        (2, None, "workers 2"),
        (2, "local", "ray 2 @ local"),
        (4, "host:6379", "ray 4 @ host:6379"),
        (12_345, None, "workers 12.3k"),
    ],
)
@pytest.mark.parametrize("width", range(60, 200, 7))
def test_the_header_says_where_requests_are_made_and_fits(
    workers: int, ray: str | None, shown: str, width: int
) -> None:
    info = HeaderInfo(**{**INFO.__dict__, "workers": workers, "ray": ray})
    text = header_text(info, width).plain
    assert len(text) <= width
    assert shown in text and "Person" in text and "mode tools" in text


def test_a_long_ray_address_is_shortened_in_its_middle_at_80_columns() -> None:
    address = "ray://head-node.cluster.example.org:10001"
    info = HeaderInfo(**{**INFO.__dict__, "workers": 32, "ray": address})
    text = header_text(info, 80).plain
    assert len(text) <= 80 and "people.csv" in text
    assert "ray 32 @ ray://hea" in text and "…" in text and text.endswith(":10001")
    assert f"ray 32 @ {address}" in header_text(info, 200).plain
