"""A deterministic engine for dashboard snapshots: virtual time, scripted latencies.

Pilot tests of behaviour use the real engine (real client, real HTTP, the
local simulator). Snapshots need the same pixels on every run, so they use
this engine: every row has a fixed *virtual* latency, the run's clock
reads virtual time, and a scheduler releases one finish at a time in
virtual-time order, so the same keys give the same screen every time.
(as_completed under a semaphore starts its requests from a set, in an order
that changes from run to run, so snapshots avoid it.)
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import BaseModel
from textual.pilot import Pilot

from core.client import Endpoint
from core.dataset import Record, load_dataset
from core.engine import ClientOptions
from core.extract import Extraction, ExtractionFailed, RetryHook
from core.failures import Failure
from core.models import Person
from core.options import bundled_datasets_dir
from core.results import ErrorKind, Phases
from core.runner import Run
from tui.app import FanoutApp
from tui.settings import DashboardSettings

STEP_SECONDS = 0.01
"""Real time between two virtual events: ample for the app to react to each."""


class VirtualClock:
    """Virtual time that moves only when the scheduler releases the next finish."""

    def __init__(self) -> None:
        self.now = 100.0
        self._pending: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._driver: asyncio.Task[None] | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of virtual time; events fire in (time, arrival) order."""
        future = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._pending, (self.now + seconds, self._seq, future))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        await future

    async def _drive(self) -> None:
        while self._pending:
            await asyncio.sleep(STEP_SECONDS)
            at, _, future = heapq.heappop(self._pending)
            self.now = max(self.now, at)
            if not future.done():
                future.set_result(None)


class ScriptedExtract:
    """Answers like the simulator would, after a fixed virtual latency per row."""

    def __init__(self, clock: VirtualClock, latencies: Sequence[float]) -> None:
        self.clock = clock
        self.latencies = list(latencies)
        self.hold_from: int | None = None
        self.release = asyncio.Event()
        self.fail: set[int] = set()
        """Rows (by index) that fail with a server error after their latency."""

    async def __call__(
        self, record: Record, on_retry: RetryHook | None = None, phases: Phases | None = None
    ) -> Extraction:
        latency = self.latencies[record.index % len(self.latencies)]
        if self.hold_from is not None and record.index >= self.hold_from:
            await self.release.wait()
        await self.clock.sleep(latency)
        if record.index in self.fail:
            raise ExtractionFailed(Failure(ErrorKind.SERVER, "HTTP 503 server error"), 1, 0, 0)
        words = record.text.split()
        person = Person(name=words[3], age=int(words[7]))
        return Extraction(person, attempts=1, prompt_tokens=40, completion_tokens=9)


class ScriptedEngine:
    def __init__(self, latencies: Sequence[float]) -> None:
        self.latencies = latencies
        self.extracts: list[ScriptedExtract] = []
        self.hold_from: int | None = None
        self.fail: set[int] = set()
        self._endpoint = Endpoint("local", "http://127.0.0.1:8765/v1", "fanout-sim")
        self.options = ClientOptions()

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for extract in self.extracts:
            extract.release.set()

    async def preflight(self, schema: type[BaseModel] | None = None) -> list[str]:
        return []

    @asynccontextmanager
    async def run(
        self,
        records: Sequence[Record],
        schema: type[BaseModel],
        *,
        strategy: str,
        concurrency: int,
        max_error_rate: float | None = None,
    ) -> AsyncIterator[Run]:
        clock = VirtualClock()
        extract = ScriptedExtract(clock, self.latencies)
        extract.hold_from = self.hold_from
        extract.fail = self.fail
        self.extracts.append(extract)
        yield Run(records, extract, strategy=strategy, concurrency=concurrency, clock=clock)


def people_dataset_path() -> Path:
    return bundled_datasets_dir() / "people.csv"


def scripted_app(
    latencies: Sequence[float] = (0.8, 0.6, 0.9, 0.7, 0.85, 0.65, 0.75),
    *,
    hold_from: int | None = None,
    strategy: str = "gather_semaphore",
    concurrency: int = 2,
    store: Path | None = None,
) -> tuple[FanoutApp, ScriptedEngine]:
    engine = ScriptedEngine(latencies)
    engine.hold_from = hold_from
    settings = DashboardSettings(
        dataset=people_dataset_path(), strategy=strategy, concurrency=concurrency, store=store
    )
    dataset = load_dataset(settings.dataset)
    app = FanoutApp(settings, dataset, Person, engine_factory=lambda _settings: engine)
    return app, engine


async def wait_for(pilot: Pilot[int], condition: Callable[[], bool], timeout: float = 20) -> None:
    """Let the app run until ``condition`` holds (a guard against a hang, not a timing claim)."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            await pilot.pause()
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")
