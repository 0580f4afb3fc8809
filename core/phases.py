"""Timing one row's phases as it goes, and counting the requests on the wire.

``RowClock`` is a stopwatch with one hand: at every boundary (the limiter let
the row go, its request was sent, the answer's headers came in, a retry
starts its backoff) it credits the time since the last boundary to the phase
that just ended, in the row's ``Phases``. It is also the row's listener for
HTTP exchanges (``core.signals``), so "sent" and "headers in" are stamped
where the HTTP client reports them, not guessed around the SDK call.

``WireGauge`` counts a run's requests between "sent" and "headers in" (or
the failure), less any wait for a connection (the pool's queue, a new
connection's set-up: the ``connect`` phase): that, not the rows holding a
semaphore slot or waiting for the rate limiter, is what "in flight" means.

A few floats and one comparison per boundary: no allocation beyond the
``Phases`` the runner hands in and this object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from core.results import ErrorKind, Phases

LIMITER, CLIENT, WIRE, BACKOFF, CONNECT = 0, 1, 2, 3, 4


class WireGauge:
    """Requests on the wire now, and the most at once."""

    __slots__ = ("in_flight", "max_in_flight")

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0

    def sent(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def answered(self) -> None:
        self.in_flight -= 1


class RowClock:
    """One row's stopwatch; starts in the limiter phase (the first thing a row waits for)."""

    __slots__ = (
        "_clock",
        "_mark",
        "_state",
        "_traced",
        "attempts",
        "phases",
        "rate_limited",
        "wire",
    )

    def __init__(
        self,
        phases: Phases,
        wire: WireGauge | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        traced: bool = False,
    ) -> None:
        """``traced``: the client reports when each request has its connection
        (``on_connected``); until then a sent request waits for one, off the wire."""
        self.phases = phases
        self.wire = wire
        self._traced = traced
        self.attempts = 0
        self.rate_limited = 0
        self._clock = clock
        self._mark = clock()
        self._state = LIMITER

    def _switch(self, state: int) -> None:
        now = self._clock()
        spent = now - self._mark
        phases = self.phases
        current = self._state
        if current == WIRE:
            phases.wire_s += spent
        elif current == CLIENT:
            phases.client_s += spent
        elif current == LIMITER:
            phases.wait_limiter_s += spent
        elif current == BACKOFF:
            phases.backoff_s += spent
        else:
            phases.connect_s += spent
        self._mark = now
        self._state = state

    # -- the extractor's boundaries ------------------------------------------------

    def waiting(self) -> None:
        """The row waits for the rate limiter (or the run-wide 429 pause)."""
        self._switch(LIMITER)

    def working(self) -> None:
        """The row is the client's: building a request, reading an answer."""
        if self._state != CLIENT:
            self._switch(CLIENT)

    def failed(self) -> None:
        """An attempt ended without an answer's headers (timeout, dropped connection)."""
        self._off_wire()

    def backing_off(self, kind: ErrorKind) -> None:
        """A retry after ``kind``: what follows until the next attempt is backoff."""
        phases = self.phases
        if kind is ErrorKind.RATE_LIMIT:
            phases.retries_429 += 1
        elif kind is ErrorKind.SERVER:
            phases.retries_5xx += 1
        else:
            phases.retries_network += 1
        self._off_wire()
        self._switch(BACKOFF)

    def reasking(self) -> None:
        self.phases.retries_invalid += 1

    def stop(self) -> None:
        """The row is done (or cancelled): credit the last phase, leave the wire."""
        self._off_wire()
        self._switch(CLIENT)

    def _off_wire(self) -> None:
        if self._state == WIRE:
            if self.wire is not None:
                self.wire.answered()
            self._switch(CLIENT)
        elif self._state == CONNECT:
            self._switch(CLIENT)

    # -- core.signals' listener ----------------------------------------------------

    def on_request(self) -> None:
        self.attempts += 1
        if self._traced:
            self._switch(CONNECT)
        else:
            self._go_on_the_wire()

    def on_connected(self) -> None:
        if self._state == CONNECT:
            self._go_on_the_wire()

    def _go_on_the_wire(self) -> None:
        self._switch(WIRE)
        if self.wire is not None:
            self.wire.sent()

    def on_response(self, status: int, headers: Mapping[str, str]) -> None:
        if status == 429:
            self.rate_limited += 1
        self._off_wire()
