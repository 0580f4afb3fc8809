"""Rate limits in real time (opt-in: minutes, mostly waiting): ``python -m benchmarks ratelimits``.

- ``--rpm 20`` measured where the requests arrive (``tests.hostile_server``), over a
  whole minute: 21 rows, requests per minute from first to last arrival, and the most
  any 60 s window held.
- 150 rows through a LiteLLM-like gateway at 60 rpm (``tests.gateway_replay``: a sliding
  one-minute window, bare 429s beyond it), alone and in front of an upstream limited to
  50 rpm (429s with waits only in ``llm_provider-*`` headers), with every strategy,
  fanout's default retry policy (20/40/60 s after a bare 429), concurrency 8. Every
  strategy runs at the same time against a gateway of its own (the runs mostly wait).
  ``--quick``: the window scaled down to 2 s, the backoff with it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.common import GoalResult, Options, Verdict, progress, table
from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import ClientOptions, Engine
from core.extract import RetryPolicy
from core.models import Person
from core.results import Status
from core.strategies import LABELS, STRATEGIES
from tests.gateway_replay import gateway
from tests.hostile_server import hostile

TEXT = "My name is Ann and I am 30"


@dataclass
class GatewayRun:
    setup: str
    strategy: str
    ok: int
    failed: int
    seconds: float
    gateway_429: int
    upstream_429: int
    counted_429: int


async def _run(base_url: str, rows: int, options: ClientOptions, strategy: str) -> Any:
    endpoint = choose_endpoint(base_url=base_url, env={})
    async with (
        Engine(endpoint, options=options) as engine,
        engine.run(
            records_from_texts([TEXT] * rows), Person, strategy=strategy, concurrency=8
        ) as run,
    ):
        stats = await run.execute()
    return run.rows, stats


async def rpm_at_the_server(rpm: int, rows: int) -> dict[str, float]:
    with hostile("ok") as server:
        await _run(server.base_url, rows, ClientOptions(rpm=rpm), "gather")
        arrivals = sorted(server.arrivals)
    span = arrivals[-1] - arrivals[0]
    in_minute = max(sum(1 for t in arrivals if s <= t < s + 60) for s in arrivals)
    return {
        "rpm": rpm,
        "rows": rows,
        "span_s": span,
        "measured_rpm": (len(arrivals) - 1) / span * 60 if span else float("nan"),
        "max_in_60s": in_minute,
    }


async def through_gateway(setup: str, strategy: str, window: float, rows: int) -> GatewayRun:
    upstream = 50 if setup == "gateway + upstream 50" else None
    scale = window / 60
    retry = RetryPolicy(bare_429_delays=(20 * scale, 40 * scale, 60 * scale))
    with gateway(60, window, upstream_rpm=upstream, latency=0.05) as server:
        started = time.monotonic()
        result_rows, stats = await _run(server.base_url, rows, ClientOptions(retry=retry), strategy)
        seconds = time.monotonic() - started
        refused = server.count("gateway"), server.count("upstream")
    ok = sum(1 for r in result_rows if r.status is Status.OK)
    return GatewayRun(setup, strategy, ok, rows - ok, seconds, *refused, stats.rate_limited)


async def measure(quick: bool, options: Options) -> tuple[dict[str, float], list[GatewayRun]]:
    window = 2.0 if quick else 60.0
    progress(options, f"ratelimits: --rpm 20 and 150 rows x 6 strategies x 2 (window {window:g} s)")
    setups = ("gateway 60 rpm", "gateway + upstream 50")
    jobs = [through_gateway(s, name, window, 150) for s in setups for name in STRATEGIES]
    rpm_job = rpm_at_the_server(20, 6 if quick else 21)
    rpm, *runs = await asyncio.gather(rpm_job, *jobs)
    return rpm, runs  # type: ignore[return-value]


def run(options: Options) -> GoalResult:
    rpm, runs = asyncio.run(measure(options.quick, options))
    rpm_ok = 19 <= rpm["measured_rpm"] <= 21
    rpm_text = (
        f"--rpm 20, {rpm['rows']:.0f} rows, at the server: {rpm['measured_rpm']:.2f} rpm over "
        f"{rpm['span_s']:.1f} s, at most {rpm['max_in_60s']:.0f} in any 60 s"
    )
    lines = [
        [
            r.setup,
            LABELS[r.strategy],
            f"{r.ok}/{r.ok + r.failed}",
            f"{r.seconds:.1f} s",
            r.gateway_429,
            r.upstream_429,
            r.counted_429,
        ]
        for r in runs
    ]
    text = (
        rpm_text
        + "\n\n"
        + table(
            ["setup", "strategy", "ok", "time", "bare 429", "upstream 429", "fanout's 429"], lines
        )
    )
    verdicts = [
        Verdict("--rpm 20 at the server", "20 ± 5 %", f"{rpm['measured_rpm']:.2f}", "—", rpm_ok)
    ]
    verdicts += [
        Verdict(
            f"{r.setup}, {LABELS[r.strategy]}",
            "150 ok",
            f"{r.ok} ok",
            "—",
            r.ok == 150 and r.counted_429 == r.gateway_429 + r.upstream_429,
            f"{r.seconds:.0f} s",
        )
        for r in runs
    ]
    raw = {"rpm": rpm, "gateway": [r.__dict__ for r in runs]}
    return GoalResult("ratelimits", "rate limits in real time", raw, text, verdicts)
