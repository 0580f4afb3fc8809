"""One row of a run: what happened to one record, and when.

A row is a plain mutable record owned by the runner. Times are offsets in
seconds from the run's start (``time.monotonic()`` at start), so they compare
across strategies and survive export. A failed row is a row with an error,
never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
"""Shared by every row without input columns of its own."""


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (Status.OK, Status.FAILED, Status.CANCELLED)


class ErrorKind(StrEnum):
    """Why a row failed, coarse enough to count."""

    RATE_LIMIT = "429"
    SERVER = "5xx"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    VALIDATION = "validation"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    BUDGET = "budget"
    OTHER = "other"


@dataclass(slots=True)
class Row:
    index: int
    id: str
    text: str
    status: Status = Status.PENDING
    data: dict[str, Any] | None = None
    """The extracted object as JSON-ready data (``model_dump(mode="json")``)."""
    value: Any = None
    """The pydantic object itself, when the run keeps them (``Run(keep_values=True)``)."""
    error: str | None = None
    error_kind: ErrorKind | None = None
    queued_s: float | None = None
    """When the row was handed to the strategy: 0 (the run's start) for every row;
    ``started_s - queued_s`` is how long it waited its turn."""
    started_s: float | None = None
    finished_s: float | None = None
    delivered_s: float | None = None
    attempts: int = 0
    rate_limited: int = 0
    """How many of this row's attempts were answered 429."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=lambda: NO_EXTRA)
    """The input's other columns (everything but the id and the text), as loaded."""
    guessed: tuple[str, ...] = ()
    """Field paths the endpoint says it made up rather than found (the simulator's
    placeholders for a schema its rules do not cover), e.g. ``customer.name``,
    ``line_items[].quantity``."""

    @property
    def latency_s(self) -> float | None:
        """Request time: from the first attempt's start to the answer (retries included)."""
        if self.started_s is None or self.finished_s is None:
            return None
        return self.finished_s - self.started_s

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
