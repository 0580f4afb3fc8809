"""One extraction: a record in, a validated pydantic object (or a failure) out.

``Extractor`` wraps the instructor client with what a bulk job needs around
each request:

- retries of transient failures (429, 5xx, timeouts, dropped connections)
  with bounded, jittered exponential backoff that honours the server's
  ``retry-after``; invalid model output is re-asked the way instructor does;
- a run-wide pause when the server says the rate limit is hit, so the whole
  run slows down instead of every task hammering on its own;
- optional client-side rate limits (requests and tokens per minute) and a
  spending budget checked before every attempt;
- every HTTP attempt counted (instructor's re-asks included), its 429s
  counted, and the tokens and cost of all attempts summed, failed ones too;
- where the row's time went (limiter, connection, wire, client, backoff;
  ``core.phases``), and how many requests are on the wire at once
  (``Extractor.wire``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx2 as httpx
import openai
from openai._models import construct_type
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

from core.client import traces_connections
from core.dataset import Record
from core.failures import (
    RETRYABLE,
    BadResponse,
    BadResponseWithUsage,
    Failure,
    answer_failure,
    classify,
    with_attempts,
)
from core.fairshare import FairShare
from core.phases import RowClock, WireGauge
from core.prepared import PreparedRequest
from core.prices import Price
from core.ratelimit import Budget, ClientRateLimit
from core.results import ErrorKind, Phases
from core.signals import listen, stop_listening
from core.tokens import estimate_tokens

RetryHook = Callable[[int, float, Failure], None]
"""Called as ``(attempt, delay, failure)`` before sleeping for a retry."""


@dataclass(frozen=True, slots=True)
class Extraction:
    value: BaseModel
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    rate_limited: int = 0
    cost_usd: float = 0.0
    guessed: tuple[str, ...] = ()
    """Field paths the endpoint said it made up (the simulator's placeholders)."""
    request_ids: tuple[str, ...] = ()
    """The server's ``x-request-id`` of each attempt that carried one, in order."""
    lenient: bool = False
    """Validated only by ``--lenient`` parsing (think block, fence, numbers as strings)."""


class ExtractionFailed(Exception):
    """A request failed for good; carries what it cost."""

    def __init__(
        self,
        failure: Failure,
        attempts: int,
        prompt_tokens: int,
        completion_tokens: int,
        rate_limited: int = 0,
        cost_usd: float = 0.0,
        request_ids: tuple[str, ...] = (),
    ) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.attempts = attempts
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.rate_limited = rate_limited
        self.cost_usd = cost_usd
        self.request_ids = request_ids


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    """Retries after the first attempt, for transient failures."""
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 120.0
    """Longest server-requested wait we honour before giving up on a row."""
    validation_retries: int = 1
    """Re-asks (instructor's) when the model's answer does not validate."""
    rate_limit_retries: int = 6
    """Retries after 429s, counted apart from ``max_retries``: a 429 is the server pacing
    the run, not the row failing, and a run far above the limit (gather over hundreds of
    rows at 60 rpm) sees several per row. The larger of the two applies; ``max_retries=0``
    turns every retry off."""
    bare_429_delays: tuple[float, ...] = (20.0, 40.0, 60.0)
    """Backoff after a 429 that says nothing of how long to wait (LiteLLM's own limit):
    long enough to cover a one-minute window, the run paused meanwhile (the last one
    repeats; each capped at ``max_retry_after``)."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Equal jitter: uniform in [c/2, c] with c = min(max_delay, base * 2^(attempt-1))."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng.uniform(ceiling / 2, ceiling)


SPEED_UP = 0.8
"""A paced release's interval after each pause's length of it with no new 429."""


class RateGate:
    """A run-wide pause: after a 429, nobody sends until the server's wait is over.

    When the pause ends, the rows that waited are let go one at a time, paced at the rate
    the window before the pause admitted (``admitted`` is told of every answer), with
    jitter, not all at once: a burst limit (20 requests per 0.5 s) lets a window's worth of
    a herd in and sends the rest back with another 429, again and again, until rows run
    out of attempts. Paced, N waiting rows need about N / allowance windows, one attempt
    each. The pacing lasts while rows queue, and for one pause's length after it ends. A
    gate told of no answer at all (one that only relays pauses) releases everyone at once."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._until = 0.0
        self.pauses = 0
        self._length = 0.0
        """The last pause's length: the window the release is paced over."""
        self._window_from = 0.0
        """Where the window before the pause starts (its answers set the release's pace)."""
        self._release_end = 0.0
        self._interval = 0.0
        self._paced_at = 0.0
        self._next = 0.0
        self._queued = 0
        self._turn = asyncio.Lock()
        self._answers: deque[float] = deque(maxlen=100_000)

    def pause(self, seconds: float) -> None:
        now = self._clock()
        until = now + seconds
        if until > self._until:
            if self._until <= now:  # the gate was open: a new pause, a new window to read
                self._window_from = now - seconds
                self._interval = 0.0
            self._until = until
            self._length = seconds
            self._release_end = until + seconds
            self.pauses += 1

    def admitted(self) -> None:
        """An answer came back (not a 429): what the release's pace is learnt from."""
        self._answers.append(self._clock())

    @property
    def remaining(self) -> float:
        return max(0.0, self._until - self._clock())

    @property
    def pacing(self) -> float:
        """Seconds between releases, as the last paced release set them (0 before any)."""
        return self._interval

    def _pace(self) -> float:
        """The pause's length over what the window before it admitted (at least one). Each
        pause's length that goes by with no new 429 makes it a fifth faster (the window
        may admit more than it did)."""
        now = self._clock()
        if not self._interval:
            admitted = sum(1 for at in self._answers if at >= self._window_from)
            self._interval = self._length / max(1, admitted)
            self._paced_at = now
        elif now - self._paced_at >= self._length:
            self._interval *= SPEED_UP
            self._paced_at = now
        return self._interval

    async def wait(self) -> None:
        # A deadline, not an event: another 429 may push it later while we sleep.
        while (left := self.remaining) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)
        if not self._answers:  # told of no answer (a gate that only relays pauses)
            return
        if not self._queued and self._clock() >= self._release_end:
            return
        self._queued += 1
        try:
            async with self._turn:  # first come, first served
                while True:
                    if (left := self.remaining) > 0:
                        await asyncio.sleep(left)
                        continue
                    if (left := self._next - self._clock()) > 0:
                        await asyncio.sleep(left)
                        continue
                    break
                self._next = self._clock() + self._pace() * self._rng.uniform(1.0, 1.25)
        finally:
            self._queued -= 1


class Extractor:
    """``await extractor(record)`` -> Extraction, or raises ExtractionFailed.

    Requests go through the openai SDK (``client.post``, the call its own
    ``create`` ends in) with a body instructor prepared once for the run;
    answers are validated, and re-asked when invalid, by instructor's handlers.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        prepared: PreparedRequest,
        *,
        retry: RetryPolicy | None = None,
        secrets: Sequence[str] = (),
        limits: ClientRateLimit | None = None,
        price: Price | None = None,
        budget: Budget | None = None,
        seed: int | None = None,
        fair: FairShare | None = None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.fair = fair or FairShare()
        self.prepared = prepared
        self.retry = retry or RetryPolicy()
        self.secrets = tuple(secrets)
        self.limits = limits if limits is not None and limits.active else None
        self.price = price
        self.budget = budget
        self.gate = RateGate()
        self.deadline = deadline
        """Seconds one attempt may take, all of it: connecting, headers and the whole body
        (the SDK's own timeout is per read, so a server dripping bytes never hits it)."""
        self.wire = WireGauge()
        """This extractor's requests on the wire (sent, no answer's headers yet)."""
        self._traced = traces_connections(client)
        self._clock = clock
        self._rng = random.Random(seed)
        self._completion_estimate = max(
            16, estimate_tokens(json.dumps(prepared.schema.model_json_schema())) // 2
        )

    @property
    def schema(self) -> type[BaseModel]:
        return self.prepared.schema

    def estimate_tokens(self, record: Record) -> int:
        """Before sending: the prepared prompt with this text, plus an expected answer."""
        return self.prepared.prompt_tokens(record.text) + self._completion_estimate

    def expected_cost(self, record: Record) -> float:
        """What an attempt at this row is expected to cost: what the budget reserves."""
        return self.cost(self.prepared.prompt_tokens(record.text), self._completion_estimate)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self.price.cost(prompt_tokens, completion_tokens) if self.price else 0.0

    async def __call__(
        self, record: Record, on_retry: RetryHook | None = None, phases: Phases | None = None
    ) -> Extraction:
        """One row; where its time goes is recorded in ``phases`` (see ``core.phases``)."""
        clock = RowClock(
            Phases() if phases is None else phases, self.wire, self._clock, traced=self._traced
        )
        token = listen(clock)
        usage = [0, 0]
        ids: list[str] = []
        body = self.prepared.body(record.text)
        failures = limited = invalid = 0
        try:
            while True:
                await self.gate.wait()
                estimate = self.estimate_tokens(record)
                reserved = self._reserve(estimate, clock, usage)
                if self.limits is not None:
                    estimate = await self.limits.acquire(estimate)  # as charged, to correct
                clock.working()
                await self.fair.checkpoint()
                try:
                    async with asyncio.timeout(self.deadline):
                        response = await self.client.post(
                            "/chat/completions", body=body, cast_to=httpx.Response
                        )
                    self.gate.admitted()
                    await self.fair.checkpoint()
                    request_id = response.headers.get("x-request-id")
                    if request_id:
                        ids.append(request_id[:200])
                    completion = read_completion(response.content)
                except asyncio.CancelledError:
                    self._settle(reserved, 0, 0)
                    raise
                except Exception as exc:
                    clock.failed()
                    self._settle(reserved, *_keep_billed(exc, usage, ids))
                    failure = classify(exc, self.secrets)
                    rate_limited = failure.kind is ErrorKind.RATE_LIMIT
                    limited += rate_limited
                    failures += not rate_limited
                    if isinstance(exc, TimeoutError) and self.deadline is not None:
                        failure = Failure(
                            ErrorKind.TIMEOUT,
                            f"no complete answer within {self.deadline:g} s (--timeout bounds "
                            "a whole attempt: connecting, headers and body)",
                        )
                    delay = self._delay(limited if rate_limited else failures, failure)
                    if delay is not None and _bare_429(failure):
                        failure = dataclasses.replace(
                            failure,
                            message=f"{failure.message}; no wait given: pausing the run "
                            f"{delay:.0f} s to cover a rate window",
                        )
                    if delay is None:
                        failure = self._why_not_retried(failure)
                        raise self._failed(failure, clock, usage, ids) from exc
                    if failure.kind is ErrorKind.RATE_LIMIT:
                        self.gate.pause(delay)
                    clock.backing_off(failure.kind)
                    if on_retry is not None:
                        on_retry(clock.attempts, delay, failure)
                    await asyncio.sleep(delay)
                    clock.waiting()
                    continue
                p, c = _usage_of(completion.usage)
                usage[0] += p
                usage[1] += c
                self._settle(reserved, p, c)
                self._correct(estimate, p + c)
                lenient = False
                try:
                    value = self.prepared.parse(completion)
                except Exception as exc:  # whatever instructor's parser raised: a billed answer
                    leniently = self.prepared.parse_lenient(completion)
                    if leniently is not None:
                        value, lenient = leniently, True
                    else:
                        failure, reaskable = answer_failure(
                            completion, exc, self.prepared.max_tokens
                        )
                        invalid += 1
                        if not reaskable or invalid > self.retry.validation_retries:
                            raise self._failed(failure, clock, usage, ids) from exc
                        clock.reasking()
                        body = self.prepared.reask(body, completion, exc)
                        clock.waiting()
                        continue
                return Extraction(
                    value=value,
                    attempts=clock.attempts,
                    prompt_tokens=usage[0],
                    completion_tokens=usage[1],
                    rate_limited=clock.rate_limited,
                    cost_usd=self.cost(usage[0], usage[1]),
                    guessed=guessed_fields(completion),
                    request_ids=tuple(ids),
                    lenient=lenient,
                )
        finally:
            clock.stop()
            stop_listening(token)

    def _failed(
        self, failure: Failure, row: RowClock, usage: list[int], ids: Sequence[str] = ()
    ) -> ExtractionFailed:
        """The row's end; its text counts the same attempts as the row (5xx, 429, re-asks)."""
        if failure.kind is not ErrorKind.BUDGET:  # a budget stop is "not sent": no count
            failure = with_attempts(failure, row.attempts)
        return ExtractionFailed(
            failure,
            row.attempts,
            usage[0],
            usage[1],
            row.rate_limited,
            self.cost(usage[0], usage[1]),
            tuple(ids),
        )

    def _reserve(self, estimate: int, row: RowClock, usage: list[int]) -> float:
        if self.budget is None or self.price is None:
            return 0.0
        reserve = self.cost(estimate - self._completion_estimate, self._completion_estimate)
        if not self.budget.reserve(reserve):
            failure = Failure(
                ErrorKind.BUDGET,
                f"budget of ${self.budget.limit_usd:.4f} reached "
                f"(spent ${self.budget.spent_usd:.4f}); not sent",
            )
            raise self._failed(failure, row, usage)
        return reserve

    def _settle(self, reserved: float, prompt_tokens: int, completion_tokens: int) -> None:
        if self.budget is not None:
            self.budget.settle(reserved, self.cost(prompt_tokens, completion_tokens))

    def _correct(self, estimate: int, actual: int) -> None:
        if self.limits is not None and actual:
            self.limits.correct(estimate, actual)

    def _why_not_retried(self, failure: Failure) -> Failure:
        """A 429 that asked for a longer wait than fanout gives says so, with both numbers."""
        wait = failure.retry_after
        if wait is None or wait <= self.retry.max_retry_after or failure.kind not in RETRYABLE:
            return failure
        message = (
            f"{failure.message}; the server asked to wait {wait:g} s, longer than the "
            f"{self.retry.max_retry_after:g} s fanout waits (try later, or lower --rpm)"
        )
        return Failure(failure.kind, message, wait, failure.status)

    def _allowed(self, failure: Failure) -> int:
        """How many retries of this kind of failure a row has."""
        most = self.retry.max_retries
        if failure.kind is ErrorKind.RATE_LIMIT and most > 0:
            return max(most, self.retry.rate_limit_retries)
        return most

    def _delay(self, failures: int, failure: Failure) -> float | None:
        """Seconds to wait before retrying, or None to give up on this row."""
        if failure.kind not in RETRYABLE or failures > self._allowed(failure):
            return None
        if failure.retry_after is not None:
            if failure.retry_after > self.retry.max_retry_after:
                return None
            # A little jitter on top so that everyone told "1 s" does not come back at once.
            return failure.retry_after + self._rng.uniform(0, 0.1 + failure.retry_after * 0.1)
        if _bare_429(failure) and self.retry.bare_429_delays:
            steps = self.retry.bare_429_delays
            step = steps[min(failures, len(steps)) - 1]
            return min(self.retry.max_retry_after, step * self._rng.uniform(1.0, 1.1))
        return self.retry.backoff(failures, self._rng)


def _bare_429(failure: Failure) -> bool:
    """A 429 with no hint of how long to wait (no retry-after, no reset header)."""
    return failure.kind is ErrorKind.RATE_LIMIT and failure.retry_after is None


def guessed_fields(completion: ChatCompletion) -> tuple[str, ...]:
    """The fields an answer says were made up: fanout's simulator lists its placeholders
    under a top-level ``fanout.guessed`` (other servers send nothing of the kind)."""
    extra = completion.model_extra
    marks = extra.get("fanout") if extra else None
    paths = marks.get("guessed") if isinstance(marks, dict) else None
    if not isinstance(paths, list):
        return ()
    return tuple(str(path) for path in paths[:1000])


def _keep_billed(exc: BaseException, usage: list[int], ids: list[str]) -> tuple[int, int]:
    """What a failed attempt still tells: the tokens of a 200 that was no completion (the
    server billed them; returned, for the budget), the ``x-request-id`` of an HTTP error."""
    if isinstance(exc, BadResponseWithUsage):
        usage[0] += exc.prompt_tokens
        usage[1] += exc.completion_tokens
        return exc.prompt_tokens, exc.completion_tokens
    if isinstance(exc, openai.APIStatusError):
        request_id = exc.response.headers.get("x-request-id")
        if request_id:
            ids.append(request_id[:200])
    return 0, 0


def _usage_of(usage: Any) -> tuple[int, int]:
    if usage is None:
        return 0, 0
    if isinstance(usage, dict):
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(
        getattr(usage, "completion_tokens", 0) or 0
    )


def read_completion(content: bytes) -> ChatCompletion:
    """The SDK's ChatCompletion from a response body.

    pydantic-core validates a well-formed body about 20x faster than the
    SDK's lenient pure-Python construction; servers that leave fields out
    (some OpenAI-compatible ones do) still get the lenient path.
    """
    try:
        completion = ChatCompletion.model_validate_json(content)
    except ValidationError:
        completion = _lenient(content)
    if not completion.choices:
        p, c = _usage_of(completion.usage)
        raise BadResponseWithUsage("the answer has no choices (an empty completion)", p, c)
    return completion


def _lenient(content: bytes) -> ChatCompletion:
    """The SDK's forgiving construction, for bodies that are JSON objects at least."""
    try:
        value = json.loads(content)
    except ValueError:
        raise BadResponse(f"the answer is not JSON: {_preview(content)}") from None
    if not isinstance(value, dict):
        raise BadResponse(f"the answer is not a completion: {_preview(content)}")
    error = value.get("error")
    if error is not None and not isinstance(value.get("choices"), list):
        said = error.get("message") if isinstance(error, dict) else error
        p, c = _usage_of(value.get("usage") if isinstance(value.get("usage"), dict) else None)
        shown = " ".join(str(said).split())[:160] if said else _preview(content)
        raise BadResponseWithUsage(f"the server answered 200 with an error: {shown}", p, c)
    if not isinstance(value.get("choices"), list):
        raise BadResponse(f"the answer is not a completion (no choices): {_preview(content)}")
    return cast(ChatCompletion, construct_type(type_=ChatCompletion, value=value))


def _preview(content: bytes) -> str:
    """The start of an answer, to say what it was (an HTML page, ``null`` ...)."""
    text = " ".join(content[:120].decode("utf-8", "replace").split())
    hint = "; is the base URL an OpenAI-compatible /v1 endpoint?" if "<" in text else ""
    return (repr(text[:80]) + ("…" if len(text) > 80 else "")) + hint
