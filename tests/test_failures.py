"""Classifying failures into one readable line, and reading the server's wait hints."""

from __future__ import annotations

import email.utils
import json
import re

import httpx2 as httpx
import openai
import pytest
from pydantic import BaseModel, ValidationError

from core.client import choose_endpoint
from core.dataset import load_dataset
from core.engine import ClientOptions, Engine
from core.extract import RetryPolicy
from core.failures import classify, parse_duration, redact, retry_after_seconds, with_attempts
from core.localserver import ServerConfig
from core.models import Person as Extracted
from core.options import bundled_datasets_dir
from core.results import ErrorKind, Row, Status
from core.signals import LimitInfo

REQUEST = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")


def status_error(
    status: int, headers: dict[str, str] | None = None, message: str = "nope"
) -> Exception:
    body = {"error": {"message": message, "type": "x"}}
    response = httpx.Response(status, headers=headers or {}, json=body, request=REQUEST)
    cls = {
        401: openai.AuthenticationError,
        429: openai.RateLimitError,
        500: openai.InternalServerError,
        503: openai.InternalServerError,
        404: openai.NotFoundError,
    }.get(status, openai.APIStatusError)
    return cls(message, response=response, body=body)


def test_429_reads_retry_after() -> None:
    failure = classify(status_error(429, {"retry-after": "3"}, "Rate limit reached"))
    assert failure.kind is ErrorKind.RATE_LIMIT
    assert failure.retry_after == 3.0
    assert failure.message == "429 rate limited: Rate limit reached"


def test_retry_after_ms_wins_and_reset_headers_are_a_fallback() -> None:
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert retry_after_seconds({"x-ratelimit-reset-requests": "1m30s"}) == 90.0
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("120ms", 0.12),
        ("1h2m3.5s", 3723.5),
        ("2.5", 2.5),
        ("x", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_server_errors_and_auth_and_bad_requests() -> None:
    assert classify(status_error(503)).kind is ErrorKind.SERVER
    auth = classify(status_error(401, message="Incorrect API key provided: sk-abcdef123456"))
    assert auth.kind is ErrorKind.AUTH
    assert "sk-abcdef" not in auth.message
    assert classify(status_error(404, message="model not found")).kind is ErrorKind.BAD_REQUEST


def test_timeouts_and_connection_errors() -> None:
    assert classify(openai.APITimeoutError(request=REQUEST)).kind is ErrorKind.TIMEOUT
    refused = openai.APIConnectionError(request=REQUEST)
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    failure = classify(refused)
    assert failure.kind is ErrorKind.CONNECTION and "Connection refused" in failure.message


class Person(BaseModel):
    name: str
    age: int


def test_validation_errors_inside_instructor_retry() -> None:
    from instructor.core.exceptions import InstructorRetryException

    try:
        Person.model_validate({"name": "Ann", "age": "twenty"})
    except ValidationError as exc:
        validation = exc
    wrapped = InstructorRetryException("x", n_attempts=2, total_usage=0)
    wrapped.__cause__ = validation
    failure = classify(wrapped)
    assert failure.kind is ErrorKind.VALIDATION
    assert failure.message.startswith("invalid model output after 2 attempts: age:")


def test_instructor_wrapping_an_http_error_is_classified_by_the_http_error() -> None:
    from instructor.core.exceptions import InstructorRetryException

    wrapped = InstructorRetryException("x", n_attempts=1, total_usage=0)
    wrapped.__cause__ = status_error(429, {"retry-after": "2"})
    failure = classify(wrapped)
    assert failure.kind is ErrorKind.RATE_LIMIT and failure.retry_after == 2.0


def test_bad_json_is_validation() -> None:
    try:
        json.loads("{")
    except json.JSONDecodeError as exc:
        assert classify(exc).kind is ErrorKind.VALIDATION


def test_redact_known_secret_and_keylike_strings() -> None:
    assert redact("key=hunter2-secret in text", ("hunter2-secret",)) == "key=*** in text"
    assert "sk-proj" not in redact("bad key sk-proj-ABCDEFGHIJ")


# -- the attempt count in a failed row's text is the row's own ---------------------------------

ATTEMPTS_IN_TEXT = re.compile(r" after (\d+) attempts?\b")


async def _failed_rows(config: ServerConfig, retry: RetryPolicy, n: int) -> list[Row]:
    """``n`` people through the real client and the built-in simulator; the failed rows."""
    records = load_dataset(bundled_datasets_dir() / "people_1000.csv").records[:n]
    engine = Engine(choose_endpoint(local=True), server=config, options=ClientOptions(retry=retry))
    async with engine, engine.run(records, Extracted, strategy="gather", concurrency=1) as run:
        await run.execute()
    failed = [row for row in run.rows if row.status is Status.FAILED]
    assert failed, "the simulator was set to make rows fail"
    return failed


def _count_in_text(row: Row) -> int:
    assert row.error is not None
    (count,) = ATTEMPTS_IN_TEXT.findall(row.error)
    return int(count)


async def test_validation_failure_counts_every_attempt_5xx_included() -> None:
    """A row whose answers were invalid twice, with 5xx retries between, made more than 2
    attempts: the text said "after 2" (the re-asks only) where the row said 3 or 4."""
    config = ServerConfig(latency=0.0, jitter=0.0, error_rate=0.35, invalid_rate=0.6, seed=11)
    retry = RetryPolicy(max_retries=6, base_delay=0.001, validation_retries=1)
    failed = await _failed_rows(config, retry, 40)
    invalid = [row for row in failed if row.error_kind is ErrorKind.VALIDATION]
    assert invalid and any(row.attempts > 2 for row in invalid), [r.attempts for r in invalid]
    for row in failed:
        assert row.error is not None
        assert _count_in_text(row) == row.attempts, (row.error, row.attempts)


async def test_5xx_exhaustion_names_the_rows_attempts() -> None:
    config = ServerConfig(latency=0.0, jitter=0.0, error_rate=1.0, seed=3)
    failed = await _failed_rows(config, RetryPolicy(max_retries=2, base_delay=0.001), 3)
    for row in failed:
        assert row.error_kind is ErrorKind.SERVER and row.attempts == 3
        assert row.error is not None and row.error.startswith("HTTP 50")
        assert _count_in_text(row) == row.attempts == 3, row.error


async def test_429_exhaustion_names_the_rows_attempts() -> None:
    """A token limit no request fits under: every attempt is a 429 until retries run out."""
    config = ServerConfig(latency=0.0, jitter=0.0, tpm=1200, rate_window=0.05)
    policy = RetryPolicy(max_retries=2, rate_limit_retries=2, base_delay=0.001)
    failed = await _failed_rows(config, policy, 2)
    for row in failed:
        assert row.error_kind is ErrorKind.RATE_LIMIT and row.attempts == row.rate_limited == 3
        assert row.error is not None and row.error.startswith("429 rate limited after 3 attempts: ")
        assert _count_in_text(row) == row.attempts, row.error


def test_with_attempts_puts_the_count_after_what_failed() -> None:
    failure = classify(status_error(503, message="busy"))
    assert with_attempts(failure, 4).message == "HTTP 503 server error after 4 attempts: busy"
    timeout = classify(openai.APITimeoutError(REQUEST))
    assert with_attempts(timeout, 1).message == "timed out waiting for the endpoint after 1 attempt"
    assert with_attempts(failure, 4).kind is ErrorKind.SERVER


NOW = 1_800_000_000.0
"""A fixed wall clock for the epoch and HTTP-date forms."""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("1.5s", 1.5),
        ("250ms", 0.25),
        ("7", 7.0),
        ("0.5", 0.5),
        (str(int(NOW) + 42), 42.0),  # an epoch timestamp: wait until then
        (str(int(NOW) - 5), 0.0),  # ... already past: no wait
        (str(int(NOW * 1000) + 1500), 1.5),  # epoch milliseconds
        ("Fri, 15 Jan 2027 08:00:30 GMT", None),  # an HTTP date, checked below
        ("-3", 0.0),
        ("nan", None),
        ("soon", None),
    ],
)
def test_reset_forms(text: str, seconds: float | None) -> None:
    if text.endswith("GMT"):
        seconds = email.utils.parsedate_to_datetime(text).timestamp() - NOW
    assert parse_duration(text, now=lambda: NOW) == (
        pytest.approx(seconds) if seconds is not None else None
    )


def test_retry_after_reads_every_form_and_the_proxy_prefixed_ones() -> None:
    now = lambda: NOW  # noqa: E731
    assert retry_after_seconds({"retry-after": str(int(NOW) + 30)}, now) == 30.0
    date = email.utils.formatdate(NOW + 12, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now) == pytest.approx(12.0)
    # LiteLLM forwards an upstream 429's wait only under llm_provider-.
    assert retry_after_seconds({"llm_provider-retry-after": "9"}, now) == 9.0
    assert retry_after_seconds({"llm_provider-retry-after-ms": "1500"}, now) == 1.5
    assert retry_after_seconds({"llm_provider-x-ratelimit-reset-requests": "1m0s"}, now) == 60.0
    assert retry_after_seconds({"llm_provider-x-ratelimit-reset-tokens": "250ms"}, now) == 0.25
    # The proxy's own header wins over the forwarded one.
    assert retry_after_seconds({"retry-after": "2", "llm_provider-retry-after": "9"}, now) == 2.0
    assert retry_after_seconds({"x-ratelimit-reset-requests": "6m0s"}, now, resets=False) is None


def test_limit_info_reads_the_proxy_prefixed_headers() -> None:
    info = LimitInfo.from_headers(
        {
            "llm_provider-x-ratelimit-limit-requests": "500",
            "llm_provider-x-ratelimit-remaining-requests": "0",
            "llm_provider-x-ratelimit-reset-requests": "6m0s",
            "llm_provider-x-ratelimit-limit-tokens": "30000",
            "llm_provider-x-ratelimit-remaining-tokens": "12",
            "llm_provider-x-ratelimit-reset-tokens": "1.5s",
            "llm_provider-retry-after-ms": "250",
        }
    )
    assert info == LimitInfo(500, 0, 360.0, 30000, 12, 1.5, 0.25)
