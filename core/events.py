"""Typed events a run emits, in the order they happen.

Events are small and refer to rows by index; the row itself (``Run.rows``)
holds the data. Subscribers are plain callables, called on the event loop, so
they must be quick (append to a buffer, bump a counter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.stats import RunStats


@dataclass(frozen=True, slots=True)
class RowStarted:
    """A row got its turn from the strategy (its semaphore slot); its request may still
    wait for the client-side rate limiter before it is sent (see ``Row.phases``)."""

    index: int
    at: float


@dataclass(frozen=True, slots=True)
class RowFinished:
    """A row's request ended: ok, failed or cancelled (see the row's status)."""

    index: int
    at: float


@dataclass(frozen=True, slots=True)
class RowRetrying:
    """A row's attempt failed and will be retried after ``delay`` seconds."""

    index: int
    at: float
    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class RowDelivered:
    """The strategy handed the row to its caller (gather: all at the end)."""

    index: int
    at: float


@dataclass(frozen=True, slots=True)
class RunStopping:
    """The run was asked to stop (cancel, error budget, cost budget)."""

    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The run is over; every row is ok, failed or cancelled."""

    at: float
    stats: RunStats


Event = RowStarted | RowFinished | RowRetrying | RowDelivered | RunStopping | RunEnded
Listener = Callable[[Event], None]
