"""Client-side rate limits (requests and tokens per minute) and a spending budget.

Both limits are leaky buckets from ``aiolimiter`` sized to one second of
allowance, so the client never bursts more than a second's worth: a client
set to R requests/minute sends at most R + R/60 in any minute, which keeps
it under a server limit a little above R.

A request's token cost is estimated before sending (``core.tokens``) and
corrected from the ``usage`` the server returns: when the answer cost more
than estimated, the difference is taken from the bucket afterwards.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from core.errors import ConfigError

WINDOW_SECONDS = 1.0


class ClientRateLimit:
    def __init__(self, rpm: int | None = None, tpm: int | None = None) -> None:
        if rpm is not None and rpm < 1:
            raise ConfigError(f"--rpm must be at least 1, got {rpm}")
        if tpm is not None and tpm < 1:
            raise ConfigError(f"--tpm must be at least 1, got {tpm}")
        self.rpm = rpm
        self.tpm = tpm
        self._requests = (
            AsyncLimiter(max(1.0, rpm * WINDOW_SECONDS / 60), WINDOW_SECONDS) if rpm else None
        )
        # A single request may need more tokens than a second's allowance; the
        # bucket must still hold it, so it is at least as large as the biggest ask.
        self._token_rate = tpm / 60 if tpm else 0.0
        self._tokens = AsyncLimiter(max(1.0, self._token_rate), 1.0) if tpm else None
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    async def acquire(self, estimated_tokens: int) -> None:
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            await self._acquire_tokens(estimated_tokens)

    async def _acquire_tokens(self, amount: int) -> None:
        assert self._tokens is not None
        capacity = self._tokens.max_rate
        while amount > 0:
            step = min(float(amount), capacity)
            await self._tokens.acquire(step)
            amount -= int(step)

    def correct(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Charge tokens the estimate missed (never refunds: over-estimates stay safe)."""
        extra = actual_tokens - estimated_tokens
        if self._tokens is None or extra <= 0:
            return
        task = asyncio.create_task(self._acquire_tokens(extra))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


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
