"""Garbage-collector settings for the length of a run.

A run allocates a few small objects per request at a high rate. With the
default thresholds CPython's cyclic collector runs very often and, as the
heap grows, its full (generation 2) passes take 100-170 ms each on this kind
of machine; each one stalls the event loop (and so a dashboard's key
presses) and together they cost a third of the throughput at zero latency
(see benchmarks/). During a run we move what already exists out of the
collector's sight (``gc.freeze``) and collect less often; reference counting
still frees almost everything at once, the collector only looks for cycles.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

RUN_THRESHOLDS = (50_000, 50, 100)


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Freeze the heap built so far and raise the collection thresholds until exit."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*RUN_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
