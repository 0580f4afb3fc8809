"""Run a few rows through the real engine (instructor + openai over HTTP) against a test
server on loopback: the shared step of the hostile-server and compatibility suites."""

from __future__ import annotations

import asyncio

from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import ClientOptions, Engine
from core.models import Person
from core.results import Row

TEXT = "My name is Ann and I am 30"


async def run_rows(base_url: str, key: str, options: ClientOptions, rows: int) -> list[Row]:
    """``rows`` copies of one sentence, all at once (gather), extracted as ``Person``."""
    endpoint = choose_endpoint(base_url=base_url, env={"OPENAI_API_KEY": key})
    async with (
        Engine(endpoint, options=options) as engine,
        engine.run(
            records_from_texts([TEXT] * rows), Person, strategy="gather", concurrency=rows
        ) as run,
    ):
        await asyncio.wait_for(run.execute(), 60)  # a guard against a hang only
    return run.rows
