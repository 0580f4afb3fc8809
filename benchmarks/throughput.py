"""P1 throughput: completed, validated extractions per second at zero latency.

Three clients over the same texts against the same simulator (its own process):

(a) a bare aiohttp POST of the request instructor sends (TOOLS mode), 100 at
    a time; the answer is parsed as JSON but not validated: the floor a
    Python client can reach on this machine;
(b) the article's stack as the article writes it: ``instructor.from_openai(
    AsyncOpenAI(base_url=..., api_key=...))`` with the SDK's defaults, and
    ``extract_person`` gathered over every text; once plain (the SDK's default
    pool) and once under the article's ``asyncio.Semaphore`` of 100;
(c) fanout's engine: ``Engine`` + ``engine.run(records, Person, strategy=...,
    concurrency=100)`` → ``run.execute()``, with ``gather_semaphore`` and ``gather``.

The pydantic objects of (b) and (c) must be equal (``model_dump()``) text by text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import instructor
from openai import AsyncOpenAI
from pydantic import BaseModel

from benchmarks.common import (
    GoalResult,
    Options,
    Verdict,
    close_instructor,
    cpu_seconds,
    fmt_rate,
    fmt_runs,
    fmt_s,
    fmt_x,
    local_engine,
    median,
    people,
    progress,
    ratio,
    records_of,
    simulator_pid,
    table,
    tools_body,
)
from core.client import LOCAL_KEY, LOCAL_MODEL
from core.engine import Engine
from core.gctune import quiet_gc
from core.models import Person as CorePerson

CONCURRENCY = 100
TARGET_SPEEDUP = 3.0
STRETCH_RPS = 1000.0


class Person(BaseModel):
    """The article's model."""

    name: str
    age: int


@dataclass
class Attempt:
    """One repetition of one client."""

    wall_s: float
    ok: int
    failed: int
    unfinished: int
    client_cpu_s: float
    server_cpu_s: float
    errors: dict[str, int] = field(default_factory=dict)
    values: list[BaseModel | None] = field(default_factory=list, repr=False)

    @property
    def rate(self) -> float:
        return self.ok / self.wall_s if self.wall_s > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "ok": self.ok,
            "failed": self.failed,
            "unfinished": self.unfinished,
            "rows_per_s": self.rate,
            "client_cpu_s": self.client_cpu_s,
            "server_cpu_s": self.server_cpu_s,
            "errors": self.errors,
        }


Measure = Callable[[str, Sequence[str]], Awaitable[Attempt]]


def _cpu_now(server: int | None) -> tuple[float, float]:
    return time.process_time(), cpu_seconds(server)


def _attempt(
    start: float,
    cpu: tuple[float, float],
    server: int | None,
    values: list[BaseModel | None],
    errors: Counter[str],
    unfinished: int,
) -> Attempt:
    wall = time.perf_counter() - start
    client_cpu, server_cpu = _cpu_now(server)
    ok = sum(1 for v in values if v is not None)
    return Attempt(
        wall_s=wall,
        ok=ok,
        failed=len(values) - ok - unfinished,
        unfinished=unfinished,
        client_cpu_s=client_cpu - cpu[0],
        server_cpu_s=server_cpu - cpu[1],
        errors=dict(errors),
        values=values,
    )


# -- (a) aiohttp ---------------------------------------------------------------------


async def aiohttp_floor(
    base_url: str, texts: Sequence[str], server: int | None, concurrency: int = CONCURRENCY
) -> Attempt:
    """``concurrency`` workers POSTing the TOOLS request; a 200 with JSON arguments is ok."""
    url = f"{base_url}/chat/completions"
    headers = {"content-type": "application/json", "authorization": f"Bearer {LOCAL_KEY}"}
    bodies = [tools_body(text) for text in texts]
    values: list[BaseModel | None] = [None] * len(texts)
    errors: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        next_index = iter(range(len(texts)))

        async def worker() -> None:
            for i in next_index:
                try:
                    async with session.post(url, data=bodies[i], headers=headers) as response:
                        payload = await response.read()
                        if response.status != 200:
                            errors[f"HTTP {response.status}"] += 1
                            continue
                    message = json.loads(payload)["choices"][0]["message"]
                    json.loads(message["tool_calls"][0]["function"]["arguments"])
                    values[i] = Person.model_construct()  # counted, not validated
                except (aiohttp.ClientError, ValueError, KeyError) as exc:
                    errors[type(exc).__name__] += 1

        cpu = _cpu_now(server)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return _attempt(start, cpu, server, values, errors, 0)


# -- (b) the article's stack -------------------------------------------------------------


async def article_stack(
    base_url: str,
    texts: Sequence[str],
    server: int | None,
    *,
    semaphore: int | None,
    cap_s: float,
) -> Attempt:
    """The article's code; ``gather`` of every text, optionally under its semaphore.

    ``asyncio.gather`` would raise on the first failure and lose the rest, so
    the same tasks are awaited with ``asyncio.wait`` (gather wraps coroutines
    in exactly these tasks) to count failures, with a cap on the wall time:
    a run still going after ``cap_s`` is reported as unfinished.
    """
    client = instructor.from_openai(AsyncOpenAI(base_url=base_url, api_key=LOCAL_KEY))

    async def extract_person(text: str) -> Person:
        return await client.chat.completions.create(
            model=LOCAL_MODEL,
            messages=[
                {"role": "user", "content": text},
            ],
            response_model=Person,
        )

    async def rate_limited_extract_person(text: str, sem: asyncio.Semaphore) -> Person:
        async with sem:
            return await extract_person(text)

    try:
        cpu = _cpu_now(server)
        start = time.perf_counter()
        if semaphore is None:
            tasks = [asyncio.ensure_future(extract_person(text)) for text in texts]
        else:
            sem = asyncio.Semaphore(semaphore)
            tasks = [
                asyncio.ensure_future(rate_limited_extract_person(text, sem)) for text in texts
            ]
        _, pending = await asyncio.wait(tasks, timeout=cap_s)
        values: list[BaseModel | None] = []
        errors: Counter[str] = Counter()
        for task in tasks:
            if not task.done():
                values.append(None)
            elif task.exception() is not None:
                errors[type(task.exception()).__name__] += 1
                values.append(None)
            else:
                values.append(task.result())
        attempt = _attempt(start, cpu, server, values, errors, len(pending))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return attempt
    finally:
        await close_instructor(client)


# -- (c) fanout's engine ------------------------------------------------------------------


async def engine_run(
    engine: Engine, texts: Sequence[str], server: int | None, *, strategy: str, cap_s: float
) -> Attempt:
    records = records_of(texts)
    async with engine.run(
        records, CorePerson, strategy=strategy, concurrency=CONCURRENCY, keep_values=True
    ) as run:
        cpu = _cpu_now(server)
        start = time.perf_counter()
        # quiet_gc: as `fanout run` and the dashboard do
        with contextlib.suppress(TimeoutError), quiet_gc():  # the rows say what did not finish
            await asyncio.wait_for(run.execute(), cap_s)
        values: list[BaseModel | None] = [row.value for row in run.rows]
        errors = Counter(row.error_kind.value for row in run.rows if row.error_kind is not None)
        unfinished = run.cancelled
        return _attempt(start, cpu, server, values, errors, unfinished)


# -- the goal -------------------------------------------------------------------------------

VARIANTS = (
    ("a", "aiohttp POST (floor, no validation)"),
    ("b_sem", f"article stack + Semaphore({CONCURRENCY})"),
    ("b_gather", "article stack, gather, SDK default pool"),
    ("c_gather_semaphore", f"fanout engine, gather_semaphore k={CONCURRENCY}"),
    ("c_gather", "fanout engine, gather"),
)


def compare(left: Sequence[BaseModel | None], right: Sequence[BaseModel | None]) -> dict[str, int]:
    """Text by text: equal ``model_dump()``, different, or missing on either side."""
    equal = different = missing = 0
    for a, b in zip(left, right, strict=True):
        if a is None or b is None:
            missing += 1
        elif a.model_dump() == b.model_dump():
            equal += 1
        else:
            different += 1
    return {"compared": len(left), "equal": equal, "different": different, "missing": missing}


def correct(values: Sequence[BaseModel | None], expected: Sequence[dict[str, Any]]) -> int:
    return sum(
        1
        for value, truth in zip(values, expected, strict=True)
        if value is not None and value.model_dump() == truth
    )


async def measure(options: Options) -> dict[str, Any]:
    rows = 300 if options.quick else 2000
    repeat = 1 if options.quick else options.repeat
    cap_s = 45.0 if options.quick else 120.0
    examples = people(rows)
    texts = [text for text, _ in examples]
    expected = [truth for _, truth in examples]
    attempts: dict[str, list[Attempt]] = {key: [] for key, _ in VARIANTS}
    async with local_engine(0.0) as engine:
        base_url = engine.endpoint.base_url
        server = simulator_pid()
        runners: dict[str, Callable[[Sequence[str]], Awaitable[Attempt]]] = {
            "a": lambda t: aiohttp_floor(base_url, t, server),
            "b_sem": lambda t: article_stack(
                base_url, t, server, semaphore=CONCURRENCY, cap_s=cap_s
            ),
            "b_gather": lambda t: article_stack(base_url, t, server, semaphore=None, cap_s=cap_s),
            "c_gather_semaphore": lambda t: engine_run(
                engine, t, server, strategy="gather_semaphore", cap_s=cap_s
            ),
            "c_gather": lambda t: engine_run(engine, t, server, strategy="gather", cap_s=cap_s),
        }
        progress(options, f"p1: warming up the five clients on {base_url}")
        for run_one in runners.values():
            await run_one(texts[:20])
        keys = [key for key, _ in VARIANTS]
        for r in range(repeat):
            order = keys[r % len(keys) :] + keys[: r % len(keys)]
            for key in order:
                progress(options, f"p1: repetition {r + 1}/{repeat}: {key} over {rows} texts")
                attempts[key].append(await runners[key](texts))
    return _summarise(rows, repeat, cap_s, attempts, expected)


def _summarise(
    rows: int,
    repeat: int,
    cap_s: float,
    attempts: dict[str, list[Attempt]],
    expected: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    variants: dict[str, Any] = {}
    for key, label in VARIANTS:
        runs = attempts[key]
        variants[key] = {
            "label": label,
            "runs": [a.as_dict() for a in runs],
            "median_rows_per_s": median([a.rate for a in runs]),
            "median_wall_s": median([a.wall_s for a in runs]),
            "client_cpu_ms_per_row": median([1000 * a.client_cpu_s / max(1, a.ok) for a in runs]),
            "server_cpu_ms_per_row": median([1000 * a.server_cpu_s / max(1, a.ok) for a in runs]),
            "all_ok_every_time": all(a.ok == rows for a in runs),
        }
    reference = attempts["b_sem"][0].values
    identical = {
        key: compare(reference, attempts[key][0].values)
        for key in ("c_gather_semaphore", "c_gather")
    }
    truth = {
        key: correct(attempts[key][0].values, expected)
        for key in ("b_sem", "b_gather", "c_gather_semaphore", "c_gather")
    }
    return {
        "rows": rows,
        "concurrency": CONCURRENCY,
        "repeat": repeat,
        "cap_s": cap_s,
        "variants": variants,
        "identical_to_article_semaphore": identical,
        "correct_vs_generator": truth,
    }


def report(raw: dict[str, Any]) -> GoalResult:
    variants = raw["variants"]
    rows = raw["rows"]
    floor = variants["a"]["median_rows_per_s"]
    b_sem = variants["b_sem"]["median_rows_per_s"]
    lines = []
    body = []
    for key, label in VARIANTS:
        v = variants[key]
        runs = v["runs"]
        failures = sum(r["failed"] for r in runs)
        unfinished = sum(r["unfinished"] for r in runs)
        errors: Counter[str] = Counter()
        for r in runs:
            errors.update(r["errors"])
        note = ", ".join(f"{k} {n}" for k, n in errors.most_common(3))
        if unfinished:
            note = (note + "; " if note else "") + f"{unfinished} unfinished at {raw['cap_s']:g} s"
        body.append(
            [
                f"({key[0]}) {label}",
                fmt_rate(v["median_rows_per_s"]),
                fmt_runs([r["rows_per_s"] for r in runs], digits=0),
                fmt_s(v["median_wall_s"], 2),
                f"{median([r['ok'] for r in runs]):,.0f}/{rows:,}",
                str(failures),
                f"{v['client_cpu_ms_per_row']:.2f}",
                f"{v['server_cpu_ms_per_row']:.2f}",
                fmt_x(ratio(v["median_rows_per_s"], b_sem)),
                f"{ratio(v['median_rows_per_s'], floor):.0%}",
                note or "",
            ]
        )
    lines.append(
        f"{rows:,} texts, zero latency, concurrency {raw['concurrency']}, "
        f"{raw['repeat']} repetition(s), medians; client CPU = this process, "
        "server CPU = the simulator's process"
    )
    lines.append(
        table(
            [
                "client",
                "rows/s",
                "each run",
                "wall",
                "ok",
                "failed",
                "client ms/row",
                "server ms/row",
                "vs (b) sem",
                "of floor",
                "note",
            ],
            body,
        )
    )
    lines.append("")
    id_rows = []
    for key, result in raw["identical_to_article_semaphore"].items():
        id_rows.append(
            [
                f"(b) sem vs ({key[0]}) {key[2:]}",
                f"{result['equal']:,}",
                f"{result['different']:,}",
                f"{result['missing']:,}",
            ]
        )
    lines.append("identical results (model_dump() text by text, first repetition):")
    lines.append(table(["pair", "equal", "different", "missing"], id_rows))
    truth = raw["correct_vs_generator"]
    lines.append(
        "right vs the generator's answers: "
        + ", ".join(f"{k} {n:,}/{rows:,}" for k, n in truth.items())
    )
    c_gs = variants["c_gather_semaphore"]["median_rows_per_s"]
    c_g = variants["c_gather"]["median_rows_per_s"]
    b_g = variants["b_gather"]["median_rows_per_s"]
    speedup = ratio(c_gs, b_sem)
    best = max(c_gs, c_g)
    mismatches = sum(
        r["different"] + r["missing"] for r in raw["identical_to_article_semaphore"].values()
    )
    verdicts = [
        Verdict(
            "P1 engine vs article stack",
            f"≥ {TARGET_SPEEDUP:g}×",
            f"{fmt_rate(c_gs)} vs {fmt_rate(b_sem)} (k={CONCURRENCY} both)",
            fmt_x(speedup),
            speedup >= TARGET_SPEEDUP,
            f"gather: {fmt_rate(c_g)} vs {fmt_rate(b_g)} = {fmt_x(ratio(c_g, b_g))}",
        ),
        Verdict(
            "P1 stretch: engine rows/s",
            f"≥ {STRETCH_RPS:,.0f}/s",
            fmt_rate(best),
            fmt_x(ratio(best, STRETCH_RPS)),
            best >= STRETCH_RPS,
            f"aiohttp floor {fmt_rate(floor)}",
        ),
        Verdict(
            "P1 identical results",
            "0 mismatches",
            f"{mismatches} of {2 * rows:,}",
            "—",
            mismatches == 0,
            "(b) sem vs (c) gather_semaphore and (c) gather",
        ),
    ]
    return GoalResult("p1", "P1 throughput", raw, "\n".join(lines), verdicts)


def run(options: Options) -> GoalResult:
    return report(asyncio.run(measure(options)))
