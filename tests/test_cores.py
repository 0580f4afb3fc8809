"""The local simulator gets a core of its own; the event loop's thread keeps the others."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from core.client import choose_endpoint
from core.cores import own_core, use_all_cores
from core.engine import Engine
from core.localserver import ServerConfig


def this_thread() -> set[int]:
    """This thread's cores; off Linux (no affinity calls) a stand-in that never changes."""
    if not hasattr(os, "sched_getaffinity"):
        return {0}
    return set(os.sched_getaffinity(threading.get_native_id()))


def test_own_core_splits_the_cores_and_restores_this_thread() -> None:
    before = this_thread()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        restore = own_core(child.pid)
        if len(before) < 2 or not hasattr(os, "sched_setaffinity"):  # nothing changes
            assert restore is None
            assert this_thread() == before
            return
        assert restore is not None
        assert set(os.sched_getaffinity(child.pid)) == {max(before)}
        assert this_thread() == before - {max(before)}
        restore()
        assert this_thread() == before
    finally:
        child.kill()
        child.wait()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(threading.get_native_id(), before)


def test_two_simulators_share_the_given_core_until_both_are_restored() -> None:
    before = this_thread()
    sleepers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)
    ]
    try:
        first = own_core(sleepers[0].pid)
        second = own_core(sleepers[1].pid)
        if len(before) < 2 or not hasattr(os, "sched_setaffinity"):
            assert first is None and second is None
            return
        assert first is not None and second is not None
        core = {max(before)}
        assert [set(os.sched_getaffinity(p.pid)) for p in sleepers] == [core, core]
        first()
        first()  # twice is once
        assert this_thread() == before - core  # the second still holds the pin
        second()
        assert this_thread() == before
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(threading.get_native_id(), before)


def test_own_core_of_a_gone_process_changes_nothing() -> None:
    before = this_thread()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert own_core(child.pid) is None
    assert this_thread() == before


async def test_a_simulator_without_latency_shares_the_cores() -> None:
    before = this_thread()
    engine = Engine(choose_endpoint(local=True), server=ServerConfig(latency=0.0))
    async with engine:
        server = engine._server
        assert server is not None and server.pid is not None
        assert this_thread() == before
        if hasattr(os, "sched_getaffinity"):
            assert set(os.sched_getaffinity(server.pid)) == before


async def test_the_engine_gives_its_simulator_a_core_until_it_closes() -> None:
    before = this_thread()
    engine = Engine(choose_endpoint(local=True), server=ServerConfig(latency=0.2))
    async with engine:
        server = engine._server
        assert server is not None and server.pid is not None
        if len(before) >= 2 and hasattr(os, "sched_setaffinity"):
            core = set(os.sched_getaffinity(server.pid))
            assert len(core) == 1
            assert this_thread() == before - core
        else:
            assert this_thread() == before
    assert this_thread() == before


def test_a_helper_thread_started_by_a_pinned_thread_gets_every_core_back() -> None:
    before = this_thread()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    seen: dict[str, set[int]] = {}

    def helper() -> None:
        seen["inherited"] = this_thread()
        use_all_cores()
        seen["after"] = this_thread()

    try:
        restore = own_core(child.pid)
        thread = threading.Thread(target=helper)
        thread.start()
        thread.join()
        if restore is None:  # one core, or no affinity calls: nothing to give back
            assert seen == {"inherited": before, "after": before}
            return
        assert seen["inherited"] == before - {max(before)}
        assert seen["after"] == before
        restore()
    finally:
        child.kill()
        child.wait()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(threading.get_native_id(), before)
