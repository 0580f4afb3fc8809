"""Give the local simulator a CPU core of its own, and the event loop the others.

On a small machine the simulator and the client share the CPUs with nothing
between them. When a request reaches an idle simulator, Linux often wakes it
on the client's own core, so the client's ``send()`` returns only after the
simulator has handled the request there: a send that costs ~50 µs took
300-600 µs at the 90th percentile (measured with 10 requests in flight at
0.2 s latency, on 2 cores), and every wave of requests paid it. Pinned, 100
rows at k = 10 took 1.029× the ideal instead of 1.048×, and 1,000 rows at
k = 50 1.054× instead of 1.069× (alternated in one process).

A simulator at zero latency is never idle, and there pinning measured 4-10 %
slower (10,000 rows at k = 200, and a for loop), so the engine pins only a
simulator with latency.

:func:`own_core` pins the simulator's process to the last usable core and the
calling thread (the one running the event loop) to the rest, and returns a
function that puts the thread back. It does nothing where it cannot help:
off Linux, with a single usable core, or when the system refuses. A thread
that already gave a core away (two engines at once) pins the next simulator
to the same core and gets its cores back when the last one is restored.

Threads started by a pinned thread inherit its cores; a helper thread (the
run store's writer) calls :func:`use_all_cores` first to get them all back.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable

_lock = threading.Lock()
_pinned: dict[int, tuple[set[int], int]] = {}
"""Pinned threads: the cores each had before, and how many simulators hold the pin."""


def own_core(child_pid: int) -> Callable[[], None] | None:
    """Pin ``child_pid`` to one core and this thread to the others.

    Returns the function that restores this thread's cores (call it once the
    child is gone; calling it again does nothing), or None when nothing was
    changed.
    """
    setaffinity = getattr(os, "sched_setaffinity", None)
    getaffinity = getattr(os, "sched_getaffinity", None)
    if setaffinity is None or getaffinity is None:
        return None
    thread = threading.get_native_id()
    with _lock:
        held = _pinned.get(thread)
        try:
            mine = held[0] if held is not None else set(getaffinity(thread))
        except OSError:
            return None
        if len(mine) < 2:
            return None
        core = max(mine)
        try:
            setaffinity(child_pid, {core})
            if held is None:
                setaffinity(thread, mine - {core})
        except OSError:
            if held is None:
                with contextlib.suppress(OSError):
                    setaffinity(thread, mine)
            return None
        _pinned[thread] = (mine, 1 if held is None else held[1] + 1)

    restored = False

    def restore() -> None:
        nonlocal restored
        with _lock:
            if restored:
                return
            restored = True
            cores, holders = _pinned[thread]
            if holders > 1:
                _pinned[thread] = (cores, holders - 1)
                return
            del _pinned[thread]
            with contextlib.suppress(OSError):
                setaffinity(thread, cores)

    return restore


def use_all_cores() -> None:
    """Give the calling thread every core a pinned thread had before it was pinned.

    For helper threads started while the event loop's thread is pinned (they
    would inherit its cores and compete with it); does nothing otherwise.
    """
    setaffinity = getattr(os, "sched_setaffinity", None)
    with _lock:
        cores = set().union(*(mine for mine, _ in _pinned.values()))
    if setaffinity is None or not cores:
        return
    with contextlib.suppress(OSError):
        setaffinity(threading.get_native_id(), cores)


def all_cores() -> frozenset[int] | None:
    """The cores this process may use, as before any simulator was pinned (for child
    processes that should not inherit a pinned thread's smaller set); None off Linux."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    with _lock:
        cores = set().union(*(mine for mine, _ in _pinned.values()))
    try:
        return frozenset(cores or getaffinity(0))
    except OSError:
        return None
