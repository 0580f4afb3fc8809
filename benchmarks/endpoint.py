"""P5 the endpoint: how fast ``fanout serve`` answers, and 1,000 open connections.

The simulator runs as ``fanout serve`` does (``python -m core.localserver``,
one uvicorn process, started by ``LocalServer``); the client is aiohttp in
this process (a different one), the cheapest Python client (see FINDINGS):

1. throughput: tool-call completions for the article's ``Person`` (the body
   instructor sends in TOOLS mode), 100 at a time, latency 0. Two figures:
   the wall rate (requests / wall time; includes the client's CPU on the same
   2-core machine, so it is a lower bound), and the server's own capacity on
   one core (requests / the server process's CPU seconds, from /proc/PID/stat);
2. connections: 1,000 requests at once, each on its own connection, against a
   server with 1 s of latency, so all are open together: how many answered 200,
   and the wall time (ideal: one latency).

(This absorbs the former ``benchmarks/server_throughput.py``.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from benchmarks.common import (
    GoalResult,
    Options,
    Verdict,
    cpu_seconds,
    fmt_rate,
    fmt_runs,
    fmt_s,
    fmt_x,
    median,
    progress,
    ratio,
    table,
    tools_body,
)
from core.client import LOCAL_KEY
from core.localserver import LocalServer, ServerConfig

TARGET_RPS = 3000.0
CONCURRENCY = 100
CONNECTIONS = 1000
CONNECTION_LATENCY = 1.0
CONNECTION_WALL_LIMIT = 1.5
"""'wall ≈ 1 s' judged per request: sent → answered within this, for a 1 s latency."""

HEADERS = {"content-type": "application/json", "authorization": f"Bearer {LOCAL_KEY}"}


async def throughput(url: str, requests: int, concurrency: int) -> tuple[float, int]:
    """``requests`` POSTs by ``concurrency`` workers; returns (wall seconds, errors)."""
    body = tools_body("My name is John and I am 20 years old")
    connector = aiohttp.TCPConnector(limit=concurrency)
    errors = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        remaining = iter(range(requests))

        async def worker() -> None:
            nonlocal errors
            for _ in remaining:
                async with session.post(url, data=body, headers=HEADERS) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, errors


async def connections(url: str, count: int) -> dict[str, Any]:
    """``count`` requests at once, one connection each.

    Besides the wall time, each request's own time from "headers sent" to
    "answer read": the client needs a while to open ``count`` connections
    (its CPU, not the server's), and this separates the two.
    """
    body = tools_body("My name is John and I am 20 years old")
    connector = aiohttp.TCPConnector(limit=count + 10, limit_per_host=count + 10)
    timeout = aiohttp.ClientTimeout(total=120)
    sent_at: dict[int, float] = {}
    trace = aiohttp.TraceConfig()

    async def on_sent(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceRequestHeadersSentParams,
    ) -> None:
        context.trace_request_ctx["sent"] = time.perf_counter()

    trace.on_request_headers_sent.append(on_sent)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trace_configs=[trace]
    ) as session:

        async def one(i: int) -> tuple[int, float, float]:
            context: dict[str, float] = {}
            async with session.post(
                url, data=body, headers=HEADERS, trace_request_ctx=context
            ) as response:
                await response.read()
                done = time.perf_counter()
                sent_at[i] = context.get("sent", done)
                return response.status, context.get("sent", done), done

        start = time.perf_counter()
        outcomes = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
        wall = time.perf_counter() - start
    errors: dict[str, int] = {}
    served: list[float] = []
    last_sent = 0.0
    ok = 0
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            errors[type(outcome).__name__] = errors.get(type(outcome).__name__, 0) + 1
            continue
        status, sent, done = outcome
        last_sent = max(last_sent, sent - start)
        served.append(done - sent)
        if status == 200:
            ok += 1
        else:
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
    return {
        "count": count,
        "ok": ok,
        "errors": errors,
        "wall_s": wall,
        "last_sent_s": last_sent,
        "max_served_s": max(served) if served else float("nan"),
        "median_served_s": median(served),
    }


def measure(options: Options) -> dict[str, Any]:
    requests = 2000 if options.quick else 10_000
    repeat = 1 if options.quick else options.repeat
    rates: list[dict[str, Any]] = []
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0)) as server:
        url = f"{server.base_url}/chat/completions"
        progress(options, "p5: warm-up")
        asyncio.run(throughput(url, 500, CONCURRENCY))
        for r in range(repeat):
            progress(options, f"p5: throughput {r + 1}/{repeat}: {requests:,} requests")
            before = cpu_seconds(server.pid)
            wall, errors = asyncio.run(throughput(url, requests, CONCURRENCY))
            used = cpu_seconds(server.pid) - before
            rates.append(
                {
                    "requests": requests,
                    "wall_s": wall,
                    "errors": errors,
                    "wall_rps": requests / wall,
                    "server_cpu_s": used,
                    "server_cpu_ms_per_request": 1000 * used / requests,
                    "server_rps_per_core": requests / used if used > 0 else float("nan"),
                    "server_busy": used / wall,
                }
            )
    held: list[dict[str, Any]] = []
    with LocalServer(ServerConfig(latency=CONNECTION_LATENCY, jitter=0.0)) as server:
        url = f"{server.base_url}/chat/completions"
        for r in range(repeat):
            progress(options, f"p5: {CONNECTIONS:,} connections at once {r + 1}/{repeat}")
            held.append(asyncio.run(connections(url, CONNECTIONS)))
    return {
        "concurrency": CONCURRENCY,
        "repeat": repeat,
        "throughput": rates,
        "median_wall_rps": median([r["wall_rps"] for r in rates]),
        "median_server_rps_per_core": median([r["server_rps_per_core"] for r in rates]),
        "median_server_cpu_ms_per_request": median([r["server_cpu_ms_per_request"] for r in rates]),
        "connections": held,
        "connection_latency_s": CONNECTION_LATENCY,
    }


def report(raw: dict[str, Any]) -> GoalResult:
    rates = raw["throughput"]
    wall_rps = raw["median_wall_rps"]
    core_rps = raw["median_server_rps_per_core"]
    held = raw["connections"]
    lines = [
        f"throughput: {rates[0]['requests']:,} tool-call completions per repetition, "
        f"{raw['concurrency']} at a time, latency 0, aiohttp client in another process; "
        f"{raw['repeat']} repetition(s), medians",
        table(
            ["measure", "median", "each run"],
            [
                [
                    "wall rate (a lower bound: the client shares the CPUs)",
                    fmt_rate(wall_rps),
                    fmt_runs([r["wall_rps"] for r in rates], digits=0),
                ],
                [
                    "server CPU per request",
                    f"{raw['median_server_cpu_ms_per_request']:.3f} ms",
                    fmt_runs([r["server_cpu_ms_per_request"] for r in rates], digits=3),
                ],
                [
                    "server capacity on one core (1 / CPU per request)",
                    fmt_rate(core_rps),
                    fmt_runs([r["server_rps_per_core"] for r in rates], digits=0),
                ],
                [
                    "server busy during the run",
                    f"{median([r['server_busy'] for r in rates]):.0%}",
                    fmt_runs([100 * r["server_busy"] for r in rates], "%", 0),
                ],
                ["errors", str(sum(r["errors"] for r in rates)), ""],
            ],
        ),
        "",
        f"connections: {held[0]['count']:,} requests at once, each on its own connection, "
        f"server latency {raw['connection_latency_s']:g} s",
        table(
            [
                "repetition",
                "ok",
                "errors",
                "wall",
                "wall / latency",
                "last request sent at",
                "sent → answered: median",
                "max",
            ],
            [
                [
                    str(i),
                    f"{h['ok']:,}/{h['count']:,}",
                    ", ".join(f"{k} {n}" for k, n in h["errors"].items()) or "0",
                    fmt_s(h["wall_s"], 2),
                    fmt_x(h["wall_s"] / raw["connection_latency_s"]),
                    fmt_s(h["last_sent_s"], 2),
                    fmt_s(h["median_served_s"], 3),
                    fmt_s(h["max_served_s"], 3),
                ]
                for i, h in enumerate(held, start=1)
            ],
        ),
    ]
    busy = median([r["server_busy"] for r in rates])
    worst_wall = max(h["wall_s"] for h in held)
    worst_served = max(h["max_served_s"] for h in held)
    all_ok = all(h["ok"] == h["count"] for h in held)
    verdicts = [
        Verdict(
            "P5 endpoint requests/s, one core",
            f"≥ {TARGET_RPS:,.0f}/s",
            f"{fmt_rate(core_rps)} (CPU); wall {fmt_rate(wall_rps)}",
            fmt_x(ratio(core_rps, TARGET_RPS)),
            core_rps >= TARGET_RPS,
            f"server {raw['median_server_cpu_ms_per_request']:.3f} ms CPU/request, "
            f"busy {busy:.0%} of the wall time",
        ),
        Verdict(
            "P5 1,000 connections at once",
            f"all ok, each ≤ {CONNECTION_WALL_LIMIT:g} s",
            f"{min(h['ok'] for h in held):,}/{CONNECTIONS:,} ok, slowest {worst_served:.2f} s",
            fmt_x(worst_served / raw["connection_latency_s"]),
            all_ok and worst_served <= CONNECTION_WALL_LIMIT,
            f"latency {raw['connection_latency_s']:g} s; wall {worst_wall:.2f} s incl. the "
            "client opening 1,000 connections",
        ),
    ]
    return GoalResult("p5", "P5 the endpoint", raw, "\n".join(lines), verdicts)


def run(options: Options) -> GoalResult:
    return report(measure(options))
