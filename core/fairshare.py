"""Keep each pass of the event loop short when many requests complete at once.

With hundreds of requests in flight against a fast endpoint, hundreds of
responses arrive together and every one of them becomes ready in the same
pass of the event loop; each then costs a millisecond or two of parsing,
validation and building the next request. One pass can take hundreds of
milliseconds, and everything else on the loop (a dashboard's key presses,
a progress bar, the run store's writer) waits that long.

``FairShare.checkpoint()`` is awaited before each of those steps. Once the
current pass has run for ``budget`` seconds, the remaining steps wait on a
short timer instead: timers are taken after the loop has polled for I/O, so
the next pass handles input first, then carries on with a fresh budget. The
work is the same; it is only spread over more, shorter passes.
"""

from __future__ import annotations

import asyncio
import time

DEFAULT_BUDGET_S = 0.02
DEFER_S = 0.0005


class FairShare:
    def __init__(self, budget: float = DEFAULT_BUDGET_S) -> None:
        self.budget = budget
        self.deferred = 0
        self._mark: float | None = None
        self._yielding = False

    async def checkpoint(self) -> None:
        while True:
            now = time.perf_counter()
            if self._mark is None:
                self._mark = now
                # Runs at the start of the next pass, before its timers: a fresh budget.
                asyncio.get_running_loop().call_soon(self._next_pass)
                return
            if not self._yielding and now - self._mark <= self.budget:
                return
            # Over budget: wait for a later pass, and check again there (everyone
            # deferred wakes in the same pass; only the budget's worth may go on).
            self._yielding = True
            self.deferred += 1
            await asyncio.sleep(DEFER_S)

    def _next_pass(self) -> None:
        self._mark = None
        self._yielding = False
