"""compute_stats: the run's figures from its rows, checked against a plain recount."""

from __future__ import annotations

import random
import statistics

import pytest

from core.report import format_stats_line
from core.results import ErrorKind, Phases, Row, Status
from core.stats import compute_stats


def mixed_rows(n: int, seed: int) -> list[Row]:
    """Rows in every state, with and without timings, as runs leave them."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        status = rng.choice([Status.OK] * 6 + [Status.FAILED, Status.CANCELLED, Status.PENDING])
        row = Row(i, f"r{i}", "text", status, attempts=rng.randint(0, 3))
        row.prompt_tokens, row.completion_tokens = rng.randint(0, 90), rng.randint(0, 20)
        row.cost_usd = rng.random() / 1000
        if status is not Status.PENDING and rng.random() < 0.9:
            row.started_s = rng.uniform(0, 5)
            if rng.random() < 0.9:
                row.finished_s = row.started_s + rng.uniform(0.01, 2)
                if rng.random() < 0.8:
                    row.delivered_s = row.finished_s + rng.uniform(0, 1)
        if status is Status.FAILED and rng.random() < 0.8:
            row.error_kind = rng.choice(list(ErrorKind))
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_the_figures_match_a_plain_recount(seed: int) -> None:
    rows = mixed_rows(2000, seed)
    stats = compute_stats(
        rows, strategy="gather", concurrency=None, elapsed_s=7.5, max_in_flight=9, rate_limited=4
    )
    ok = [r for r in rows if r.status is Status.OK]
    latencies = sorted(r.latency_s for r in ok if r.latency_s is not None)
    assert (stats.ok, stats.failed, stats.cancelled, stats.records) == (
        len(ok),
        sum(r.status is Status.FAILED for r in rows),
        sum(r.status is Status.CANCELLED for r in rows),
        2000,
    )
    assert stats.first_result_s == min(r.delivered_s for r in ok if r.delivered_s is not None)
    assert stats.first_finished_s == min(r.finished_s for r in ok if r.finished_s is not None)
    assert stats.mean_latency_s == sum(latencies) / len(latencies)
    assert stats.p50_latency_s == pytest.approx(statistics.median(latencies), abs=0.01)
    assert stats.attempts == sum(r.attempts for r in rows)
    assert stats.prompt_tokens == sum(r.prompt_tokens for r in rows)
    assert stats.completion_tokens == sum(r.completion_tokens for r in rows)
    assert stats.cost_usd == sum(r.cost_usd for r in rows)  # same order: bit for bit
    kinds = [r.error_kind.value for r in rows if r.status is Status.FAILED and r.error_kind]
    assert stats.errors_by_kind == {kind: kinds.count(kind) for kind in set(kinds)}
    assert stats.throughput_rps == (stats.ok + stats.failed) / 7.5


def test_no_rows_no_figures() -> None:
    stats = compute_stats(
        [], strategy="sequential", concurrency=1, elapsed_s=0.0, max_in_flight=0, rate_limited=0
    )
    assert stats.ok == stats.records == 0
    assert stats.first_result_s is None and stats.p50_latency_s is None
    assert stats.mean_latency_s is None and stats.throughput_rps == 0.0


def test_latency_is_wire_time_and_the_waits_are_their_own_figures() -> None:
    # Rows that queued behind a 60 rpm limiter: each waited a second more than the last.
    rows = []
    for i in range(11):
        phases = Phases(wait_sem_s=0.1 * i, wait_limiter_s=float(i), wire_s=0.8, client_s=0.01)
        phases.retries_429 = 1 if i == 3 else 0
        phases.retries_invalid = 1 if i in (4, 5) else 0
        phases.backoff_s = 1.5 if i == 3 else 0.0
        row = Row(i, f"r{i}", "t", Status.OK, started_s=0.1 * i, phases=phases)
        row.finished_s = row.started_s + phases.wait_limiter_s + 0.81 + phases.backoff_s
        rows.append(row)
    cancelled = Row(11, "r11", "t", Status.CANCELLED, phases=Phases(wait_limiter_s=99.0))
    stats = compute_stats(
        [*rows, cancelled],
        strategy="gather_semaphore",
        concurrency=20,
        elapsed_s=12.0,
        max_in_flight=1,
        rate_limited=1,
    )
    assert stats.p50_latency_s == pytest.approx(0.8)
    assert stats.p95_latency_s == pytest.approx(0.8)
    assert stats.p50_wait_limiter_s == pytest.approx(5.0)
    assert stats.p95_wait_limiter_s == pytest.approx(9.5)
    assert stats.p50_wait_sem_s == pytest.approx(0.5)
    assert stats.backoff_s == pytest.approx(1.5)
    assert stats.retries_by_kind == {"429": 1, "invalid": 2}
    assert stats.to_dict()["p50_wait_limiter_s"] == pytest.approx(5.0)
    line = format_stats_line(stats, None)
    assert "latency (on the wire) p50 0.80 s p95 0.80 s" in line
    assert "waits p50 limiter 5.00 s, semaphore 0.50 s; backoff 1.50 s in all" in line
    assert "retries 429 1, invalid 2" in line


def test_rows_without_phases_keep_the_old_figures() -> None:
    row = Row(0, "r0", "t", Status.OK, started_s=1.0, finished_s=3.0)
    stats = compute_stats(
        [row], strategy="gather", concurrency=None, elapsed_s=3.0, max_in_flight=1, rate_limited=0
    )
    assert stats.p50_latency_s == 2.0
    assert stats.p50_wait_limiter_s is None and stats.retries_by_kind == {}
