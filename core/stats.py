"""Figures for a run: the article's table, measured."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from core.results import Row, Status

RETRY_KINDS = ("network", "429", "5xx", "invalid")
"""``RunStats.retries_by_kind``' keys, from ``Phases``' retry counters."""


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]) of already sorted values."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def ideal_elapsed(records: int, concurrency: int, latency: float) -> float:
    """The physics: ceil(N / k) waves of one latency each."""
    return math.ceil(records / max(1, concurrency)) * latency


@dataclass(frozen=True)
class RunStats:
    strategy: str
    concurrency: int | None
    """The semaphore size, or None for strategies without a limit."""
    records: int
    ok: int
    failed: int
    cancelled: int
    elapsed_s: float
    first_result_s: float | None
    """When the strategy first handed a result to the caller."""
    first_finished_s: float | None
    """When the first request completed."""
    p50_latency_s: float | None
    """Latency is time on the wire (request sent -> answer headers, every attempt):
    waits for the semaphore, the rate limiter and backoffs are the ``*_wait_*`` figures."""
    p95_latency_s: float | None
    mean_latency_s: float | None
    throughput_rps: float
    """Completed rows (ok or failed) per second of wall time."""
    max_in_flight: int
    attempts: int
    rate_limited: int
    """Attempts answered 429 (retried or not)."""
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    stopped_reason: str | None = None
    p50_wait_sem_s: float | None = None
    """How long finished rows waited for their semaphore slot (None: not recorded)."""
    p95_wait_sem_s: float | None = None
    p50_wait_limiter_s: float | None = None
    """How long finished rows waited for the client-side rate limiter (or a 429 pause)."""
    p95_wait_limiter_s: float | None = None
    backoff_s: float = 0.0
    """Seconds all rows slept between a failed attempt and the next."""
    retries_by_kind: dict[str, int] = field(default_factory=dict)
    """Retries after: ``network`` (timeout, connection), ``429``, ``5xx``, ``invalid``."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["total_tokens"] = self.total_tokens
        data["achieved_rpm"] = self.achieved_rpm
        data["share_429"] = self.share_429
        return data

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def achieved_rpm(self) -> float:
        """Successful rows per minute of wall time."""
        return self.ok / self.elapsed_s * 60 if self.elapsed_s > 0 else 0.0

    @property
    def share_429(self) -> float:
        """The share of HTTP attempts the server refused with 429."""
        return self.rate_limited / self.attempts if self.attempts else 0.0


def compute_stats(
    rows: Iterable[Row],
    *,
    strategy: str,
    concurrency: int | None,
    elapsed_s: float,
    max_in_flight: int,
    rate_limited: int,
    stopped_reason: str | None = None,
) -> RunStats:
    rows = list(rows)
    # One pass: at the end of a 10,000-row run this runs on the dashboard's loop, and
    # ten generator passes over the rows held it for ~25 ms.
    latencies: list[float] = []
    sem_waits: list[float] = []
    limiter_waits: list[float] = []
    backoff_s = 0.0
    retries = [0, 0, 0, 0]
    first_delivered: float | None = None
    first_finished: float | None = None
    ok = failed = cancelled = attempts = prompt_tokens = completion_tokens = 0
    cost_usd = 0.0
    errors: dict[str, int] = {}
    for row in rows:
        status = row.status
        attempts += row.attempts
        prompt_tokens += row.prompt_tokens
        completion_tokens += row.completion_tokens
        cost_usd += row.cost_usd
        phases = row.phases
        if phases is not None and status is not Status.CANCELLED:
            sem_waits.append(phases.wait_sem_s)
            limiter_waits.append(phases.wait_limiter_s)
            backoff_s += phases.backoff_s
            retries[0] += phases.retries_network
            retries[1] += phases.retries_429
            retries[2] += phases.retries_5xx
            retries[3] += phases.retries_invalid
        if status is Status.OK:
            ok += 1
            finished, delivered = row.finished_s, row.delivered_s
            if finished is not None:
                latency = row.latency_s
                if latency is not None:
                    latencies.append(latency)
                if first_finished is None or finished < first_finished:
                    first_finished = finished
            if delivered is not None and (first_delivered is None or delivered < first_delivered):
                first_delivered = delivered
        elif status is Status.FAILED:
            failed += 1
            if row.error_kind is not None:
                kind = row.error_kind.value
                errors[kind] = errors.get(kind, 0) + 1
        elif status is Status.CANCELLED:
            cancelled += 1
    latencies.sort()
    sem_waits.sort()
    limiter_waits.sort()
    return RunStats(
        strategy=strategy,
        concurrency=concurrency,
        records=len(rows),
        ok=ok,
        failed=failed,
        cancelled=cancelled,
        elapsed_s=elapsed_s,
        first_result_s=first_delivered,
        first_finished_s=first_finished,
        p50_latency_s=percentile(latencies, 50),
        p95_latency_s=percentile(latencies, 95),
        mean_latency_s=sum(latencies) / len(latencies) if latencies else None,
        throughput_rps=(ok + failed) / elapsed_s if elapsed_s > 0 else 0.0,
        max_in_flight=max_in_flight,
        attempts=attempts,
        rate_limited=rate_limited,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost_usd,
        errors_by_kind=errors,
        stopped_reason=stopped_reason,
        p50_wait_sem_s=percentile(sem_waits, 50),
        p95_wait_sem_s=percentile(sem_waits, 95),
        p50_wait_limiter_s=percentile(limiter_waits, 50),
        p95_wait_limiter_s=percentile(limiter_waits, 95),
        backoff_s=backoff_s,
        retries_by_kind={kind: n for kind, n in zip(RETRY_KINDS, retries, strict=True) if n},
    )
