"""The SDK client under a run: set up so that a run's first pass does not stall."""

from __future__ import annotations

from typing import Any

import openai._base_client as sdk_base
import pytest

from core.client import choose_endpoint
from core.dataset import Record
from core.engine import Engine
from core.localserver import ServerConfig
from core.models import Person


async def test_a_run_never_makes_the_sdk_look_up_the_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Left to itself the SDK looks the platform up in a thread on a client's first
    request, once for every request that starts before that thread returns: 60
    threads for 60 rows, then 60 continuations in one pass of the loop."""
    real = sdk_base.get_platform
    lookups: list[Any] = []

    def counting() -> Any:
        lookups.append(1)
        return real()

    monkeypatch.setattr(sdk_base, "get_platform", counting)
    texts = [f"My name is Person{i} and I am {20 + i} years old" for i in range(60)]
    rows = [Record(i, f"p{i}", text) for i, text in enumerate(texts)]
    engine = Engine(choose_endpoint(local=True), server=ServerConfig(latency=0.05, jitter=0.0))
    async with engine, engine.run(rows, Person, strategy="gather", concurrency=60) as run:
        stats = await run.execute()
    assert stats.ok == 60
    assert lookups == []
