"""``--strategy adaptive`` with worker processes or Ray actors: each attempt's signals,
relayed (a worker's pipe, an actor's stream).

The adaptive strategy (``core.adaptive``) learns from every HTTP exchange of
the rows it lets go: a request sent, its answer's status, latency and
rate-limit headers. In one process the HTTP client's hooks tell it directly
(``core.signals``). With ``--workers N`` the strategy, and its one
``AdaptiveLimit``, stay in the parent while the requests are made by the
workers, so a worker tells the parent instead: ``SENT`` when a row's request
goes out and ``ANSWER`` when its headers are in, in the frame of that loop pass
with the row's other messages. The parent hands them to the listeners the
row's task had (the adaptive slot), so the run has one controller learning
from every worker's answers, not N controllers each seeing a part.

What crosses the pipe is only what the controller reads: the status, the
latency (timed in the worker, so the pipe's own delay does not look like a
server queueing) and the seven rate-limit values already parsed
(``LimitInfo``), or None when the answer had none. Connection events are not
relayed: the adaptive slot does nothing with them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from core.signals import LimitInfo, RelayedListener
from core.workers import protocol as p


class Sink(Protocol):
    """Where a worker's messages go: its pipe's ``Outbox``, or a Ray actor's stream."""

    def put(self, message: tuple[Any, ...]) -> None: ...


class Relay:
    """In a worker (or a Ray actor): listens to one row's exchanges and sends them to the
    parent (or the driver)."""

    __slots__ = ("index", "outbox", "sent_at")

    def __init__(self, outbox: Sink, index: int) -> None:
        self.outbox = outbox
        self.index = index
        self.sent_at = 0.0

    def on_request(self) -> None:
        self.sent_at = time.monotonic()
        self.outbox.put((p.SENT, self.index))

    def on_response(self, status: int, headers: Mapping[str, str]) -> None:
        latency = time.monotonic() - self.sent_at
        limits = LimitInfo.from_headers(headers).values()
        self.outbox.put((p.ANSWER, self.index, status, latency, limits))

    def on_connected(self) -> None:
        return None


NO_LIMITS = LimitInfo()


def replay(listeners: tuple[RelayedListener, ...], message: tuple[Any, ...]) -> None:
    """In the parent: a worker's ``SENT`` or ``ANSWER`` told to the row's listeners."""
    if message[0] == p.SENT:
        for listener in listeners:
            listener.on_request()
        return
    _, _, status, latency, limits = message
    info = NO_LIMITS if limits is None else LimitInfo(*limits)
    for listener in listeners:
        listener.on_relayed_answer(status, info, latency)
