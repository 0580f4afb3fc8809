"""The sixth strategy: concurrency that finds the endpoint's limit by itself.

``AdaptiveLimit`` combines three signals, all read per HTTP response (see
``core.signals``), not per finished row:

- **AIMD** on the number of requests in flight: +1/limit per success (about
  +1 per round trip), halved on a 429 (once per round trip, so a burst of
  429s from one window counts once), and nudged down when latency climbs
  well above the fastest seen (a server queueing work instead of refusing it).
- **The server's stated limit**: once a response carries
  ``x-ratelimit-limit-requests`` (per minute), requests are paced at 95 % of
  that rate, evenly spaced (``core.ratelimit.TokenBucket``, exact at any rate),
  so a run settles just under the limit instead of bursting into it and
  bouncing off 429s. (Token limits are respected through the remaining-budget
  rule below and ``--tpm``.)
- **The server's remaining budget**: when ``x-ratelimit-remaining-requests``
  says nothing is left (counting what we sent since), nobody sends until the
  reset time it gave. Every such wait is bounded (``max_wait``) and has a timer:
  a later answer that moves the deadline re-arms it, so a run never waits on a
  wake-up that will not come. ``close()`` (the run stopping) lets every waiter go.
- **A 429 that gives no wait** (no retry-after, no reset: LiteLLM's own limit):
  nobody sends for ``bare_429_delays`` (20, 40, 60 s, the same steps as the rows'
  own backoff, ``RetryPolicy.bare_429_delays``), one step further for each such
  429 in a row, back to the first after a success, so a one-minute window is
  covered instead of knocking on it every second.

``--concurrency`` is the ceiling; the limit starts low and grows.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TypeVar

from core.dataset import Record
from core.ratelimit import TokenBucket
from core.signals import LimitInfo, listen, stop_listening

T = TypeVar("T")

START_LIMIT = 4
MAX_WAIT = 120.0
"""The longest a server's reset may hold the run (seconds), like ``RetryPolicy.max_retry_after``."""
BARE_429_DELAYS: tuple[float, ...] = (20.0, 40.0, 60.0)
"""Like ``RetryPolicy.bare_429_delays`` (the engine passes the run's own)."""
PACE_FRACTION = 0.95
LATENCY_BLOWUP = 3.0
"""Latency this many times the fastest seen means the server is queueing."""


class AdaptiveLimit:
    def __init__(
        self,
        ceiling: int,
        *,
        start: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_wait: float = MAX_WAIT,
        bare_429_delays: Sequence[float] = BARE_429_DELAYS,
    ) -> None:
        if ceiling < 1:
            raise ValueError(f"the adaptive ceiling must be at least 1, got {ceiling}")
        self.ceiling = ceiling
        self.limit = float(min(ceiling, start or START_LIMIT))
        self.in_use = 0
        self.sent = 0
        self.responses = 0
        self.rate_limited = 0
        self._clock = clock
        self.max_wait = max_wait
        self.bare_429_delays = tuple(bare_429_delays) or BARE_429_DELAYS
        self._bare_streak = 0
        """Rounds of 429s without a wait since the last success (which step is next)."""
        self._bare_at_seq = 0
        self.closed = False
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._decreased_at_seq = 0
        self._fastest: float | None = None
        self._budget: tuple[int, int, float] | None = None
        """(seq of the response's request, remaining, reset deadline)"""
        self._wake_handle: asyncio.TimerHandle | None = None
        self._wake_at = 0.0
        self.request_pacer: TokenBucket | None = None
        self.server_rpm: int | None = None
        self.server_tpm: int | None = None
        self.history: list[tuple[float, float]] = []

    # -- the gate ---------------------------------------------------------------

    @property
    def slots(self) -> int:
        return max(1, int(self.limit))

    def _may_start(self) -> bool:
        if self.closed:
            return True
        if self.in_use >= self.slots:
            return False
        if self._budget is None:
            return True
        seq, remaining, reset_at = self._budget
        if self._clock() >= reset_at:
            self._budget = None
            return True
        return remaining - (self.sent - seq) > 0

    async def acquire(self) -> None:
        while not self._may_start() or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self._arm_reset_timer()
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                else:
                    self._wake()  # we were woken but will not start: pass it on
                raise
            if self._may_start():
                break
        self.in_use += 1
        self._wake()  # more slots may be free (the limit grew, a budget reset)
        if self.request_pacer is not None and not self.closed:
            try:
                await self.request_pacer.acquire()
            except asyncio.CancelledError:
                self.release()
                raise

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._may_start():
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not self.closed:
                    break  # the woken task takes its slot when it runs, then wakes the next
        self._arm_reset_timer()

    def close(self) -> None:
        """The run is stopping: nobody waits any more (each waiter goes on to find its
        row cancelled), and nothing is paced."""
        self.closed = True
        if self._wake_handle is not None:
            self._wake_handle.cancel()
            self._wake_handle = None
        self._wake()

    def _arm_reset_timer(self) -> None:
        """While someone waits on a budget's reset, a timer fires at that reset; a later
        answer that moved the deadline moves the timer with it."""
        if self._budget is None or not self._waiters or self.closed:
            return
        reset_at = self._budget[2]
        if self._wake_handle is not None:
            if self._wake_at == reset_at:
                return
            self._wake_handle.cancel()
        delay = max(0.0, reset_at - self._clock())
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._wake_handle = None
            self._wake()

        self._wake_at = reset_at
        self._wake_handle = loop.call_later(delay, fire)

    # -- learning -----------------------------------------------------------------

    def observe(self, seq: int, status: int, latency: float, headers: Mapping[str, str]) -> None:
        self.learn(seq, status, latency, LimitInfo.from_headers(headers))

    def learn(self, seq: int, status: int, latency: float, info: LimitInfo) -> None:
        """One answer to the ``seq``-th request sent: its status, what its rate-limit
        headers said, and how long it took from sending to its headers."""
        self.responses += 1
        if status == 429:
            self.rate_limited += 1
            if seq > self._decreased_at_seq:
                self._set_limit(max(1.0, self.limit / 2))
                self._decreased_at_seq = self.sent
            wait = info.retry_after if info.retry_after is not None else info.reset_requests
            if wait is None:
                wait = self._bare_429_wait(seq)
            reset_at = self._clock() + self._bounded(wait)
            if self._budget is not None and self._budget[1] <= 0:
                reset_at = max(reset_at, self._budget[2])  # a shorter wait does not cut it
            self._budget = (self.sent, 0, reset_at)
        elif status < 500:
            if seq > self._bare_at_seq:  # sent after the last round of bare 429s
                self._bare_streak = 0
            if self._fastest is None or latency < self._fastest:
                self._fastest = latency
            if self._fastest > 0 and latency > LATENCY_BLOWUP * self._fastest + 0.05:
                if seq > self._decreased_at_seq:
                    self._set_limit(max(1.0, self.limit * 0.9))
                    self._decreased_at_seq = self.sent
            elif self.limit < self.ceiling:
                self._set_limit(min(float(self.ceiling), self.limit + 1.0 / self.limit))
            fresher = self._budget is None or seq >= self._budget[0]
            if info.remaining_requests is not None and fresher:
                reset = info.reset_requests if info.reset_requests is not None else 1.0
                self._budget = (seq, info.remaining_requests, self._clock() + self._bounded(reset))
        self._learn_rates(info)
        self._wake()

    def _bare_429_wait(self, seq: int) -> float:
        """The pause after a 429 that said nothing of how long: the next step, once per
        round trip (the other 429s of the same burst wait as long, not longer)."""
        if seq > self._bare_at_seq or self._bare_streak == 0:
            self._bare_streak += 1
            self._bare_at_seq = self.sent
        steps = self.bare_429_delays
        return steps[min(self._bare_streak, len(steps)) - 1]

    def _bounded(self, wait: float) -> float:
        return min(max(0.0, wait), self.max_wait)

    def _learn_rates(self, info: LimitInfo) -> None:
        if info.limit_requests and info.limit_requests != self.server_rpm:
            self.server_rpm = info.limit_requests
            per_second = info.limit_requests * PACE_FRACTION / 60
            self.request_pacer = TokenBucket(per_second, 1.0, clock=self._clock)
        if info.limit_tokens:
            self.server_tpm = info.limit_tokens

    def _set_limit(self, value: float) -> None:
        self.limit = value
        self.history.append((self._clock(), value))

    def slot(self) -> _Slot:
        return _Slot(self)


class _Slot:
    """Listens to one row's HTTP exchanges and reports them to the limit: made here (the
    HTTP client's hooks) or in a worker process (``core.workers``, which relays them)."""

    __slots__ = ("limit", "seq", "sent_at")

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self.seq = 0
        self.sent_at = 0.0

    def on_request(self) -> None:
        self.limit.sent += 1
        self.seq = self.limit.sent
        self.sent_at = self.limit._clock()

    def on_response(self, status: int, headers: Mapping[str, str]) -> None:
        latency = self.limit._clock() - self.sent_at
        self.limit.observe(self.seq, status, latency, headers)

    def on_relayed_answer(self, status: int, info: LimitInfo, latency: float) -> None:
        """An answer a worker process got for this row: timed there, not here, so the
        pipe's delay does not look like a server queueing."""
        self.limit.learn(self.seq, status, latency, info)

    def on_connected(self) -> None:
        return None


async def adaptive(
    records: Sequence[Record],
    extract: Callable[[Record], object],
    concurrency: int,
    *,
    limit: AdaptiveLimit | None = None,
) -> AsyncIterator[object]:
    """Workers take records in input order; results are handed over as they complete."""
    gate = limit or AdaptiveLimit(concurrency)
    results: asyncio.Queue[object] = asyncio.Queue()
    pending = iter(records)

    async def worker() -> None:
        for record in pending:
            await gate.acquire()
            token = listen(gate.slot())
            try:
                result = await extract(record)  # type: ignore[misc]
            finally:
                stop_listening(token)
                gate.release()
            results.put_nowait(result)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(records)))]
    try:
        for _ in range(len(records)):
            yield await results.get()
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
