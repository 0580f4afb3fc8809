"""Keep each pass of the event loop short when many requests complete at once.

With hundreds of requests in flight against a fast endpoint, hundreds of
responses arrive together and every one of them becomes ready in the same
pass of the event loop; each then costs a millisecond or two of parsing,
validation and building the next request. One pass can take hundreds of
milliseconds, and everything else on the loop (a dashboard's key presses,
a progress bar, the run store's writer) waits that long.

``FairShare.checkpoint()`` is awaited before each of those steps. Once the
current pass has run for ``budget`` seconds, later steps queue up instead,
first come first served, and are let go in batches from a short timer:
timers are taken after the loop has polled for I/O, so the next pass handles
input first, then carries on with a fresh budget. The work is the same; it
is only spread over more, shorter passes.

Only a batch wakes per pass, never the whole queue: with 10,000 requests
started at once (``gather`` without a semaphore), waking every waiter on
every pass to re-check the budget would itself take a 100-200 ms pass. The
batch doubles while a whole batch fits in a pass's budget; when it does not,
the next batch is what fitted.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

DEFAULT_BUDGET_S = 0.02
DEFER_S = 0.0005
FIRST_BATCH = 16
MAX_BATCH = 1024


class FairShare:
    def __init__(self, budget: float = DEFAULT_BUDGET_S) -> None:
        self.budget = budget
        self.deferred = 0
        """Checkpoints that had to wait for a later pass."""
        self.wakeups = 0
        """Times a waiting step was woken (a step woken into a full pass queues again)."""
        self._mark: float | None = None
        self._queue: deque[asyncio.Future[None]] = deque()
        self._again: deque[asyncio.Future[None]] = deque()
        """Woken into a pass that was already full: served before ``_queue``, in order."""
        self._retry: list[asyncio.Future[None]] = []
        """Woken by the last release and turned back: they go to the front of ``_again``."""
        self._timer: asyncio.TimerHandle | None = None
        self._batch = FIRST_BATCH
        self._went = 0

    @property
    def waiting(self) -> int:
        lines = (self._retry, self._again, self._queue)
        return sum(1 for line in lines for turn in line if not turn.done())

    async def checkpoint(self) -> None:
        if not (self._queue or self._again or self._retry) and self._has_budget():
            return
        self.deferred += 1
        line: deque[asyncio.Future[None]] | list[asyncio.Future[None]] = self._queue
        loop = asyncio.get_running_loop()
        while True:
            turn: asyncio.Future[None] = loop.create_future()
            line.append(turn)
            self._arm(loop)
            await turn  # cancelling the task cancels `turn`; _release skips it
            self.wakeups += 1
            if self._has_budget():
                self._went += 1
                return
            line = self._retry  # woken too late in a pass: keeps its place in line

    def _has_budget(self) -> bool:
        now = time.perf_counter()
        if self._mark is None:
            self._mark = now
            # Runs at the start of the next pass, before its timers: a fresh budget.
            asyncio.get_running_loop().call_soon(self._next_pass)
            return True
        return now - self._mark <= self.budget

    def _next_pass(self) -> None:
        self._mark = None

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None:
            self._timer = loop.call_later(DEFER_S, self._release)

    def _release(self) -> None:
        """Wake the next batch; they run in the coming pass, after its input."""
        self._timer = None
        if self._retry:  # some of the last batch were turned back
            self._batch = max(1, self._went)  # what fitted in the last pass
        elif self._batch < MAX_BATCH:
            self._batch *= 2
        self._went = 0
        if self._retry:
            self._again.extendleft(reversed(self._retry))
            self._retry = []
        woken = 0
        for line in (self._again, self._queue):
            while line and woken < self._batch:
                turn = line.popleft()
                if not turn.done():
                    turn.set_result(None)
                    woken += 1
        if self._again or self._queue:
            self._arm(asyncio.get_running_loop())
