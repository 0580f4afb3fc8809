"""Client-side rate limits (requests and tokens per minute) and a spending budget.

Both limits are token buckets (``TokenBucket``) refilling at ``per_minute / 60`` per
second, exact at any rate from 1 a minute up (there is no one-second floor):

- requests: a bucket that holds one request, so requests leave evenly spaced
  ``60 / rpm`` seconds apart and any 60 s window holds at most ``rpm`` of them;
- tokens: a bucket holding one second's allowance (at least one token). A request
  estimated larger than the bucket waits for a full bucket and leaves a debt.

A request's token cost is estimated before sending (``core.tokens``) and
corrected from the ``usage`` the server returns, both ways: the difference is
taken from the bucket, or given back to it, and later estimates are scaled by
what answers really cost (a small schema costs ~60 tokens, not the ~140 its
text suggests), so a run reaches its ``--tpm`` instead of ~40 % of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.errors import ConfigError

Sleep = Callable[[float], Awaitable[object]]

RATIO_WEIGHT = 0.3
"""How much one answer moves the learned actual/estimated token ratio."""
RATIO_BOUNDS = (0.05, 20.0)


class TokenBucket:
    """``rate`` units a second up to ``capacity``; ``acquire(n)`` waits until n are there.

    First come, first served: callers queue on a lock, and the one at the head takes its
    units once the bucket holds them (or holds ``capacity``, for an ask larger than the
    bucket: the rest becomes a debt the refill pays off before anyone else goes). Units
    given back meanwhile (``adjust``) shorten the queue's wait, and an ask may be a
    function, evaluated when its turn comes (a token estimate learned while it queued).
    The bucket starts full."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_nap: float = 0.25,
    ) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError(f"a bucket needs a positive rate and capacity ({rate}, {capacity})")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._max_nap = max_nap
        self._level = capacity
        self._at = clock()
        self._lock = asyncio.Lock()

    @property
    def level(self) -> float:
        """Units in the bucket now (negative: a debt still being paid off)."""
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
        self._at = now
        return self._level

    async def acquire(self, amount: float | Callable[[], float] = 1.0) -> float:
        """Wait for the turn and the units; the units taken."""
        async with self._lock:
            while True:
                want = amount() if callable(amount) else amount
                need = min(want, self.capacity)
                level = self.level
                if level >= need - 1e-9:
                    self._level = level - want
                    return want
                wait = (need - level) / self.rate
                # Naps, when waits are long, so units given back are used soon.
                await self._sleep(wait if wait <= self._max_nap * 2 else self._max_nap)

    def adjust(self, amount: float) -> None:
        """Give back (positive) or take (negative) units, e.g. once the real cost is known."""
        self._level = min(self.capacity, self.level + amount)


class ClientRateLimit:
    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rpm is not None and rpm < 1:
            raise ConfigError(f"--rpm must be at least 1, got {rpm}")
        if tpm is not None and tpm < 1:
            raise ConfigError(f"--tpm must be at least 1, got {tpm}")
        self.rpm = rpm
        self.tpm = tpm
        self._requests = TokenBucket(rpm / 60, 1.0, clock=clock, sleep=sleep) if rpm else None
        self._tokens = (
            TokenBucket(tpm / 60, max(1.0, tpm / 60), clock=clock, sleep=sleep) if tpm else None
        )
        self.ratio = 1.0
        """What answers really cost per estimated token (learned from ``usage``)."""

    @property
    def active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    async def acquire(self, estimated_tokens: int) -> int:
        """Wait for a request's turn; the tokens it was charged (the estimate, scaled by
        what answers really cost so far), to pass to ``correct``."""

        def charge() -> float:
            return float(max(1, round(estimated_tokens * self.ratio)))

        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is None:
            return round(charge())
        return round(await self._tokens.acquire(charge))

    def correct(self, charged_tokens: int, actual_tokens: int) -> None:
        """The answer cost ``actual_tokens``: charge what the estimate missed, or give back
        what it over-charged, and learn the ratio for later estimates."""
        if self._tokens is None or actual_tokens <= 0 or charged_tokens <= 0:
            return
        self._tokens.adjust(charged_tokens - actual_tokens)
        raw = charged_tokens / self.ratio
        seen = actual_tokens / raw
        low, high = RATIO_BOUNDS
        self.ratio = min(high, max(low, self.ratio + RATIO_WEIGHT * (seen - self.ratio)))


@dataclass
class Budget:
    """Stop before spending more than ``limit_usd``; in-flight requests are reserved."""

    limit_usd: float
    spent_usd: float = 0.0
    reserved_usd: float = 0.0

    def reserve(self, estimate_usd: float) -> bool:
        if self.spent_usd + self.reserved_usd + estimate_usd > self.limit_usd:
            return False
        self.reserved_usd += estimate_usd
        return True

    def settle(self, estimate_usd: float, actual_usd: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - estimate_usd)
        self.spent_usd += actual_usd
