"""``--ray [ADDRESS]``: a run's requests made by Ray actors, on a cluster or a local one.

The same split as ``--workers`` (``core.workers.pool``): the driver keeps the
Run (strategy, events, store, dashboard) and its concurrency; each row is one
call to an extraction actor (``ExtractActor``: its own event loop, client and
instructor handling), the call's result streamed back as it completes. One
``Coordinator`` actor keeps what must be global across actors and nodes: the
rpm / tpm limiter (with ``--rpm`` / ``--tpm``, every attempt of every actor
asks it for its turn) and the run-wide pause after a 429 (an actor told
``retry-after`` tells the coordinator, which tells the other actors and holds
the turns it grants until the pause is over; the row itself waits as long as
it was told).

An actor that dies loses no row: its rows go to another actor, counted as a
retry. Killing the driver ends the run's actors with it (they are not
detached); the rows already stored stay, and ``fanout resume`` sends the rest.

Ray is an optional extra (``pip install 'fanout[ray]'``); this module is the
only one that imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import ray
from pydantic import BaseModel

from core.dataset import Record
from core.errors import ConfigError, EndpointError
from core.extract import Extraction, ExtractionFailed, RateGate, RetryHook
from core.failures import Failure, redact
from core.phases import WireGauge
from core.ratelimit import ClientRateLimit
from core.results import ErrorKind, Phases
from core.workers import placement
from core.workers.budget import RowBudget
from core.workers.child import WorkerConfig, build_extractor
from core.workers.outcome import Message, extract_row, settle

ACTOR_CONCURRENCY = 10_000
"""Calls an async actor runs at once (the driver's strategy is the real limit)."""
MAX_RESTARTS = 0
"""A dead actor stays dead: its rows go to the others (restarting one with its
constructor arguments in the object store is fragile, see ray-project/ray#53727)."""


class Coordinator:
    """The run's global limits, one actor for all extraction actors."""

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.limits = ClientRateLimit(rpm, tpm)
        self.gate = RateGate()
        self.asked = 0
        self.actors: list[Any] = []

    def register(self, actors: list[Any]) -> None:
        """The extraction actors, to pass a 429's pause on to."""
        self.actors = list(actors)

    async def acquire(self, estimate: int) -> int:
        self.asked += 1
        await self.gate.wait()
        if self.limits.active:
            return await self.limits.acquire(estimate)
        return estimate

    def correct(self, charged: int, actual: int) -> None:
        self.limits.correct(charged, actual)

    def pause(self, seconds: float, source: int = -1) -> None:
        self.gate.pause(seconds)
        for number, actor in enumerate(self.actors):
            if number != source:
                actor.pause_here.remote(seconds)

    def stats(self) -> dict[str, Any]:
        return {"asked": self.asked, "pauses": self.gate.pauses}


class CoordinatedLimit(ClientRateLimit):
    """An actor's limiter: the coordinator's turn for every attempt."""

    def __init__(self, coordinator: Any) -> None:
        super().__init__()
        self._coordinator = coordinator

    @property
    def active(self) -> bool:
        return True

    async def acquire(self, estimated_tokens: int) -> int:
        charged: int = await self._coordinator.acquire.remote(estimated_tokens)
        return charged

    def correct(self, charged_tokens: int, actual_tokens: int) -> None:
        self._coordinator.correct.remote(charged_tokens, actual_tokens)


class CoordinatedGate(RateGate):
    """A 429's pause, told to the coordinator (which tells every other actor, and holds
    every turn it grants until the pause is over)."""

    def __init__(self, coordinator: Any, number: int) -> None:
        super().__init__()
        self._coordinator = coordinator
        self._number = number

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        self._coordinator.pause.remote(seconds, self._number)

    def pause_here(self, seconds: float) -> None:
        super().pause(seconds)


class ExtractActor:
    """Extracts rows sent by the driver, one call a row."""

    def __init__(self, config: WorkerConfig, coordinator: Any, number: int) -> None:
        self.config = config
        self.coordinator = coordinator
        self.number = number
        """Its place in the coordinator's list."""
        self.extractor: Any = None

    async def ready(self) -> int:
        from core.client import prime_client

        extractor = build_extractor(self.config)
        options = self.config.options
        if options.rpm or options.tpm:
            extractor.limits = CoordinatedLimit(self.coordinator)
        extractor.gate = CoordinatedGate(self.coordinator, self.number)
        await prime_client(extractor.client)
        self.extractor = extractor
        return os.getpid()

    async def extract(self, index: int, text: str) -> tuple[Message, list[Any]]:
        """The row's outcome and its retries (attempt, delay, failure), in order."""
        if self.extractor is None:
            await self.ready()
        retries: list[Any] = []

        def on_retry(attempt: int, delay: float, failure: Failure) -> None:
            retries.append((attempt, delay, failure))

        message = await extract_row(self.extractor, index, text, on_retry)
        return message, retries

    def pause_here(self, seconds: float) -> None:
        """Another actor was told to wait (a 429): this one waits too."""
        if self.extractor is not None:
            self.extractor.gate.pause_here(seconds)


@dataclass(eq=False)
class Actor:
    number: int
    handle: Any
    rows: set[int] = field(default_factory=set)
    alive: bool = True
    pid: int | None = None


class RayPool:
    """``await pool(record, on_retry, phases)`` -> Extraction, made by a Ray actor."""

    def __init__(
        self,
        count: int,
        config: WorkerConfig,
        *,
        schema: type[BaseModel],
        address: str,
        keep_values: bool = False,
        budget: RowBudget | None = None,
    ) -> None:
        if count < 1:
            raise ConfigError(f"--workers must be at least 1, got {count}")
        self.count = count
        self.config = config
        self.schema = schema
        self.address = address
        self.keep_values = keep_values
        self.budget = budget
        self.wire = WireGauge()
        """Rows at the actors (sent to one, no result back yet)."""
        self.actors: list[Actor] = []
        self.coordinator: Any = None
        self.deaths: list[str] = []
        self._started_ray = False
        self._numbers = itertools.count(1)

    async def start(self) -> None:
        if not ray.is_initialized():
            await asyncio.to_thread(self._init)
            self._started_ray = True
        options = self.config.options
        remote: Any = ray.remote  # its typed overloads know no actor options
        coordinator_cls = remote(num_cpus=0, max_concurrency=ACTOR_CONCURRENCY)(Coordinator)
        self.coordinator = coordinator_cls.remote(options.rpm, options.tpm)
        actor_cls = remote(
            num_cpus=0,
            max_concurrency=ACTOR_CONCURRENCY,
            max_restarts=MAX_RESTARTS,
        )(ExtractActor)
        places = await asyncio.to_thread(placement.strategies, self.count)
        for number, place in enumerate(places):
            handle = actor_cls.options(scheduling_strategy=place).remote(
                self.config, self.coordinator, number
            )
            self.actors.append(Actor(next(self._numbers), handle))
        self.coordinator.register.remote([a.handle for a in self.actors])
        try:
            pids = await asyncio.gather(*(a.handle.ready.remote() for a in self.actors))
        except Exception as exc:
            await self.close()
            said = redact(_one_line(exc), self.config.endpoint.secrets)
            raise EndpointError(f"a Ray actor did not start: {said}") from None
        for actor, pid in zip(self.actors, pids, strict=True):
            actor.pid = pid

    def _init(self) -> None:
        address = None if self.address in ("", "local") else self.address
        # Ray hands its processes this process's stdout/stderr; a dashboard has replaced
        # them with objects that have no file descriptor, and its screen must stay clean.
        saved = sys.stdout, sys.stderr
        try:
            with open(os.devnull, "w") as null:
                sys.stdout = sys.stderr = null
                try:
                    ray.init(
                        address=address or "local",
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                    )
                finally:
                    sys.stdout, sys.stderr = saved
        except Exception as exc:
            where = address or "a local Ray instance"
            raise EndpointError(f"cannot start Ray on {where}: {_one_line(exc)}") from None

    async def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(actor.handle)
        if self.coordinator is not None:
            with contextlib.suppress(Exception):
                ray.kill(self.coordinator)
        if self._started_ray:
            self._started_ray = False
            await asyncio.to_thread(ray.shutdown)

    async def __aenter__(self) -> RayPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the actors (on their nodes)."""
        return [a.pid for a in self.actors if a.alive and a.pid is not None]

    async def __call__(
        self, record: Record, on_retry: RetryHook | None = None, phases: Phases | None = None
    ) -> Extraction:
        loop = asyncio.get_running_loop()
        lost = 0
        reserved = self.budget.reserve(record) if self.budget is not None else 0.0
        cost = 0.0
        self.wire.sent()
        try:
            while True:
                actor = self._choose()
                if actor is None:
                    said = "; ".join(self.deaths[-3:]) or "none started"
                    failure = Failure(
                        ErrorKind.OTHER, f"no Ray actor left to send the row to ({said})"
                    )
                    raise ExtractionFailed(failure, lost, 0, 0)
                actor.rows.add(record.index)
                ref = actor.handle.extract.remote(record.index, record.text)
                try:
                    message, retries = await ref
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref)
                    raise
                except ray.exceptions.ActorDiedError as exc:
                    actor.alive = False
                    said = redact(_one_line(exc), self.config.endpoint.secrets)
                    self.deaths.append(f"Ray actor {actor.number} died: {said}")
                except ray.exceptions.RayActorError as exc:  # restarting: try another
                    said = redact(_one_line(exc), self.config.endpoint.secrets)
                    self.deaths.append(f"Ray actor {actor.number} failed: {said}")
                    await asyncio.sleep(0.1)
                else:
                    cost = message[7]
                    for attempt, delay, failure in retries:
                        if on_retry is not None:
                            on_retry(attempt + lost, delay, failure)
                    future: asyncio.Future[Extraction] = loop.create_future()
                    settle(
                        future,
                        message,
                        lost=lost,
                        phases=phases,
                        schema=self.schema,
                        keep_values=self.keep_values,
                    )
                    return future.result()
                finally:
                    actor.rows.discard(record.index)
                lost += 1
                if on_retry is not None:
                    gone = Failure(ErrorKind.OTHER, f"{self.deaths[-1]}; the row goes to another")
                    on_retry(lost, 0.0, gone)
        finally:
            if self.budget is not None:
                self.budget.settle(reserved, cost)
            self.wire.answered()

    def _choose(self) -> Actor | None:
        alive = [a for a in self.actors if a.alive]
        return min(alive, key=lambda a: len(a.rows)) if alive else None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
