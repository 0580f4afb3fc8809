"""A worker process: ``python -m core.workers.child``, started by ``WorkerPool``.

It reads frames from stdin and writes frames to the stdout it was given (its
own prints, and a user schema's, go to stderr). With the ``INIT`` frame it
builds the run's client and extractor (its own event loop, connection pool
and instructor handling), answers ``READY``, then extracts each ``ROW`` it is
sent and sends the result back. Limits stay the parent's: every attempt asks
the parent's rate limiter for its turn (``ASK`` / ``GRANT``), and a 429's
run-wide pause goes to the parent, which passes it on to the other workers;
with ``--strategy adaptive`` every request and answer is relayed to the
parent's one controller (``core.workers.relay``).
The worker holds no state that outlives a row: killed, it loses only the rows
it had, and the parent sends those again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.client import Endpoint, close_client, prime_client
from core.engine import ClientOptions, Engine
from core.extract import Extractor, RateGate
from core.failures import Failure
from core.gctune import quiet_gc
from core.ratelimit import ClientRateLimit
from core.signals import listen
from core.workers import protocol as p
from core.workers.outcome import extract_row
from core.workers.relay import Relay
from core.workers.schemaref import SchemaRef, load_ref


@dataclass(frozen=True)
class WorkerConfig:
    endpoint: Endpoint
    options: ClientOptions
    schema: SchemaRef
    connections: int
    pass_budget: float
    sys_path: tuple[str, ...] = ()
    cores: frozenset[int] | None = None
    """CPU cores the worker may use (the parent's, before a simulator was pinned)."""
    relay: bool = False
    """Tell the parent of every request and answer (``core.workers.relay``): the run's
    adaptive strategy learns from them there."""


class RemoteRateLimit(ClientRateLimit):
    """The parent's rpm / tpm limiter, asked over the pipe for every attempt."""

    def __init__(self, outbox: p.Outbox) -> None:
        super().__init__()
        self._outbox = outbox
        self._tickets = itertools.count()
        self.waiting: dict[int, asyncio.Future[int]] = {}

    @property
    def active(self) -> bool:
        return True

    async def acquire(self, estimated_tokens: int) -> int:
        ticket = next(self._tickets)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting[ticket] = future
        self._outbox.put((p.ASK, ticket, estimated_tokens))
        try:
            return await future
        finally:
            self.waiting.pop(ticket, None)

    def granted(self, ticket: int, charged: int) -> None:
        future = self.waiting.get(ticket)
        if future is not None and not future.done():
            future.set_result(charged)

    def correct(self, charged_tokens: int, actual_tokens: int) -> None:
        self._outbox.put((p.CORRECT, charged_tokens, actual_tokens))


class SharedGate(RateGate):
    """The run-wide pause after a 429, told to the parent (which tells the others)."""

    def __init__(self, outbox: p.Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        self._outbox.put((p.PAUSE, seconds))

    def pause_here(self, seconds: float) -> None:
        super().pause(seconds)


class Worker:
    def __init__(
        self,
        extractor: Extractor,
        outbox: p.Outbox,
        limits: RemoteRateLimit | None,
        *,
        relay: bool = False,
    ) -> None:
        self.extractor = extractor
        self.outbox = outbox
        self.limits = limits
        self.relay = relay
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == p.ROW:
            _, index, text = message
            self.tasks[index] = asyncio.create_task(self.work(index, text))
        elif kind == p.CANCEL:
            task = self.tasks.pop(message[1], None)
            if task is not None:
                task.cancel()
        elif kind == p.GRANT:
            if self.limits is not None:
                self.limits.granted(message[1], message[2])
        elif kind == p.PAUSE:
            gate = self.extractor.gate
            if isinstance(gate, SharedGate):
                gate.pause_here(message[1])

    async def work(self, index: int, text: str) -> None:
        def on_retry(attempt: int, delay: float, failure: Failure) -> None:
            self.outbox.put((p.RETRY, index, attempt, delay, failure))

        if self.relay:  # this task's own context: its requests' hooks find the relay
            listen(Relay(self.outbox, index))
        try:
            self.outbox.put(await extract_row(self.extractor, index, text, on_retry))
        except asyncio.CancelledError:
            return  # the parent cancelled it and expects nothing
        finally:
            self.tasks.pop(index, None)


async def serve(in_fd: int, out_fd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(in_fd, "rb", buffering=0)
    )
    transport, _ = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(out_fd, "wb", buffering=0)
    )
    outbox = p.Outbox(transport.write)
    first = await p.read_frame(reader)
    if not first or first[0][0] != p.INIT:
        return
    config: WorkerConfig = first[0][1]
    try:
        extractor, limits = await setup(config, outbox)
    except Exception as exc:
        outbox.put((p.FATAL, f"{type(exc).__name__}: {exc}"))
        outbox.flush()
        await asyncio.sleep(0)
        transport.close()
        return
    worker = Worker(extractor, outbox, limits, relay=config.relay)
    outbox.put((p.READY, os.getpid()))
    try:
        with quiet_gc():
            while (frame := await p.read_frame(reader)) is not None:
                for message in frame:
                    worker.handle(message)
    finally:  # the parent is gone (or done): nothing here is wanted any more
        for task in list(worker.tasks.values()):
            task.cancel()
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        await close_client(extractor.client)
        transport.close()


def build_extractor(config: WorkerConfig) -> Extractor:
    """The run's extractor, as the parent's engine would build it (its budget is None:
    ``--budget`` is refused with workers)."""
    for entry in reversed(config.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    schema = load_ref(config.schema)
    engine = Engine.attached(config.endpoint, config.options, config.pass_budget)
    extractor = engine.extractor(schema, config.connections)
    extractor.budget = None
    return extractor


async def setup(config: WorkerConfig, outbox: p.Outbox) -> tuple[Extractor, RemoteRateLimit | None]:
    setaffinity = getattr(os, "sched_setaffinity", None)
    if config.cores and setaffinity is not None:
        with contextlib.suppress(OSError):
            setaffinity(0, config.cores)
    extractor = build_extractor(config)
    limits = None
    if config.options.rpm or config.options.tpm:
        limits = RemoteRateLimit(outbox)
        extractor.limits = limits
    extractor.gate = SharedGate(outbox)
    await prime_client(extractor.client)
    return extractor, limits


def main() -> None:
    # The protocol gets its own copy of stdout; fd 1 becomes stderr, so a stray print
    # (a user's schema module, a library) cannot corrupt a frame.
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(0, out_fd))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (uvicorn[standard] brings it): a worker is all client."""
    if os.environ.get("FANOUT_WORKER_LOOP") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


if __name__ == "__main__":
    main()
