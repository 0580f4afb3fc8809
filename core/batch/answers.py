"""One line of a batch's output or error file, turned into a row's result or its reason.

A line answered 200 is parsed the way an online answer is: the body becomes the SDK's
``ChatCompletion`` (``read_completion``) and is validated by instructor's handler for
the mode (``PreparedRequest.parse``, then ``parse_lenient`` with ``--lenient``); an
answer that does not validate gets the same reason an online row would
(``answer_failure``), but no re-ask: a batch has no second turn (``--finish-online``
gives the row one, online). Other lines say what the API said: the HTTP status and
error of the line, or the batch-level error (``batch_expired``, ``batch_cancelled``).
Every answer's ``usage`` is counted, whatever failed after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.extract import Extraction, guessed_fields, read_completion
from core.failures import BadResponse, BadResponseWithUsage, Failure, answer_failure, redact
from core.prepared import PreparedRequest
from core.prices import Price
from core.results import ErrorKind


@dataclass(frozen=True)
class LineFailure:
    """A row the batch answered without a valid object, with what its answer cost."""

    failure: Failure
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    request_ids: tuple[str, ...] = ()


Outcome = Extraction | LineFailure


def parse_line(
    line: dict[str, Any],
    prepared: PreparedRequest,
    price: Price | None,
    secrets: tuple[str, ...] = (),
) -> Outcome:
    response = line.get("response")
    error = line.get("error")
    if not isinstance(response, dict):
        code, said = _error_of(error)
        kind = ErrorKind.EXPIRED if code == "batch_expired" else ErrorKind.OTHER
        text = f"the batch did not answer this row ({code}): {said}" if code else said
        return LineFailure(Failure(kind, redact(text, secrets)))
    status = response.get("status_code")
    request_id = response.get("request_id")
    ids = (str(request_id)[:200],) if request_id else ()
    body = response.get("body")
    if status != 200:
        code, said = _error_of(body.get("error") if isinstance(body, dict) else error)
        text = f"HTTP {status} in the batch: {said}"
        return LineFailure(
            Failure(_kind_of(status), redact(text, secrets), None, status), 0, 0, 0.0, ids
        )
    try:
        completion = read_completion(json.dumps(body).encode())
    except BadResponseWithUsage as exc:
        cost = price.cost(exc.prompt_tokens, exc.completion_tokens) if price else 0.0
        failure = Failure(ErrorKind.BAD_RESPONSE, redact(str(exc), secrets))
        return LineFailure(failure, exc.prompt_tokens, exc.completion_tokens, cost, ids)
    except BadResponse as exc:
        return LineFailure(
            Failure(ErrorKind.BAD_RESPONSE, redact(str(exc), secrets)), 0, 0, 0.0, ids
        )
    usage = completion.usage
    p = int(usage.prompt_tokens or 0) if usage else 0
    c = int(usage.completion_tokens or 0) if usage else 0
    cost = price.cost(p, c) if price else 0.0
    lenient = False
    try:
        value = prepared.parse(completion)
    except Exception as exc:  # instructor's parser refused it: the row's reason, as online
        leniently = prepared.parse_lenient(completion)
        if leniently is None:
            failure, _ = answer_failure(completion, exc, prepared.max_tokens)
            failure = Failure(failure.kind, redact(failure.message, secrets), None, failure.status)
            return LineFailure(failure, p, c, cost, ids)
        value, lenient = leniently, True
    return Extraction(
        value=value,
        attempts=1,
        prompt_tokens=p,
        completion_tokens=c,
        cost_usd=cost,
        guessed=guessed_fields(completion),
        request_ids=ids,
        lenient=lenient,
    )


def _error_of(error: Any) -> tuple[str, str]:
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        message = " ".join(str(error.get("message") or "no message").split())[:300]
        return code, message
    return "", "no answer and no error for this row"


def _kind_of(status: Any) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if isinstance(status, int) and status >= 500:
        return ErrorKind.SERVER
    if status in (401, 403):
        return ErrorKind.AUTH
    return ErrorKind.BAD_REQUEST
