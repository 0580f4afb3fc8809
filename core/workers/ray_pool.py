"""``--ray [ADDRESS]``: a run's requests made by Ray actors, on a cluster or a local one.

The same split as ``--workers`` (``core.workers.pool``): the driver keeps the
Run (strategy, events, store, dashboard) and its concurrency; the extraction
actors (``ExtractActor``: each its own event loop, client and instructor
handling) make the requests. Both directions are batched per pass of an event
loop, not per row, because a Ray call costs the driver about a millisecond:

- **rows out**: a row goes to an actor only once the run's strategy let it
  start; the rows started in one pass of the driver's loop go to each actor as
  one ``submit`` call (a micro-batch);
- **what happens back**: each actor has one long-lived streaming generator
  (``events``, opened when it starts) that yields, per pass of the actor's
  loop, every message gathered meanwhile: each retry as it happens (the
  dashboard's ``RowRetrying`` events and retry count are live) and each row's
  result as it completes; with ``--strategy adaptive`` also each request and
  answer of its rows (``core.workers.relay``), for the driver's one controller.

One ``Coordinator`` actor keeps what must be global across actors and nodes:
the rpm / tpm limiter (with ``--rpm`` / ``--tpm``, every attempt of every actor
asks it for its turn) and the run-wide pause after a 429 (an actor told
``retry-after`` tells the coordinator, which tells the other actors and holds
the turns it grants until the pause is over; the row itself waits as long as
it was told).

An actor that dies loses no row: its stream (or a call to it) fails, and the
rows it held go to another actor, each counted as a retry. Killing the driver
ends the run's actors with it (they are not detached); the rows already stored
stay, and ``fanout resume`` sends the rest.

Ray is an optional extra (``pip install 'fanout[ray]'``); this module is the
only one that imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from pydantic import BaseModel

from core.dataset import Record
from core.errors import ConfigError, EndpointError
from core.extract import Extraction, ExtractionFailed, RateGate, RetryHook
from core.failures import Failure, redact
from core.gctune import RUN_THRESHOLDS
from core.phases import WireGauge
from core.ratelimit import ClientRateLimit
from core.results import ErrorKind, Phases
from core.signals import RelayedListener, listen, relayed_listeners
from core.workers import placement
from core.workers import protocol as p
from core.workers.budget import RowBudget
from core.workers.child import WorkerConfig, build_extractor
from core.workers.outcome import Message, extract_row, settle_or_fail
from core.workers.relay import Relay, replay

ACTOR_CONCURRENCY = 10_000
"""Calls an async actor runs at once (the driver's strategy is the real limit)."""
MAX_RESTARTS = 0
"""A dead actor stays dead: its rows go to the others (restarting one with its
constructor arguments in the object store is fragile, see ray-project/ray#53727)."""
CLOSE_WAIT = 2.0
"""Seconds ``close`` waits for the answers of calls still out (their actors were killed)."""


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
    """Extracts the rows the driver submits; streams back what happens to each."""

    def __init__(self, config: WorkerConfig, coordinator: Any, number: int) -> None:
        self.config = config
        self.coordinator = coordinator
        self.number = number
        """Its place in the coordinator's list."""
        self.extractor: Any = None
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.dropped: set[int] = set()
        """Rows cancelled before their submit ran (Ray does not promise that an async
        actor runs one caller's calls in the order they were made)."""
        self.outbox: list[Message] = []
        self.gathered = asyncio.Event()
        """Set when the outbox has messages for the stream."""

    async def ready(self) -> int:
        from core.client import prime_client

        extractor = build_extractor(self.config)
        options = self.config.options
        if options.rpm or options.tpm:
            extractor.limits = CoordinatedLimit(self.coordinator)
        extractor.gate = CoordinatedGate(self.coordinator, self.number)
        await prime_client(extractor.client)
        self.extractor = extractor
        # The process is this run's alone and ends with it: the collector settings a
        # worker process keeps for its whole life (see core.gctune), ~15 % of its CPU.
        gc.freeze()
        gc.set_threshold(*RUN_THRESHOLDS)
        return os.getpid()

    async def submit(self, rows: list[tuple[int, str]]) -> None:
        """Start these rows (index, text); their messages go out on the stream."""
        for index, text in rows:
            if index in self.dropped:
                self.dropped.discard(index)
            else:
                self.tasks[index] = asyncio.create_task(self._work(index, text))

    async def cancel(self, indices: list[int]) -> None:
        """The run no longer wants these rows: their requests stop, nothing is sent back."""
        for index in indices:
            task = self.tasks.pop(index, None)
            if task is not None:
                task.cancel()
            else:
                self.dropped.add(index)

    async def events(self) -> AsyncIterator[list[Message]]:
        """The run's stream: every message gathered since the last item (``RETRY``, ``OK``,
        ``FAIL``; ``SENT``, ``ANSWER`` with adaptive), in the order they happened (a row's
        retries before its result)."""
        while True:
            await self.gathered.wait()
            self.gathered.clear()
            messages, self.outbox = self.outbox, []
            if messages:
                yield messages

    def pause_here(self, seconds: float) -> None:
        """Another actor was told to wait (a 429): this one waits too."""
        if self.extractor is not None:
            self.extractor.gate.pause_here(seconds)

    async def _work(self, index: int, text: str) -> None:
        def on_retry(attempt: int, delay: float, failure: Failure) -> None:
            self.put((p.RETRY, index, attempt, delay, failure))

        if self.config.relay:  # adaptive: this task's requests tell the driver's controller
            listen(Relay(self, index))
        try:
            self.put(await extract_row(self.extractor, index, text, on_retry))
        except asyncio.CancelledError:
            return  # the driver cancelled it and expects nothing
        finally:
            self.tasks.pop(index, None)

    def put(self, message: Message) -> None:
        """A message for the stream (this makes the actor a ``relay.Sink`` too)."""
        self.outbox.append(message)
        self.gathered.set()


@dataclass(eq=False)
class Job:
    record: Record
    on_retry: RetryHook | None
    phases: Phases | None
    future: asyncio.Future[Extraction]
    actor: Actor | None = None
    sent: bool = False
    """Submitted to its actor (not only waiting for the end of the loop's pass)."""
    lost: int = 0
    """Times an actor died holding this row."""
    cancelled: bool = False
    cost_usd: float = 0.0
    """What the row cost, as its actor said (all its attempts)."""
    listeners: tuple[RelayedListener, ...] = ()
    """Who in the row's task follows its requests (the adaptive slot), told what its actor
    relays (``core.workers.relay``)."""


@dataclass(eq=False)
class Actor:
    number: int
    handle: Any
    jobs: set[int] = field(default_factory=set)
    """Rows given to it, sent or about to be, with no result back yet."""
    alive: bool = True
    pid: int | None = None
    rows: list[Job] = field(default_factory=list)
    """Rows to submit at the end of this pass of the driver's loop."""
    cancels: list[int] = field(default_factory=list)
    """Rows to cancel at the end of this pass."""
    flushing: bool = False
    reader: asyncio.Task[None] | None = None


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
        self.calls = 0
        """Ray calls the driver made to the actors for rows (submits and cancels)."""
        self.items = 0
        """Items the actors' streams brought back (each a pass's messages)."""
        self._jobs: dict[int, Job] = {}
        self._calls: set[asyncio.Future[None]] = set()
        """Submit and cancel calls not answered yet (each answer comes from Ray's thread)."""
        self._closing = False
        self._started_ray = False
        self._numbers = itertools.count(1)

    # -- life --------------------------------------------------------------

    async def start(self) -> None:
        if not ray.is_initialized():
            await asyncio.to_thread(self._init)
            self._started_ray = True
        options = self.config.options
        remote: Any = ray.remote  # its typed overloads know no actor options
        coordinator_cls = remote(num_cpus=0, max_concurrency=ACTOR_CONCURRENCY)(Coordinator)
        self.coordinator = coordinator_cls.remote(options.rpm, options.tpm)
        actor_cls = remote(max_concurrency=ACTOR_CONCURRENCY, max_restarts=MAX_RESTARTS)(
            ExtractActor
        )
        nodes = await asyncio.to_thread(placement.cluster_nodes)
        for number, asked in enumerate(placement.actor_options(self.count, nodes)):
            handle = actor_cls.options(**asked).remote(self.config, self.coordinator, number)
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
            stream = actor.handle.events.options(num_returns="streaming").remote()
            actor.reader = asyncio.create_task(self._read(actor, stream))

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
        self._closing = True
        readers = [a.reader for a in self.actors if a.reader is not None]
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for actor in self.actors:
            actor.alive = False
            with contextlib.suppress(Exception):
                ray.kill(actor.handle)
        if self.coordinator is not None:
            with contextlib.suppress(Exception):
                ray.kill(self.coordinator)
        if self._calls:  # their actors are gone: answered at once, while the loop still runs
            await asyncio.wait(list(self._calls), timeout=CLOSE_WAIT)
        for job in list(self._jobs.values()):
            if not job.future.done():
                job.future.set_exception(self._all_gone(job))
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

    # -- rows --------------------------------------------------------------

    async def __call__(
        self, record: Record, on_retry: RetryHook | None = None, phases: Phases | None = None
    ) -> Extraction:
        reserved = self.budget.reserve(record) if self.budget is not None else 0.0
        future: asyncio.Future[Extraction] = asyncio.get_running_loop().create_future()
        job = Job(record, on_retry, phases, future)
        if self.config.relay:
            job.listeners = relayed_listeners()
        self._jobs[record.index] = job
        self.wire.sent()
        self._assign(job)
        try:
            return await future
        except asyncio.CancelledError:
            job.cancelled = True
            actor = job.actor
            if actor is not None and actor.alive and job.sent:
                actor.cancels.append(record.index)
                self._flush_later(actor)
            raise
        finally:
            if self.budget is not None:
                self.budget.settle(reserved, job.cost_usd)
            self.wire.answered()
            self._jobs.pop(record.index, None)
            if job.actor is not None:
                job.actor.jobs.discard(record.index)

    def _assign(self, job: Job) -> None:
        alive = [a for a in self.actors if a.alive]
        if not alive or self._closing:
            job.future.set_exception(self._all_gone(job))
            return
        actor = min(alive, key=lambda a: len(a.jobs))
        job.actor = actor
        job.sent = False
        actor.jobs.add(job.record.index)
        actor.rows.append(job)
        self._flush_later(actor)

    def _flush_later(self, actor: Actor) -> None:
        if not actor.flushing:
            actor.flushing = True
            asyncio.get_running_loop().call_soon(self._flush, actor)

    def _flush(self, actor: Actor) -> None:
        """One ``submit`` and one ``cancel`` call at most per actor and pass of the loop."""
        actor.flushing = False
        jobs, actor.rows = actor.rows, []
        cancels, actor.cancels = actor.cancels, []
        if not actor.alive:
            return  # its rows went to another when it was found dead
        rows = []
        for job in jobs:
            if job.actor is actor and not job.cancelled and not job.future.done():
                job.sent = True
                rows.append((job.record.index, job.record.text))
        calls = []
        if rows:
            calls.append(actor.handle.submit.remote(rows))
        if cancels:
            calls.append(actor.handle.cancel.remote(cancels))
        self.calls += len(calls)
        for ref in calls:
            done = asyncio.wrap_future(ref.future())
            self._calls.add(done)
            done.add_done_callback(lambda done: self._called(actor, done))

    def _called(self, actor: Actor, done: asyncio.Future[None]) -> None:
        """A submit or cancel call ended: one that failed means its actor is gone."""
        self._calls.discard(done)
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            self._lose(actor, error)

    def _all_gone(self, job: Job) -> ExtractionFailed:
        said = "; ".join(self.deaths[-3:]) or ("the pool is closed" if self._closing else "")
        failure = Failure(ErrorKind.OTHER, f"no Ray actor left to send the row to ({said})")
        return ExtractionFailed(failure, job.lost, 0, 0)

    # -- the streams -------------------------------------------------------

    async def _read(self, actor: Actor, stream: Any) -> None:
        """An actor's stream, item by item, until it ends (which only a dead actor's does)."""
        handlers: dict[str, Callable[[Actor, Message], None]] = {
            p.OK: self._settle,
            p.FAIL: self._settle,
            p.RETRY: self._retry,
            p.SENT: self._relayed,
            p.ANSWER: self._relayed,
        }
        try:
            async for ref in stream:
                self.items += 1
                for message in await ref:
                    handlers[message[0]](actor, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lose(actor, exc)
        else:
            self._lose(actor, RuntimeError("its stream of results ended"))

    def _job_of(self, actor: Actor, index: int) -> Job | None:
        job = self._jobs.get(index)
        if job is None or job.actor is not actor or job.future.done():
            return None  # cancelled meanwhile, or sent again after its actor died
        return job

    def _relayed(self, actor: Actor, message: Message) -> None:
        job = self._job_of(actor, message[1])
        if job is not None and job.listeners:
            replay(job.listeners, message)

    def _settle(self, actor: Actor, message: Message) -> None:
        job = self._job_of(actor, message[1])
        if job is None:
            return
        actor.jobs.discard(job.record.index)
        job.cost_usd = message[7]
        settle_or_fail(
            job.future,
            message,
            lost=job.lost,
            phases=job.phases,
            schema=self.schema,
            keep_values=self.keep_values,
            sender="actor",
        )

    def _retry(self, actor: Actor, message: Message) -> None:
        _, index, attempt, delay, failure = message
        job = self._job_of(actor, index)
        if job is not None and job.on_retry is not None:
            job.on_retry(attempt + job.lost, delay, failure)

    # -- an actor gone -----------------------------------------------------

    def _lose(self, actor: Actor, error: BaseException) -> None:
        """The actor is dead (or no longer answers): end it, and send its rows to others."""
        if not actor.alive or self._closing:
            return
        actor.alive = False
        with contextlib.suppress(Exception):
            ray.kill(actor.handle)  # one that only failed a call must send nothing more
        said = redact(_one_line(error), self.config.endpoint.secrets)
        why = f"Ray actor {actor.number} died: {said}"
        self.deaths.append(why)
        orphans = [self._jobs[i] for i in sorted(actor.jobs) if i in self._jobs]
        actor.jobs.clear()
        failure = Failure(ErrorKind.OTHER, f"{why}; the row goes to another")
        for job in orphans:
            if job.future.done() or job.cancelled or job.actor is not actor:
                continue
            if job.sent:  # it may have been attempted: one attempt more, a retry
                job.lost += 1
                if job.on_retry is not None:
                    job.on_retry(job.lost, 0.0, failure)
            self._assign(job)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
