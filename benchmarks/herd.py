"""The release after a run-wide pause, herd vs paced: ``python -m benchmarks herd``.

An upstream with a burst limit (``tests.gateway_replay``: 20 requests per 0.5 s, 429s
whose wait is in ``llm_provider-*`` headers), 300 rows with ``gather`` and 200 with
``as_completed`` (no semaphore), fanout's default retry policy (7 attempts for 429s).
Each is run twice, alternately: with the run-wide pause releasing every waiting row at
once (main before the paced release; ``HerdGate`` below keeps that behaviour for the
comparison) and with the paced release (``core.extract.RateGate``). Reported: rows
failed, the upstream's 429s, the most attempts a row took, and the time.
``--quick``: 150 and 100 rows, 10 requests per 0.25 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import core.extract
from benchmarks.common import GoalResult, Options, Verdict, progress, table
from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import ClientOptions, Engine
from core.extract import RateGate
from core.models import Person
from core.results import Status
from tests.gateway_replay import gateway

TEXT = "My name is Ann and I am 30"


class HerdGate(RateGate):
    """The pause as it was: when it ends, every waiting row goes at the same instant."""

    async def wait(self) -> None:
        while (left := self.remaining) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)


@contextmanager
def gate_class(cls: type[RateGate]) -> Iterator[None]:
    saved = core.extract.RateGate
    core.extract.RateGate = cls  # type: ignore[misc]
    try:
        yield
    finally:
        core.extract.RateGate = saved  # type: ignore[misc]


@dataclass
class HerdRun:
    release: str
    strategy: str
    rows: int
    failed: int
    upstream_429: int
    most_attempts: int
    seconds: float


async def one(release: str, strategy: str, rows: int, allowance: int, window: float) -> HerdRun:
    cls = HerdGate if release == "herd" else RateGate
    with gateway(100_000, 60.0, upstream_rpm=allowance, upstream_window=window) as server:
        endpoint = choose_endpoint(base_url=server.base_url, env={})
        started = time.monotonic()
        with gate_class(cls):
            async with (
                Engine(endpoint, options=ClientOptions()) as engine,
                engine.run(
                    records_from_texts([TEXT] * rows), Person, strategy=strategy, concurrency=rows
                ) as run,
            ):
                await run.execute()
        seconds = time.monotonic() - started
        refused = server.count("upstream")
    failed = sum(1 for r in run.rows if r.status is not Status.OK)
    most = max(r.attempts for r in run.rows)
    return HerdRun(release, strategy, rows, failed, refused, most, seconds)


def run(options: Options) -> GoalResult:
    sizes = (
        {"gather": 150, "as_completed": 100}
        if options.quick
        else {
            "gather": 300,
            "as_completed": 200,
        }
    )
    allowance, window = (10, 0.25) if options.quick else (20, 0.5)
    runs: list[HerdRun] = []
    for repeat in range(1 if options.quick else 2):
        for strategy, rows in sizes.items():
            for release in ("herd", "paced") if repeat % 2 == 0 else ("paced", "herd"):
                progress(options, f"herd: {release}, {strategy}, {rows} rows")
                runs.append(asyncio.run(one(release, strategy, rows, allowance, window)))
    lines = [
        [
            r.release,
            r.strategy,
            r.rows,
            r.failed,
            r.upstream_429,
            r.most_attempts,
            f"{r.seconds:.1f} s",
        ]
        for r in runs
    ]
    text = f"upstream limit: {allowance} requests per {window:g} s\n\n" + table(
        ["release", "strategy", "rows", "failed", "upstream 429", "most attempts", "time"],
        lines,
    )
    verdicts = [
        Verdict(
            f"paced release, {r.strategy}", "0 failed", f"{r.failed} failed", "—", r.failed == 0
        )
        for r in runs
        if r.release == "paced"
    ]
    raw = {"allowance": allowance, "window": window, "runs": [r.__dict__ for r in runs]}
    return GoalResult("herd", "the release after a pause", raw, text, verdicts)
