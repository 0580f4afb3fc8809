"""FairShare: steps behind the checkpoint are spread over short loop passes, in order."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core.client import choose_endpoint
from core.dataset import Record
from core.engine import Engine
from core.fairshare import DEFAULT_BUDGET_S, FairShare
from core.localserver import ServerConfig
from core.models import Person
from tui.app import PASS_BUDGET_S, default_engine
from tui.settings import DashboardSettings


def busy(seconds: float) -> None:
    """CPU work that holds the loop, like parsing and validating an answer."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class PassCounter:
    """Counts event-loop passes: a callback that re-schedules itself once per pass."""

    def __init__(self) -> None:
        self.passes = 0
        self._handle: asyncio.Handle | None = None

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.passes += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


async def test_quick_steps_pass_without_waiting() -> None:
    fair = FairShare(budget=0.05)
    for _ in range(100):
        await fair.checkpoint()
    assert fair.deferred == 0


async def test_steps_over_budget_are_spread_over_passes_in_arrival_order() -> None:
    fair = FairShare(budget=0.004)
    order: list[int] = []
    passes = PassCounter()
    passes.start()
    pass_of: list[int] = []

    async def step(i: int) -> None:
        await fair.checkpoint()
        order.append(i)
        pass_of.append(passes.passes)
        busy(0.001)

    await asyncio.gather(*(step(i) for i in range(60)))
    passes.stop()
    assert order == list(range(60))  # first come, first served
    assert fair.deferred > 0
    per_pass: dict[int, int] = {}
    for p in pass_of:
        per_pass[p] = per_pass.get(p, 0) + 1
    assert len(per_pass) >= 60 * 0.001 / 0.004 / 2  # the 60 ms of work took many passes
    # No pass ran much more than its budget's worth of steps (4 ms of 1 ms steps,
    # plus the step that crossed the line, and timer slack on a busy machine).
    assert max(per_pass.values()) <= 8


async def test_a_long_queue_does_not_wake_everyone_every_pass() -> None:
    """10,000 requests started at once must not cost a 10,000-task pass each time."""
    fair = FairShare(budget=0.002)
    n = 3000

    async def step() -> None:
        await fair.checkpoint()
        busy(0.0002)

    await asyncio.gather(*(step() for _ in range(n)))
    assert fair.deferred > n / 2
    # Each waiter is woken about once (a few wake into a full pass and wait again);
    # waking the whole queue each pass would be on the order of n * passes.
    assert fair.wakeups < 2 * n


async def test_a_cancelled_waiter_does_not_hold_up_the_queue() -> None:
    fair = FairShare(budget=0.001)
    done: list[int] = []

    async def step(i: int) -> None:
        await fair.checkpoint()
        busy(0.002)
        done.append(i)

    tasks = [asyncio.create_task(step(i)) for i in range(10)]
    await asyncio.sleep(0)  # all reach the checkpoint; most are queued
    assert fair.waiting > 0
    tasks[5].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[5], asyncio.CancelledError)
    assert sorted(done) == [i for i in range(10) if i != 5]
    assert fair.waiting == 0


@pytest.mark.parametrize("budget", [0.0, 0.001])
async def test_other_callbacks_get_turns_between_batches(budget: float) -> None:
    """The point of it all: a timer (a key press, a frame) is not held up by the queue."""
    fair = FairShare(budget=budget)
    steps_done = 0
    seen_mid_run: list[int] = []

    async def step() -> None:
        nonlocal steps_done
        await fair.checkpoint()
        busy(0.0005)
        steps_done += 1

    async def probe() -> None:
        while steps_done < 200:
            seen_mid_run.append(steps_done)
            await asyncio.sleep(0.001)

    prober = asyncio.create_task(probe())
    await asyncio.gather(*(step() for _ in range(200)))
    await prober
    assert any(0 < s < 200 for s in seen_mid_run)


async def test_the_dashboard_gives_runs_a_smaller_share_of_each_pass_than_the_cli() -> None:
    """``fanout run`` keeps the default; the dashboard halves it for input and frames."""
    choice = choose_endpoint("http://127.0.0.1:9/v1", env={})
    shares = []
    for engine in (
        Engine(choice),
        default_engine(DashboardSettings(Path("x.csv"), endpoint=choice)),
    ):
        assert isinstance(engine, Engine)
        async with engine:  # a URL endpoint: nothing is contacted
            extractor = engine.extractor(Person, connections=1)
            shares.append(extractor.fair.budget)
            await extractor.client.close()
    assert shares == [DEFAULT_BUDGET_S, PASS_BUDGET_S]
    assert PASS_BUDGET_S < DEFAULT_BUDGET_S


class CountingPacer(FairShare):
    made: list[CountingPacer] = []

    def __init__(self, budget: float) -> None:
        super().__init__(budget)
        self.calls = 0
        CountingPacer.made.append(self)

    async def checkpoint(self) -> None:
        self.calls += 1
        await super().checkpoint()


async def test_a_row_also_waits_its_turn_when_its_answer_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three turns per request: before sending, when the answer's headers are in (the
    SDK then reads and wraps the body: half of a response's cost, once left unpaced),
    and before parsing and validating. The extractor and its client share one FairShare."""
    monkeypatch.setattr("core.engine.FairShare", CountingPacer)
    CountingPacer.made.clear()
    engine = Engine(choose_endpoint(local=True), server=ServerConfig(latency=0.0, jitter=0.0))
    async with engine:
        extractor = engine.extractor(Person, connections=2)
        (pacer,) = CountingPacer.made
        assert extractor.fair is pacer
        try:
            texts = ["My name is Ann and I am 30 years old", "My name is Bo and I am 41 years old"]
            done = await asyncio.gather(
                *(extractor(Record(i, str(i), text)) for i, text in enumerate(texts))
            )
        finally:
            await extractor.client.close()
    assert [d.value.model_dump() for d in done] == [
        {"name": "Ann", "age": 30},
        {"name": "Bo", "age": 41},
    ]
    assert pacer.calls == 3 * len(texts)
