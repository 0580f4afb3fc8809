"""Between a running Run and the screen: collect events cheaply, hand them over per frame.

The run calls ``RunFeed`` for every event on the event loop, so the listener
only appends to buffers. The app drains the buffers on a timer (a few times
per frame budget), which keeps thousands of completions per second from
starving input handling.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

from core.events import Event, RowDelivered, RowFinished, RowStarted, RunEnded
from core.results import Row, Status
from core.runner import Run
from core.stats import RunStats, percentile


@dataclass(frozen=True)
class LiveStats:
    """What the stats bar shows at one moment."""

    elapsed: float
    in_flight: int
    limit: int | None
    """The semaphore, the adaptive strategy's current limit, or None."""
    done: int
    """Rows finished, ok or failed; cancelled rows are counted apart."""
    total: int
    ok: int
    failed: int
    cancelled: int
    retries: int
    throughput: float
    p50: float | None
    p95: float | None
    first_result: float | None
    tokens: int
    cost_usd: float
    running: bool
    stopping: bool
    errors_by_kind: dict[str, int]
    wait_sem_p50: float | None = None
    """How long finished rows waited for a semaphore slot (p50); latency excludes it."""
    wait_limiter_p50: float | None = None
    """How long finished rows waited for the client-side rate limiter (p50)."""

    @classmethod
    def of(cls, stats: RunStats, limit: int | None) -> LiveStats:
        """The stats bar for a finished (e.g. stored) run."""
        return cls(
            elapsed=stats.elapsed_s,
            in_flight=0,
            limit=limit,
            done=stats.ok + stats.failed,
            total=stats.records,
            ok=stats.ok,
            failed=stats.failed,
            cancelled=stats.cancelled,
            retries=max(0, stats.attempts - stats.ok - stats.failed),
            throughput=stats.throughput_rps,
            p50=stats.p50_latency_s,
            p95=stats.p95_latency_s,
            first_result=stats.first_result_s,
            tokens=stats.total_tokens,
            cost_usd=stats.cost_usd,
            running=False,
            stopping=False,
            errors_by_kind=dict(stats.errors_by_kind),
            wait_sem_p50=stats.p50_wait_sem_s,
            wait_limiter_p50=stats.p50_wait_limiter_s,
        )


SAMPLE_SECONDS = 0.005


class RunFeed:
    """Buffers a run's events for the UI; one per run."""

    def __init__(self, run: Run, limit: int | None) -> None:
        self.run = run
        self.limit = limit
        self.finished: deque[Row] = deque()
        self.delivered_since_drain = 0
        self.latencies: list[float] = []
        """Finished rows' wire times, sorted (``Row.latency_s``)."""
        self.sem_waits: list[float] = []
        self.limiter_waits: list[float] = []
        self.first_result: float | None = None
        self.errors_by_kind: dict[str, int] = {}
        self.ended: RunStats | None = None
        self.samples: list[tuple[float, int]] = [(0.0, 0)]
        """(elapsed, requests on the wire) at every start and finish: the chart's step line."""
        self.limits: list[tuple[float, int]] = []
        """(elapsed, the adaptive strategy's limit) at every start and finish."""
        self._last_value = 0
        """In flight at the last sample (``samples`` keeps peaks, not this)."""
        self._unsubscribe = run.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        if isinstance(event, RowStarted):
            self._sample(event.at)
            if self.run.limiter is not None:
                self.limits.append((event.at, self.run.limiter.slots))
        elif isinstance(event, RowFinished):
            self._sample(event.at)
            row = self.run.rows[event.index]
            self.finished.append(row)
            if row.phases is not None and row.status is not Status.CANCELLED:
                bisect.insort(self.sem_waits, row.phases.wait_sem_s)
                bisect.insort(self.limiter_waits, row.phases.wait_limiter_s)
            if row.status is Status.OK and row.latency_s is not None:
                bisect.insort(self.latencies, row.latency_s)
            elif row.status is Status.FAILED and row.error_kind is not None:
                kind = row.error_kind.value
                self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1
        elif isinstance(event, RowDelivered):
            self.delivered_since_drain += 1
            if self.first_result is None and self.run.rows[event.index].status is Status.OK:
                self.first_result = event.at
        elif isinstance(event, RunEnded):
            self.ended = event.stats

    def _sample(self, at: float) -> None:
        """One point per few milliseconds is all a chart can show: keep the peak."""
        value = self._last_value = self.run.in_flight
        last_at, last_value = self.samples[-1]
        if at - last_at < SAMPLE_SECONDS and len(self.samples) > 1:
            self.samples[-1] = (last_at, max(last_value, value))
        else:
            self.samples.append((at, value))

    def sample_now(self) -> None:
        """A point between row events: a request goes on the wire when the rate
        limiter or the pool lets it, which no row event marks."""
        if self.run.is_running and self.run.in_flight != self._last_value:
            self._sample(self.run.elapsed)

    def take(self, budget: int) -> list[Row]:
        """Up to ``budget`` newly finished rows, oldest first."""
        count = min(budget, len(self.finished))
        return [self.finished.popleft() for _ in range(count)]

    def take_deliveries(self) -> int:
        count, self.delivered_since_drain = self.delivered_since_drain, 0
        return count

    def close(self) -> None:
        self._unsubscribe()

    def snapshot(self) -> LiveStats:
        run = self.run
        elapsed = run.elapsed
        completed = run.ok + run.failed
        limit = run.limiter.slots if run.limiter is not None else self.limit
        return LiveStats(
            elapsed=elapsed,
            in_flight=run.in_flight,
            limit=limit,
            done=run.done,
            total=run.total,
            ok=run.ok,
            failed=run.failed,
            cancelled=run.cancelled,
            retries=run.retries,
            throughput=completed / elapsed if elapsed > 0 else 0.0,
            p50=percentile(self.latencies, 50),
            p95=percentile(self.latencies, 95),
            first_result=self.first_result,
            tokens=run.prompt_tokens + run.completion_tokens,
            cost_usd=run.cost_usd,
            running=run.is_running,
            stopping=run.stopping,
            errors_by_kind=dict(self.errors_by_kind),
            wait_sem_p50=percentile(self.sem_waits, 50),
            wait_limiter_p50=percentile(self.limiter_waits, 50),
        )
