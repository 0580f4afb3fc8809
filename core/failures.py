"""Turn whatever a request raised into one line a user can read, and a kind to count.

Also reads the server's hints: ``retry-after-ms`` / ``retry-after`` and
``x-ratelimit-reset-*`` (OpenAI's durations "6m0s", "1.5s", "120ms", plain seconds,
epoch timestamps, HTTP dates), each also as LiteLLM forwards it (``llm_provider-...``).
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import openai
from pydantic import ValidationError

from core.results import ErrorKind

RETRYABLE = frozenset(
    {ErrorKind.RATE_LIMIT, ErrorKind.SERVER, ErrorKind.TIMEOUT, ErrorKind.CONNECTION}
)
MAX_MESSAGE = 240
_KEYLIKE = re.compile(r"\b(sk|key|api)[-_][A-Za-z0-9_\-*]{6,}", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


class BadResponse(Exception):
    """An answer that is not a chat completion at all (HTML, ``null``, no choices, too big)."""


class BadResponseWithUsage(BadResponse):
    """A 200 that is no usable completion (``choices: []``, an error body) but says what
    the server billed: its ``usage`` is counted like any answer's."""

    def __init__(self, message: str, prompt_tokens: int, completion_tokens: int) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


class AnswerTooLarge(BadResponse):
    """The answer's body passed the size limit (``--max-answer-bytes``) and was not read."""


@dataclass(frozen=True, slots=True)
class Failure:
    kind: ErrorKind
    message: str
    retry_after: float | None = None
    """Seconds the server asked us to wait, if it said."""
    status: int | None = None


def classify(exc: BaseException, secrets: tuple[str, ...] = ()) -> Failure:
    """Classify an exception from the client stack (instructor, openai, httpx).

    Secrets are removed from the whole text first and only then is it cut to
    ``MAX_MESSAGE``: cutting first could leave a piece of a key behind."""
    failure = _classify(exc)
    message = _cut(redact(failure.message, secrets))
    return Failure(failure.kind, message, failure.retry_after, failure.status)


def _classify(exc: BaseException) -> Failure:
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc)
    root = _root_cause(exc)
    if isinstance(root, BadResponse):
        return Failure(ErrorKind.BAD_RESPONSE, str(root))
    if isinstance(exc, openai.APITimeoutError):
        # The SDK's aiohttp transport reports a refused connection, and a server that
        # closed the connection before answering, as a timeout.
        if isinstance(root, OSError) and not isinstance(root, TimeoutError):
            return Failure(ErrorKind.CONNECTION, f"connection failed: {_one_line(root)}")
        if _closed_early(root):
            return Failure(ErrorKind.CONNECTION, CLOSED_EARLY)
        return Failure(ErrorKind.TIMEOUT, "timed out waiting for the endpoint")
    if isinstance(exc, openai.APIConnectionError):
        if _closed_early(root):
            return Failure(ErrorKind.CONNECTION, CLOSED_EARLY)
        detail = f": {_one_line(root)}" if root is not exc else ""
        return Failure(ErrorKind.CONNECTION, f"connection failed{detail}")
    if isinstance(exc, (TimeoutError,)):
        return Failure(ErrorKind.TIMEOUT, "timed out waiting for the endpoint")
    # instructor wraps whatever ended its attempts; look inside.
    inner = exc.__cause__
    if _is_instructor_retry(exc):
        if inner is not None and not _is_parse_error(inner):
            return _classify(inner)
        n = getattr(exc, "n_attempts", None)
        attempts = f" after {n} attempt{'s' if n != 1 else ''}" if n else ""
        detail = validation_detail(inner if inner is not None else exc)
        return Failure(ErrorKind.VALIDATION, f"invalid model output{attempts}: {detail}")
    if _is_parse_error(exc):
        return Failure(ErrorKind.VALIDATION, f"invalid model output: {validation_detail(exc)}")
    return Failure(ErrorKind.OTHER, _one_line(exc))


CLOSED_EARLY = "connection closed by the server before it answered"


def _closed_early(exc: BaseException) -> bool:
    """The server hung up before a complete answer (aiohttp / httpx names for it)."""
    return type(exc).__name__ in {
        "ServerDisconnectedError",
        "RemoteProtocolError",
        "ClientPayloadError",
        "ContentLengthError",
        "TransferEncodingError",
    }


def with_attempts(failure: Failure, attempts: int) -> Failure:
    """The failure, its message saying how many attempts the row made.

    ``"<what> after N attempts: <detail>"``; the caller passes the same counter it
    stores as the row's ``attempts``, so the text and the row cannot disagree.
    """
    what, sep, detail = failure.message.partition(": ")
    count = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    return dataclasses.replace(failure, message=f"{what}{count}{sep}{detail}")


def _from_status(exc: openai.APIStatusError) -> Failure:
    status = exc.status_code
    detail = _server_message(exc)
    if _is_quota(exc.body):
        # Out of credit, not too fast: waiting will not help (OpenAI answers it with 429).
        return Failure(ErrorKind.QUOTA, f"quota exhausted: {detail}; check billing", None, status)
    if status == 429:
        wait = retry_after_seconds(exc.response.headers)
        return Failure(ErrorKind.RATE_LIMIT, f"429 rate limited: {detail}", wait, status)
    if status >= 500:
        wait = retry_after_seconds(exc.response.headers)
        return Failure(ErrorKind.SERVER, f"HTTP {status} server error: {detail}", wait, status)
    if status in (401, 403):
        return Failure(
            ErrorKind.AUTH, f"HTTP {status}: the endpoint refused the API key", None, status
        )
    if status == 408:
        return Failure(ErrorKind.TIMEOUT, f"HTTP 408: {detail}", None, status)
    return Failure(ErrorKind.BAD_REQUEST, f"HTTP {status}: {detail}", None, status)


QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


def _is_quota(body: object) -> bool:
    """An error body saying the account is out of quota or credit (``insufficient_quota``,
    ``billing_hard_limit_reached``, any code or type naming a quota)."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return False
    for field in ("code", "type"):
        value = inner.get(field)
        if isinstance(value, str) and (value in QUOTA_CODES or "quota" in value.lower()):
            return True
    return False


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return _squash(str(inner["message"]))
        if isinstance(inner, str):
            return _squash(inner)
    try:
        text = exc.response.text
    except Exception:  # the body may be unreadable (streamed, closed)
        text = ""
    return _squash(text) or exc.response.reason_phrase or "no details"


def _is_instructor_retry(exc: BaseException) -> bool:
    return type(exc).__name__ == "InstructorRetryException" or hasattr(exc, "failed_attempts")


def _is_parse_error(exc: BaseException) -> bool:
    if isinstance(exc, (ValidationError, json.JSONDecodeError)):
        return True
    return type(exc).__name__ in {
        "ValidationError",
        "AsyncValidationError",
        "ResponseParsingError",
        "IncompleteOutputException",
    }


def validation_detail(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "value"
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            return f"{where}: {first.get('msg', 'invalid')}{more}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg})"
    return _one_line(exc)


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def _one_line(exc: BaseException) -> str:
    text = _squash(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _squash(text: str) -> str:
    """One line (cut to length only by ``classify``, after secrets are removed)."""
    return " ".join(text.split())


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


MIN_FRAGMENT = 6
"""The shortest start of a known secret that is removed where a text was cut inside it."""


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secrets, the start of one where a text ends (or is cut) inside
    it, and anything that looks like an API key."""
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        text = text.replace(secret, "***")
        for length in range(len(secret) - 1, MIN_FRAGMENT - 1, -1):
            fragment = secret[:length]
            if fragment in text:
                text = re.sub(re.escape(fragment) + r"(?=$|[^A-Za-z0-9_\-])", "***", text)
    return _KEYLIKE.sub("***", text)


def redact_data(data: Any, secrets: tuple[str, ...]) -> Any:
    """An answer's data with every known secret in its strings (keys too) replaced: a
    model or a server that echoes the API key back never gets it stored or exported."""
    real = tuple(s for s in secrets if len(s) >= 8 and s != "not-needed")
    if not real:
        return data
    text = json.dumps(data, ensure_ascii=False)
    if not any(secret in text for secret in real):
        return data

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for secret in real:
                value = value.replace(secret, "***")
            return value
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(data)


EPOCH_AFTER = 1e9
"""A reset "in seconds" larger than this (about 31 years) is an epoch timestamp (seconds
since 1970; some gateways send the moment of the reset, not the time until it)."""
EPOCH_MS_AFTER = 1e12
"""... and larger than this, an epoch timestamp in milliseconds."""

PROXY_PREFIX = "llm_provider-"
"""LiteLLM forwards an upstream's headers under this prefix (``llm_provider-retry-after``)."""


def parse_duration(value: str, now: Callable[[], float] = time.time) -> float | None:
    """Seconds until a reset, in every form servers send: OpenAI's durations ("1s", "6m0s",
    "120ms", "1h2m3.5s"), plain seconds ("1.5"), an epoch timestamp (a number above
    ``EPOCH_AFTER``: seconds since 1970, or milliseconds above ``EPOCH_MS_AFTER``; the wait
    is until then) and an HTTP date. Never negative; None when unreadable."""
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        if number > EPOCH_MS_AFTER:
            return max(0.0, number / 1000 - now())
        if number > EPOCH_AFTER:
            return max(0.0, number - now())
        return max(0.0, number)
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            break
        number, unit = float(match.group(1)), match.group(2)
        total += number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
        position = match.end()
    else:
        if position == len(value) and position > 0:
            return total
    parsed = email.utils.parsedate_tz(value)
    if parsed is not None:
        return max(0.0, email.utils.mktime_tz(parsed) - now())
    return None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header, or the same header as a proxy forwarded it (``llm_provider-<name>``)."""
    value = headers.get(name)
    if value is None or not value.strip():
        value = headers.get(PROXY_PREFIX + name)
    return value if value is not None and value.strip() else None


def retry_after_seconds(
    headers: Mapping[str, str], now: Callable[[], float] = time.time, *, resets: bool = True
) -> float | None:
    """How long the server asked us to wait: retry-after-ms, retry-after, or (with
    ``resets``) x-ratelimit-reset-*; each also in its ``llm_provider-`` form, as LiteLLM
    forwards an upstream's."""
    ms = header(headers, "retry-after-ms")
    if ms:
        try:
            wait = float(ms) / 1000
        except ValueError:
            pass
        else:
            if math.isfinite(wait):
                return max(0.0, wait)
    after = header(headers, "retry-after")
    if after:
        wait_s = parse_duration(after, now)
        if wait_s is not None:
            return wait_s
    if not resets:
        return None
    known_resets = [
        parse_duration(header(headers, name) or "", now)
        for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
    ]
    known = [r for r in known_resets if r is not None]
    return max(known) if known else None


_THINK = "<think>"
_FENCE = "```"


def answer_failure(
    completion: Any, error: Exception, max_tokens: int | None
) -> tuple[Failure, bool]:
    """Why a billed answer gave no object, named by its cause, and whether a re-ask may help.

    Looked at only after instructor's parser failed (nothing is added to a good answer's
    path): truncated (``finish_reason: length``), refused (``message.refusal``), filtered
    (``content_filter``) are final; no tool call (a text answer in tools mode) and not JSON
    are re-asked the way instructor does; anything else is the validation error itself.
    """
    choice = completion.choices[0]
    message = choice.message
    reason = choice.finish_reason
    used = _completion_tokens(completion)
    if reason == "length":
        at = max_tokens if max_tokens is not None else used
        limit = "max_tokens" if max_tokens is not None else "the server's limit"
        tokens = f"at {at} tokens " if at else ""
        return Failure(
            ErrorKind.VALIDATION, f"truncated {tokens}({limit}): raise --max-tokens"
        ), False
    refusal = getattr(message, "refusal", None)
    if refusal:
        said = _squash(str(refusal))
        return Failure(ErrorKind.VALIDATION, f"refused by the model: {said}"), False
    if reason == "content_filter":
        return Failure(
            ErrorKind.VALIDATION,
            "filtered: the provider's content filter stopped the answer (content_filter)",
        ), False
    content = message.content if isinstance(message.content, str) else ""
    tools = getattr(message, "tool_calls", None)
    if type(error).__name__ == "ResponseParsingError" and not tools:
        shown = f"answered in text instead: {_text_preview(content)}" if content else "no answer"
        return Failure(ErrorKind.VALIDATION, f"no tool call: the model {shown}"), True
    sent = _arguments(tools) if tools else content
    if sent and _not_json(error):
        hint = "; --lenient strips these" if _THINK in sent or _FENCE in sent else ""
        where = "tool call's arguments" if tools else "answer"
        return Failure(
            ErrorKind.VALIDATION, f"not JSON: the model's {where}: {_text_preview(sent)}{hint}"
        ), True
    return Failure(ErrorKind.VALIDATION, f"invalid model output: {validation_detail(error)}"), True


def _arguments(tools: Any) -> str:
    try:
        arguments = tools[0].function.arguments
    except (AttributeError, IndexError, TypeError):
        return ""
    return arguments if isinstance(arguments, str) else ""


def _completion_tokens(completion: Any) -> int:
    usage = getattr(completion, "usage", None)
    return int(getattr(usage, "completion_tokens", 0) or 0) if usage is not None else 0


def _not_json(error: Exception) -> bool:
    if isinstance(error, json.JSONDecodeError):
        return True
    if isinstance(error, ValidationError):
        return any(e.get("type") == "json_invalid" for e in error.errors())
    return False


def _text_preview(text: str) -> str:
    text = _squash(text)
    return repr(text[:60]) + ("…" if len(text) > 60 else "")
