"""The parent's side of ``--workers N``: worker processes fed rows, one run.

``WorkerPool`` is a row extract (``core.runner.RowExtract``): the parent's Run,
strategy, events, recorder and store stay as they are with one process, and
each row's request is made by a worker process instead of the parent's own
client. What that keeps global, by construction:

- **concurrency**: the parent's strategy decides when a row starts; a worker
  only gets rows the strategy has let go, so the workers together never have
  more than ``--concurrency`` rows;
- **rpm / tpm**: one limiter, the parent's; a worker asks it for every attempt
  (``ASK``) and sends only once granted; answers' real token counts correct it;
- **the run-wide pause after a 429**: passed to every worker;
- **the adaptive strategy's limit**: one controller, the parent's; every worker
  relays each request and answer of its rows to it (``core.workers.relay``);
- **one writer, one source of events**: results come back to the parent, which
  fills the Run's rows; the store, dashboard, exports, resume and cancel see a
  run like any other.

A worker that dies (killed, crashed) loses no row: the rows it had go to the
others (or to its replacement), each counted as a retry (``RowRetrying``,
one attempt more on the row). Its requests may have reached the server; their
answers were never taken, so no row is stored twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import core
from core.cores import all_cores
from core.dataset import Record
from core.errors import ConfigError, EndpointError
from core.extract import Extraction, ExtractionFailed, RetryHook
from core.failures import Failure, redact
from core.phases import WireGauge
from core.ratelimit import ClientRateLimit
from core.results import ErrorKind, Phases
from core.signals import RelayedListener, relayed_listeners
from core.workers import protocol as p
from core.workers.budget import RowBudget
from core.workers.child import WorkerConfig
from core.workers.outcome import settle_or_fail
from core.workers.relay import replay

START_TIMEOUT = 60.0
"""Seconds a worker may take to import, build its client and say READY."""
_ROOT = str(Path(core.__file__).resolve().parent.parent)
"""Where ``core`` is imported from: the workers import the same one."""
MAX_RESPAWNS_PER_WORKER = 3
"""Replacements started per worker asked for; past that the run goes on with fewer."""


@dataclass(eq=False)
class Job:
    record: Record
    on_retry: RetryHook | None
    phases: Phases | None
    future: asyncio.Future[Extraction]
    worker: WorkerProcess | None = None
    lost: int = 0
    """Times a worker died holding this row."""
    cancelled: bool = False
    cost_usd: float = 0.0
    """What the row cost, as its worker said (all its attempts)."""
    listeners: tuple[RelayedListener, ...] = ()
    """Who in the row's task follows its requests (the adaptive slot): told what its
    worker relays (``core.workers.relay``)."""


@dataclass(eq=False)
class WorkerProcess:
    number: int
    process: asyncio.subprocess.Process
    outbox: p.Outbox
    jobs: set[int] = field(default_factory=set)
    ready: bool = False
    alive: bool = True
    stderr: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=5))
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def why_gone(self) -> str:
        code = self.process.returncode
        if code is None:
            how = "closed its pipe"
        elif code < 0:
            try:
                how = f"was killed ({signal.Signals(-code).name})"
            except ValueError:
                how = f"was killed (signal {-code})"
        else:
            how = f"exited with status {code}"
        said = f": {self.stderr[-1]}" if self.stderr else ""
        return f"worker {self.number} (pid {self.pid}) {how}{said}"


class WorkerPool:
    """``await pool(record, on_retry, phases)`` -> Extraction, made by a worker process."""

    def __init__(
        self,
        count: int,
        config: WorkerConfig,
        *,
        schema: type[BaseModel],
        limits: ClientRateLimit | None = None,
        keep_values: bool = False,
        budget: RowBudget | None = None,
    ) -> None:
        if count < 1:
            raise ConfigError(f"--workers must be at least 1, got {count}")
        self.count = count
        self.config = config
        self.schema = schema
        self.limits = limits if limits is not None and limits.active else None
        self.keep_values = keep_values
        self.budget = budget
        self.wire = WireGauge()
        """Rows at the workers (sent to one, no result back yet)."""
        self.workers: list[WorkerProcess] = []
        self.deaths: list[str] = []
        """Why each worker that died is gone, in order."""
        self.respawns = 0
        self._numbers = 0
        self._jobs: dict[int, Job] = {}
        self._backlog: collections.deque[Job] = collections.deque()
        self._grants: set[asyncio.Task[None]] = set()
        self._closing = False
        self._starting = 0

    # -- life --------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers and wait until each is ready (EndpointError if one cannot)."""
        self._starting += self.count
        results = await asyncio.gather(
            *(self._spawn() for _ in range(self.count)), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.close()
            error = errors[0]
            if isinstance(error, EndpointError | ConfigError):
                raise error
            raise EndpointError(f"a worker process did not start: {error}") from error

    async def close(self) -> None:
        self._closing = True
        for task in list(self._grants):
            task.cancel()
        for worker in self.workers:
            with contextlib.suppress(Exception):
                if worker.process.stdin is not None:
                    worker.process.stdin.close()
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.process.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
        for worker in self.workers:
            for task in worker.tasks:
                task.cancel()
            await asyncio.gather(*worker.tasks, return_exceptions=True)
        for job in list(self._jobs.values()):
            if not job.future.done():
                job.future.set_exception(self._all_gone())

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.pid for w in self.workers if w.alive]

    async def _spawn(self) -> WorkerProcess:
        """Start one worker; ``_starting`` was counted by the caller (rows may wait for it)."""
        self._numbers += 1
        try:
            return await self._start_one(self._numbers)
        finally:
            self._starting -= 1
            if self._starting == 0 and not any(w.alive and w.ready for w in self.workers):
                while self._backlog:  # nobody left to take them
                    job = self._backlog.popleft()
                    if not job.future.done():
                        job.future.set_exception(self._all_gone())

    async def _start_one(self, number: int) -> WorkerProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "core.workers.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C is the parent's alone
        )
        assert process.stdin is not None and process.stdout is not None
        worker = WorkerProcess(number, process, p.Outbox(process.stdin.write))
        self.workers.append(worker)
        worker.tasks.append(asyncio.create_task(self._drain_stderr(worker)))
        worker.outbox.put((p.INIT, self.config))
        first = None
        try:
            first = await asyncio.wait_for(p.read_frame(process.stdout), START_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        if not first or first[0][0] != p.READY:
            worker.alive = False
            if first and first[0][0] == p.FATAL:
                said = redact(str(first[0][1]), self.config.endpoint.secrets)
                raise ConfigError(f"a worker process cannot start: {said}")
            await process.wait()
            await asyncio.sleep(0.05)  # its last stderr line
            raise EndpointError(f"a worker process did not start: {worker.why_gone()}")
        worker.ready = True
        worker.tasks.append(asyncio.create_task(self._read(worker)))
        self._drain_backlog()
        return worker

    async def _drain_stderr(self, worker: WorkerProcess) -> None:
        stream = worker.process.stderr
        assert stream is not None
        while line := await stream.readline():
            text = redact(line.decode("utf-8", "replace").strip(), self.config.endpoint.secrets)
            if text:
                worker.stderr.append(text[:300])

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
            if job.worker is not None and job.worker.alive:
                job.worker.outbox.put((p.CANCEL, record.index))
            raise
        finally:
            if self.budget is not None:
                self.budget.settle(reserved, job.cost_usd)
            self.wire.answered()
            self._jobs.pop(record.index, None)
            if job.worker is not None:
                job.worker.jobs.discard(record.index)

    def _assign(self, job: Job) -> None:
        ready = [w for w in self.workers if w.ready and w.alive]
        if not ready:
            if self._starting == 0 and not self._closing:
                job.future.set_exception(self._all_gone())
            else:
                self._backlog.append(job)
            return
        worker = min(ready, key=lambda w: len(w.jobs))
        job.worker = worker
        worker.jobs.add(job.record.index)
        worker.outbox.put((p.ROW, job.record.index, job.record.text))

    def _drain_backlog(self) -> None:
        while self._backlog:
            job = self._backlog.popleft()
            if not job.cancelled and not job.future.done():
                self._assign(job)

    def _all_gone(self) -> ExtractionFailed:
        said = "; ".join(self.deaths[-3:]) or "the pool is closed"
        failure = Failure(ErrorKind.OTHER, f"no worker process left to send the row to ({said})")
        return ExtractionFailed(failure, 0, 0, 0)

    # -- messages ----------------------------------------------------------

    async def _read(self, worker: WorkerProcess) -> None:
        stdout = worker.process.stdout
        assert stdout is not None
        handlers: dict[str, Callable[[WorkerProcess, tuple[Any, ...]], None]] = {
            p.OK: self._settle,
            p.FAIL: self._settle,
            p.RETRY: self._retry,
            p.ASK: self._ask,
            p.CORRECT: self._correct,
            p.PAUSE: self._pause,
            p.SENT: self._relayed,
            p.ANSWER: self._relayed,
        }
        try:
            while (frame := await p.read_frame(stdout)) is not None:
                for message in frame:
                    handler = handlers.get(message[0])
                    if handler is not None:
                        handler(worker, message)
        except Exception as exc:  # a frame that does not unpickle: this worker is done
            worker.stderr.append(f"sent an unreadable frame ({type(exc).__name__}: {exc})"[:300])
        await self._lost(worker)

    def _job_of(self, worker: WorkerProcess, index: int) -> Job | None:
        job = self._jobs.get(index)
        if job is None or job.worker is not worker or job.future.done():
            return None  # cancelled meanwhile, or sent again after its worker died
        return job

    def _settle(self, worker: WorkerProcess, message: tuple[Any, ...]) -> None:
        job = self._job_of(worker, message[1])
        if job is None:
            return
        job.cost_usd = message[7]
        settle_or_fail(
            job.future,
            message,
            lost=job.lost,
            phases=job.phases,
            schema=self.schema,
            keep_values=self.keep_values,
            sender="worker",
        )

    def _retry(self, worker: WorkerProcess, m: tuple[Any, ...]) -> None:
        _, index, attempt, delay, failure = m
        job = self._job_of(worker, index)
        if job is not None and job.on_retry is not None:
            job.on_retry(attempt + job.lost, delay, failure)

    def _relayed(self, worker: WorkerProcess, m: tuple[Any, ...]) -> None:
        job = self._job_of(worker, m[1])
        if job is not None and job.listeners:
            replay(job.listeners, m)

    def _ask(self, worker: WorkerProcess, m: tuple[Any, ...]) -> None:
        _, ticket, estimate = m
        if self.limits is None:
            worker.outbox.put((p.GRANT, ticket, estimate))
            return
        task = asyncio.create_task(self._grant(worker, ticket, estimate))
        self._grants.add(task)
        task.add_done_callback(self._grants.discard)

    async def _grant(self, worker: WorkerProcess, ticket: int, estimate: int) -> None:
        assert self.limits is not None
        charged = await self.limits.acquire(estimate)
        if worker.alive:
            worker.outbox.put((p.GRANT, ticket, charged))

    def _correct(self, worker: WorkerProcess, m: tuple[Any, ...]) -> None:
        if self.limits is not None:
            self.limits.correct(m[1], m[2])

    def _pause(self, worker: WorkerProcess, m: tuple[Any, ...]) -> None:
        for other in self.workers:
            if other is not worker and other.alive and other.ready:
                other.outbox.put((p.PAUSE, m[1]))

    # -- a worker gone -----------------------------------------------------

    async def _lost(self, worker: WorkerProcess) -> None:
        worker.alive = False
        worker.outbox.closed = True
        if self._closing:
            return
        # Not kill() at once: subprocess's Popen would reap a dead one itself (poll() before
        # signalling) and asyncio would then never learn how it ended.
        try:
            await asyncio.wait_for(asyncio.shield(worker.process.wait()), 2.0)
        except TimeoutError:  # a closed pipe but still running: it is no worker now
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            await worker.process.wait()
        await asyncio.sleep(0.05)  # its last words on stderr
        why = worker.why_gone()
        self.deaths.append(why)
        orphans = [self._jobs[i] for i in sorted(worker.jobs) if i in self._jobs]
        worker.jobs.clear()
        if self.respawns < MAX_RESPAWNS_PER_WORKER * self.count and not self._closing:
            self.respawns += 1
            self._starting += 1
            task = asyncio.create_task(self._replace())
            self._grants.add(task)
            task.add_done_callback(self._grants.discard)
        failure = Failure(ErrorKind.OTHER, f"{why}; the row goes to another worker")
        for job in orphans:
            if job.future.done() or job.cancelled:
                continue
            job.lost += 1
            job.worker = None
            if job.on_retry is not None:
                job.on_retry(job.lost, 0.0, failure)
            self._assign(job)

    async def _replace(self) -> None:
        try:
            await self._spawn()
        except Exception as exc:  # the run goes on with the workers it has
            self.deaths.append(f"a replacement worker did not start: {exc}")


def worker_config(
    endpoint: Any,
    options: Any,
    schema: type[BaseModel],
    connections: int,
    pass_budget: float,
    *,
    relay: bool = False,
) -> WorkerConfig:
    from core.workers.schemaref import schema_ref

    return WorkerConfig(
        endpoint=endpoint,
        options=options,
        schema=schema_ref(schema),
        connections=connections,
        pass_budget=pass_budget,
        sys_path=tuple(sys.path),
        cores=all_cores(),
        relay=relay,
    )
