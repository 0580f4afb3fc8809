"""A hostile server (``hostile_server``): every row ends, within its deadline, as a row
with a reason that says what happened; no API key, whole or in part, is kept anywhere."""

from __future__ import annotations

import json
import resource
import time

import pytest

from core.engine import ClientOptions
from core.export import results_jsonl
from core.extract import RetryPolicy
from core.results import ErrorKind, Row, Status
from tests.hostile_server import hostile
from tests.loopback import run_rows

KEY = "sk-canary-0123456789abcdef"
TIMEOUT = 1.0
RETRIES = 1
BACKOFF = 0.05


async def run_against(
    behaviour: str, rows: int = 3, **options: float | int
) -> tuple[list[Row], float]:
    with hostile(behaviour, **options) as server:
        client = ClientOptions(
            timeout=TIMEOUT,
            retry=RetryPolicy(max_retries=RETRIES, base_delay=BACKOFF, max_delay=BACKOFF),
            max_answer_bytes=2_000_000,
        )
        started = time.monotonic()
        found = await run_rows(server.base_url, KEY, client, rows)
        return found, time.monotonic() - started


@pytest.mark.parametrize("behaviour", ["drip", "broken_chunked"])
async def test_a_slow_or_broken_body_ends_within_the_attempt_deadlines(behaviour: str) -> None:
    rows, elapsed = await run_against(behaviour, delay=0.25)
    bound = (RETRIES + 1) * TIMEOUT + RETRIES * BACKOFF
    assert elapsed < bound + 1.5, elapsed  # each row's attempts end at their deadline
    for row in rows:
        assert row.status is Status.FAILED and row.error_kind is ErrorKind.TIMEOUT
        assert row.attempts == RETRIES + 1
        assert f"no complete answer within {TIMEOUT:g} s" in (row.error or "")
        assert row.span_s is not None and row.span_s >= (RETRIES + 1) * TIMEOUT * 0.9


@pytest.mark.parametrize(
    ("behaviour", "kind", "says"),
    [
        ("close_before_headers", ErrorKind.CONNECTION, "closed by the server before it answered"),
        ("html", ErrorKind.BAD_RESPONSE, "not JSON after 1 attempt: '<html>"),
        ("empty_choices", ErrorKind.BAD_RESPONSE, "no choices"),
        ("null_body", ErrorKind.BAD_RESPONSE, "not a completion after 1 attempt: 'null'"),
    ],
)
async def test_reasons_say_what_happened(behaviour: str, kind: ErrorKind, says: str) -> None:
    rows, _ = await run_against(behaviour, rows=1)
    (row,) = rows
    assert row.status is Status.FAILED and row.error_kind is kind, row.error
    assert says in (row.error or "")


async def test_a_retry_after_too_long_says_how_long_and_the_limit() -> None:
    rows, elapsed = await run_against("long_retry_after", rows=1, delay=500)
    (row,) = rows
    assert row.error_kind is ErrorKind.RATE_LIMIT and elapsed < 5
    assert "asked to wait 500 s, longer than the 120 s fanout waits" in (row.error or "")


@pytest.mark.parametrize("behaviour", ["huge", "huge_chunked"])
async def test_huge_answers_fail_unread_and_memory_stays_bounded(behaviour: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows, _ = await run_against(behaviour, rows=10, size=50_000_000)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    for row in rows:
        assert row.error_kind is ErrorKind.BAD_RESPONSE, row.error
        assert "larger than 2 MB and was not read" in (row.error or "")
    assert grown_mb < 150, grown_mb  # 10 answers of 50 MB read whole would be 500+ MB


def no_key_piece(text: str) -> None:
    for length in range(6, len(KEY) + 1):
        assert KEY[:length] not in text, (KEY[:length], text)


async def test_a_key_quoted_in_an_error_near_the_cut_leaves_no_piece() -> None:
    rows, _ = await run_against("echo_auth", rows=1)
    (row,) = rows
    assert row.error_kind is ErrorKind.SERVER
    no_key_piece(row.error or "")
    no_key_piece(results_jsonl(rows))


async def test_a_key_echoed_in_the_answer_is_not_kept() -> None:
    rows, _ = await run_against("echo_key_in_answer", rows=1)
    (row,) = rows
    assert row.status is Status.OK and row.data is not None
    no_key_piece(json.dumps(row.data))
    assert row.data["name"] == "Bearer ***"
