"""The local simulator gets a core of its own; the event loop's thread keeps the others."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from core.client import choose_endpoint
from core.cores import own_core, use_all_cores
from core.engine import Engine
from core.localserver import ServerConfig


def this_thread() -> set[int]:
    """This thread's cores; off Linux (no affinity calls) a stand-in that never changes."""
    if not hasattr(os, "sched_getaffinity"):
        return {0}
    return set(os.sched_getaffinity(threading.get_native_id()))


def can_split(cores: set[int]) -> bool:
    return len(cores) >= 2 and hasattr(os, "sched_setaffinity")


@contextlib.contextmanager
def sleepers(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes that only sleep; killed, and this thread's cores put back, after."""
    before = this_thread()
    children = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        for _ in range(count)
    ]
    try:
        yield children
    finally:
        for child in children:
            child.kill()
            child.wait()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(threading.get_native_id(), before)


def test_own_core_splits_the_cores_and_restores_this_thread() -> None:
    before = this_thread()
    with sleepers(1) as [child]:
        restore = own_core(child.pid)
        if not can_split(before):  # nothing to split: nothing changes
            assert restore is None
            assert this_thread() == before
            return
        assert restore is not None
        assert set(os.sched_getaffinity(child.pid)) == {max(before)}
        assert this_thread() == before - {max(before)}
        restore()
        assert this_thread() == before


def test_two_simulators_share_the_given_core_until_both_are_restored() -> None:
    before = this_thread()
    with sleepers(2) as children:
        first, second = (own_core(child.pid) for child in children)
        if not can_split(before):
            assert first is None and second is None
            return
        assert first is not None and second is not None
        core = {max(before)}
        assert [set(os.sched_getaffinity(c.pid)) for c in children] == [core, core]
        first()
        first()  # twice is once
        assert this_thread() == before - core  # the second still holds the pin
        second()
        assert this_thread() == before


def test_own_core_of_a_gone_process_changes_nothing() -> None:
    before = this_thread()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert own_core(child.pid) is None
    assert this_thread() == before


@pytest.mark.parametrize("latency", [0.0, 0.2])
async def test_the_engine_pins_a_simulator_with_latency_until_it_closes(latency: float) -> None:
    """With latency the simulator gets a core until the engine closes; at zero
    latency (never idle, sharing measured faster) the cores stay shared."""
    before = this_thread()
    engine = Engine(choose_endpoint(local=True), server=ServerConfig(latency=latency))
    async with engine:
        server = engine._server
        assert server is not None and server.pid is not None
        if latency > 0 and can_split(before):
            core = set(os.sched_getaffinity(server.pid))
            assert len(core) == 1
            assert this_thread() == before - core
        else:
            assert this_thread() == before
            if hasattr(os, "sched_getaffinity"):
                assert set(os.sched_getaffinity(server.pid)) == before
    assert this_thread() == before


def test_a_helper_thread_started_by_a_pinned_thread_gets_every_core_back() -> None:
    before = this_thread()
    seen: dict[str, set[int]] = {}

    def helper() -> None:
        seen["inherited"] = this_thread()
        use_all_cores()
        seen["after"] = this_thread()

    with sleepers(1) as [child]:
        restore = own_core(child.pid)
        thread = threading.Thread(target=helper)
        thread.start()
        thread.join()
        if restore is None:  # nothing was split: nothing to give back
            assert seen == {"inherited": before, "after": before}
            return
        assert seen["inherited"] == before - {max(before)}
        assert seen["after"] == before
        restore()
