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
    BAD_RESPONSE = "bad_response"
    """The answer is not a chat completion: not JSON, an HTML page, no choices, too large."""
    BUDGET = "budget"
    QUOTA = "quota"
    """The account is out of quota or credit (``insufficient_quota``): the run stops."""
    EXPIRED = "expired"
    """A batch's 24 h window closed before it answered the row (``--via batch``)."""
    OTHER = "other"


@dataclass(slots=True)
class Phases:
    """Where one row's time went, in seconds, summed over its attempts.

    In the order a row lives them: its turn (the strategy's semaphore or the
    adaptive limit), then per attempt the client-side rate limiter (and the
    run-wide pause after a 429), the client's own work building the request,
    waiting for a connection (the pool's queue, a new connection's set-up),
    the wire (request sent -> answer headers), the client reading and
    validating the answer, and, before a retry, the backoff. ``latency`` is
    wire time only.
    """

    wait_sem_s: float = 0.0
    """Waiting for the strategy's semaphore / adaptive slot (``started_s - queued_s``)."""
    wait_limiter_s: float = 0.0
    """Waiting for the client-side rpm/tpm limiter, or the run-wide pause after a 429."""
    connect_s: float = 0.0
    """Waiting for a connection: the pool's queue, or a new connection's set-up (TCP, TLS)."""
    wire_s: float = 0.0
    """On the wire: request sent -> answer headers (or the failure), every attempt,
    less ``connect_s``."""
    client_s: float = 0.0
    """The client's own work: building requests, reading and validating answers."""
    backoff_s: float = 0.0
    """Sleeping between a failed attempt and the next."""
    retries_network: int = 0
    """Retries after a timeout or a dropped / refused connection."""
    retries_429: int = 0
    retries_5xx: int = 0
    retries_invalid: int = 0
    """Re-asks after an answer that did not validate."""

    @property
    def retries(self) -> int:
        return self.retries_network + self.retries_429 + self.retries_5xx + self.retries_invalid

    @property
    def waited_s(self) -> float:
        """Time not spent on the request itself: semaphore, limiter, backoff."""
        return self.wait_sem_s + self.wait_limiter_s + self.backoff_s

    def to_dict(self) -> dict[str, float | int]:
        """The fields that are not zero (what the store keeps), exactly: an export from the
        store must equal the run's own export."""
        out: dict[str, float | int] = {}
        for name in PHASE_FIELDS:
            value = getattr(self, name)
            if value:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Phases:
        """Back from ``to_dict`` (unknown keys and wrong types are ignored)."""
        phases = cls()
        for name in PHASE_FIELDS:
            value = data.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                setattr(phases, name, int(value) if name.startswith("retries") else float(value))
        return phases


PHASE_FIELDS = (
    "wait_sem_s",
    "wait_limiter_s",
    "connect_s",
    "wire_s",
    "client_s",
    "backoff_s",
    "retries_network",
    "retries_429",
    "retries_5xx",
    "retries_invalid",
)
"""``Phases``' fields, in order: the names the store and the exports use."""


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
    phases: Phases | None = None
    """Where the row's time went, once it started (None: not started, or an old store)."""
    request_ids: tuple[str, ...] = ()
    """The server's ``x-request-id`` of each attempt that sent one, in order (to quote
    to a provider's support)."""
    lenient: bool = False
    """The answer validated only with ``--lenient`` (think block or fence stripped,
    numbers sent as strings accepted)."""

    @property
    def latency_s(self) -> float | None:
        """Time on the wire (every attempt's request sent -> answer headers).

        Rows without ``phases`` (stored before they were recorded, or run by an
        extract that does not record them) fall back to started -> finished.
        """
        if self.phases is not None and self.finished_s is not None:
            return self.phases.wire_s
        return self.span_s

    @property
    def span_s(self) -> float | None:
        """From the row's start (its semaphore slot) to its end: waits, retries and all."""
        if self.started_s is None or self.finished_s is None:
            return None
        return self.finished_s - self.started_s

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
