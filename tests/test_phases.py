"""Phase accounting with a fake clock: every second lands in exactly one phase."""

from __future__ import annotations

import pytest

from core.phases import RowClock, WireGauge
from core.results import ErrorKind, Phases, Row, Status


class FakeClock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_row_that_waits_for_the_limiter_then_is_retried_after_a_429() -> None:
    clock = FakeClock()
    wire = WireGauge()
    phases = Phases(wait_sem_s=0.5)
    row = RowClock(phases, wire, clock)

    clock.advance(3.0)  # the rpm limiter holds the row
    row.working()
    clock.advance(0.01)  # the SDK builds the request
    row.on_request()
    assert wire.in_flight == 1
    clock.advance(0.8)
    row.on_response(429, {})
    assert wire.in_flight == 0
    clock.advance(0.02)  # reading the refusal
    row.failed()  # the SDK raised after the headers: already off the wire
    row.backing_off(ErrorKind.RATE_LIMIT)
    clock.advance(1.5)
    row.waiting()
    clock.advance(0.2)  # the limiter again
    row.working()
    row.on_request()
    clock.advance(0.8)
    row.on_response(200, {})
    clock.advance(0.05)  # body + validation
    row.reasking()
    row.waiting()
    row.working()
    row.on_request()
    clock.advance(0.7)
    row.on_response(200, {})
    clock.advance(0.03)
    row.stop()

    assert phases.wait_sem_s == 0.5
    assert phases.wait_limiter_s == pytest.approx(3.2)
    assert phases.wire_s == pytest.approx(2.3)
    assert phases.client_s == pytest.approx(0.11)
    assert phases.backoff_s == pytest.approx(1.5)
    assert (phases.retries_429, phases.retries_5xx, phases.retries_network) == (1, 0, 0)
    assert phases.retries_invalid == 1 and phases.retries == 2
    assert (row.attempts, row.rate_limited) == (3, 1)
    assert wire.in_flight == 0 and wire.max_in_flight == 1
    total = phases.wait_limiter_s + phases.wire_s + phases.client_s + phases.backoff_s
    assert total == pytest.approx(clock.now - 10.0)


def test_a_timeout_counts_its_wait_as_wire_and_leaves_the_wire() -> None:
    clock = FakeClock()
    wire = WireGauge()
    phases = Phases()
    row = RowClock(phases, wire, clock)
    row.working()
    row.on_request()
    clock.advance(60.0)
    row.failed()  # no headers ever came
    assert wire.in_flight == 0
    row.backing_off(ErrorKind.TIMEOUT)
    clock.advance(0.5)
    row.waiting()
    row.working()
    row.on_request()
    clock.advance(1.0)
    row.backing_off(ErrorKind.CONNECTION)  # dropped mid-request: leaves the wire too
    assert wire.in_flight == 0
    row.stop()
    assert phases.wire_s == pytest.approx(61.0)
    assert phases.backoff_s == pytest.approx(0.5)
    assert phases.retries_network == 2


def test_cancelled_on_the_wire_leaves_the_gauge_balanced() -> None:
    clock = FakeClock()
    wire = WireGauge()
    rows = [RowClock(Phases(), wire, clock) for _ in range(3)]
    for row in rows:
        row.working()
        row.on_request()
    assert (wire.in_flight, wire.max_in_flight) == (3, 3)
    clock.advance(0.4)
    for row in rows:
        row.stop()
    assert wire.in_flight == 0
    assert all(row.phases.wire_s == pytest.approx(0.4) for row in rows)


def test_latency_is_wire_time_when_phases_are_known() -> None:
    row = Row(index=0, id="0", text="t", status=Status.OK, started_s=1.0, finished_s=5.0)
    assert row.latency_s == row.span_s == 4.0  # an old stored row: started -> finished
    row.phases = Phases(wait_limiter_s=3.1, wire_s=0.8, client_s=0.1)
    assert row.latency_s == 0.8
    assert row.span_s == 4.0


def test_waiting_for_a_connection_is_not_on_the_wire() -> None:
    clock = FakeClock()
    wire = WireGauge()
    phases = Phases()
    row = RowClock(phases, wire, clock, traced=True)
    row.working()
    row.on_request()  # sent to the pool, which is full: it queues for a connection
    assert wire.in_flight == 0
    clock.advance(0.65)
    row.on_connected()
    assert wire.in_flight == 1
    clock.advance(0.8)
    row.on_response(200, {})
    clock.advance(0.01)
    row.working()
    row.on_request()  # the next attempt reuses the idle connection at once
    row.on_connected()
    clock.advance(0.7)
    row.on_response(200, {})
    row.stop()
    assert phases.connect_s == pytest.approx(0.65)
    assert phases.wire_s == pytest.approx(1.5)
    assert wire.in_flight == 0 and wire.max_in_flight == 1 and row.attempts == 2


def test_a_connection_that_cannot_be_made_ends_the_wait() -> None:
    clock = FakeClock()
    wire = WireGauge()
    phases = Phases()
    row = RowClock(phases, wire, clock, traced=True)
    row.working()
    row.on_request()
    clock.advance(10.0)
    row.backing_off(ErrorKind.CONNECTION)  # refused: never on the wire
    clock.advance(1.0)
    row.stop()
    assert (phases.connect_s, phases.wire_s, phases.backoff_s) == (10.0, 0.0, 1.0)
    assert wire.in_flight == 0 and wire.max_in_flight == 0
