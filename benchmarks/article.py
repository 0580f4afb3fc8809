"""The article's own code, against ``fanout serve --latency 0.2 --jitter 0``.

The five methods of instructor's "Async processing OpenAI using asyncio and
Instructor", written as the article writes them, with two changes:
``instructor.from_openai`` instead of the deprecated ``instructor.apatch``
(and the simulator's URL), and each method returns its list so that we can
check it. Run in TOOLS, JSON and MD_JSON modes; each method's time is printed
next to the physics of 7 requests of 0.2 s (for loop 7 waves, gather and
as_completed 1, Semaphore(2) ceil(7/2) = 4) and the article's own figures.

    python -m benchmarks.article          # or: python -m benchmarks article
"""

from __future__ import annotations

import asyncio
import time
from asyncio import Semaphore
from collections.abc import Awaitable, Callable
from typing import Any

import instructor
from openai import AsyncOpenAI
from pydantic import BaseModel

from benchmarks.common import (
    GoalResult,
    Options,
    Verdict,
    close_instructor,
    fmt_runs,
    fmt_s,
    fmt_x,
    median,
    progress,
    table,
)
from core.localserver import LocalServer, ServerConfig

LATENCY = 0.2
MODES = {
    "TOOLS": instructor.Mode.TOOLS,
    "JSON": instructor.Mode.JSON,
    "MD_JSON": instructor.Mode.MD_JSON,
}

# -- the article's code ------------------------------------------------------------------

client: instructor.AsyncInstructor
"""Set per mode: ``instructor.from_openai(AsyncOpenAI(base_url=..., api_key=...), mode=...)``."""


class Person(BaseModel):
    name: str
    age: int


async def extract_person(text: str) -> Person:
    return await client.chat.completions.create(
        model="gpt-3.5-turbo",
        messages=[
            {"role": "user", "content": text},
        ],
        response_model=Person,
    )


dataset = [
    "My name is John and I am 20 years old",
    "My name is Mary and I am 21 years old",
    "My name is Bob and I am 22 years old",
    "My name is Alice and I am 23 years old",
    "My name is Jane and I am 24 years old",
    "My name is Joe and I am 25 years old",
    "My name is Jill and I am 26 years old",
]


async def for_loop() -> list[Person]:
    persons = []
    for text in dataset:
        person = await extract_person(text)
        persons.append(person)
    return persons


async def gather() -> list[Person]:
    tasks_get_persons = [extract_person(text) for text in dataset]
    all_persons = await asyncio.gather(*tasks_get_persons)
    return all_persons


async def as_completed() -> list[Person]:
    all_persons = []
    tasks_get_persons = [extract_person(text) for text in dataset]
    for person in asyncio.as_completed(tasks_get_persons):
        all_persons.append(await person)  # noqa: PERF401 - the article's code as written
    return all_persons


async def rate_limited_extract_person(text: str, sem: Semaphore) -> Person:
    async with sem:
        return await extract_person(text)


async def rate_limited_gather(sem: Semaphore) -> list[Person]:
    tasks_get_persons = [rate_limited_extract_person(text, sem) for text in dataset]
    resp = await asyncio.gather(*tasks_get_persons)
    return resp


async def rate_limited_as_completed(sem: Semaphore) -> list[Person]:
    all_persons = []
    tasks_get_persons = [rate_limited_extract_person(text, sem) for text in dataset]
    for person in asyncio.as_completed(tasks_get_persons):
        all_persons.append(await person)  # noqa: PERF401 - the article's code as written
    return all_persons


# -- measuring it -------------------------------------------------------------------------

EXPECTED = [
    ("John", 20),
    ("Mary", 21),
    ("Bob", 22),
    ("Alice", 23),
    ("Jane", 24),
    ("Joe", 25),
    ("Jill", 26),
]

METHODS: list[tuple[str, Callable[[], Awaitable[list[Person]]], int, float]] = [
    ("for loop", for_loop, 7, 6.17),
    ("asyncio.gather", gather, 1, 0.85),
    ("asyncio.as_completed", as_completed, 1, 0.95),
    ("gather + Semaphore(2)", lambda: rate_limited_gather(Semaphore(2)), 4, 3.04),
    ("as_completed + Semaphore(2)", lambda: rate_limited_as_completed(Semaphore(2)), 4, 3.26),
]
"""(label, method, waves of one latency, the article's measured seconds)"""


def check(persons: list[Person]) -> tuple[bool, bool]:
    """(all 7 right, in the input order)."""
    got = [(p.name, p.age) for p in persons]
    return sorted(got) == sorted(EXPECTED), got == EXPECTED


async def measure_modes(base_url: str, repeat: int, options: Options) -> dict[str, Any]:
    global client
    out: dict[str, Any] = {}
    for mode_name, mode in MODES.items():
        client = instructor.from_openai(
            AsyncOpenAI(base_url=base_url, api_key="sk-local"), mode=mode
        )
        try:
            await extract_person(dataset[0])  # warm-up: connection, schema caches
            rows = []
            for label, method, waves, article_s in METHODS:
                times = []
                right = True
                input_order = True
                errors: list[str] = []
                for r in range(repeat):
                    progress(options, f"article: {mode_name} {label} {r + 1}/{repeat}")
                    start = time.perf_counter()
                    try:
                        persons = await method()
                    except Exception as exc:  # the article's code has no error handling
                        times.append(time.perf_counter() - start)
                        errors.append(f"{type(exc).__name__}: {exc}"[:120])
                        right = False
                        continue
                    times.append(time.perf_counter() - start)
                    all_right, ordered = check(persons)
                    right = right and all_right
                    input_order = input_order and ordered
                ideal = waves * LATENCY
                rows.append(
                    {
                        "method": label,
                        "times_s": times,
                        "median_s": median(times),
                        "physics_s": ideal,
                        "ratio": median(times) / ideal,
                        "all_right": right,
                        "input_order": input_order,
                        "article_s": article_s,
                        "errors": errors,
                    }
                )
            out[mode_name] = rows
        finally:
            await close_instructor(client)
    return out


async def measure(options: Options) -> dict[str, Any]:
    repeat = 1 if options.quick else options.repeat
    async with LocalServer(ServerConfig(latency=LATENCY, jitter=0.0)) as server:
        progress(
            options, f"article: fanout serve --latency {LATENCY:g} --jitter 0 at {server.base_url}"
        )
        modes = await measure_modes(server.base_url, repeat, options)
    return {"latency": LATENCY, "repeat": repeat, "modes": modes}


def report(raw: dict[str, Any]) -> GoalResult:
    lines = [
        f"the article's five methods over its 7 texts; server latency {raw['latency']:g} s, "
        f"jitter 0; {raw['repeat']} repetition(s), median; physics = waves × "
        f"{raw['latency']:g} s; article = its own figures (gpt-3.5-turbo, real network)"
    ]
    all_right = True
    worst = 0.0
    for mode, rows in raw["modes"].items():
        body = []
        for row in rows:
            all_right = all_right and row["all_right"]
            worst = max(worst, row["ratio"])
            body.append(
                [
                    row["method"],
                    fmt_s(row["median_s"], 3),
                    fmt_runs(row["times_s"], digits=3),
                    fmt_s(row["physics_s"], 1),
                    fmt_x(row["ratio"], 3),
                    "7/7 yes" if row["all_right"] else "NO",
                    "input" if row["input_order"] else "completion",
                    fmt_s(row["article_s"], 2),
                    "; ".join(row["errors"][:1]),
                ]
            )
        lines += [
            "",
            f"mode {mode}:",
            table(
                [
                    "method",
                    "time",
                    "each run",
                    "physics",
                    "ratio",
                    "all 7 right",
                    "order",
                    "article",
                    "error",
                ],
                body,
            ),
        ]
    verdicts = [
        Verdict(
            "article code: 7 people right",
            "every mode and method",
            "all right" if all_right else "some wrong or failed",
            "—",
            all_right,
            ", ".join(raw["modes"]),
        ),
        Verdict(
            "article code vs physics (worst)",
            "reported",
            fmt_x(worst, 3),
            fmt_x(worst, 3),
            None,
            "not a goal: the client's cost on 7 requests",
        ),
    ]
    return GoalResult("article", "the article's code", raw, "\n".join(lines), verdicts)


def run(options: Options) -> GoalResult:
    return report(asyncio.run(measure(options)))


if __name__ == "__main__":
    result = run(Options(repeat=3))
    print(result.text)
