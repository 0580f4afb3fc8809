"""A row's outcome as a worker sends it, and back into what the parent's Run expects.

Both backends (worker processes, Ray actors) run ``extract_row`` where the
requests are made and ``settle`` where the run is kept: an ``OK`` or ``FAIL``
message (see ``core.workers.protocol``) becomes the ``Extraction`` the Run's
extract returns, or the ``ExtractionFailed`` it raises.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable
from dataclasses import fields
from typing import Any, cast

from pydantic import BaseModel

from core.dataset import Record
from core.extract import Extraction, ExtractionFailed, Extractor
from core.failures import Failure, classify
from core.results import ErrorKind, Phases
from core.workers import protocol as p

PHASE_FIELDS = tuple(f.name for f in fields(Phases))
_phase_values = operator.attrgetter(*PHASE_FIELDS)

Message = tuple[Any, ...]


def phases_tuple(phases: Phases) -> tuple[Any, ...]:
    values: tuple[Any, ...] = _phase_values(phases)
    return values


async def extract_row(
    extractor: Extractor,
    index: int,
    text: str,
    on_retry: Callable[[int, float, Failure], None],
) -> Message:
    """One row through the worker's extractor: its ``OK`` or ``FAIL`` message (a
    cancelled row raises CancelledError: the parent cancelled it, it wants nothing)."""
    phases = Phases()
    try:
        result = await extractor(Record(index, "", text), on_retry, phases)
    except asyncio.CancelledError:
        raise
    except ExtractionFailed as exc:
        return (
            p.FAIL,
            index,
            exc.failure,
            exc.attempts,
            exc.prompt_tokens,
            exc.completion_tokens,
            exc.rate_limited,
            exc.cost_usd,
            exc.request_ids,
            phases_tuple(phases),
        )
    except Exception as exc:  # an extract that broke its promise: a failed row
        tries = getattr(exc, "n_attempts", None)
        failure = classify(exc, extractor.secrets)
        attempts = tries if isinstance(tries, int) and tries > 0 else 1
        return (p.FAIL, index, failure, attempts, 0, 0, 0, 0.0, (), phases_tuple(phases))
    return (
        p.OK,
        index,
        result.value.model_dump(mode="json"),
        result.attempts,
        result.prompt_tokens,
        result.completion_tokens,
        result.rate_limited,
        result.cost_usd,
        result.guessed,
        result.request_ids,
        result.lenient,
        phases_tuple(phases),
    )


class Dumped:
    """A row's value as the worker dumped it (``model_dump(mode="json")``), for the Run."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return self.data


def copy_phases(phases: Phases | None, values: tuple[Any, ...]) -> None:
    """The worker's timings onto the Run's row; the wait for a turn is the parent's own."""
    if phases is None:
        return
    for name, value in zip(PHASE_FIELDS, values, strict=True):
        if name != "wait_sem_s":
            setattr(phases, name, value)


def settle(
    future: asyncio.Future[Extraction],
    message: Message,
    *,
    lost: int,
    phases: Phases | None,
    schema: type[BaseModel],
    keep_values: bool,
) -> None:
    """Resolve a row's future from its ``OK`` / ``FAIL`` message; ``lost`` attempts were
    made by workers that died holding the row, and count."""
    if message[0] == p.OK:
        (_, _, data, attempts, prompt, completion, limited, cost, guessed, ids, lenient, ph) = (
            message
        )
        copy_phases(phases, ph)
        value = schema.model_validate(data) if keep_values else Dumped(data)
        future.set_result(
            Extraction(
                value=cast(BaseModel, value),
                attempts=attempts + lost,
                prompt_tokens=prompt,
                completion_tokens=completion,
                rate_limited=limited,
                cost_usd=cost,
                guessed=guessed,
                request_ids=ids,
                lenient=lenient,
            )
        )
        return
    (_, _, failure, attempts, prompt, completion, limited, cost, ids, ph) = message
    copy_phases(phases, ph)
    future.set_exception(
        ExtractionFailed(failure, attempts + lost, prompt, completion, limited, cost, ids)
    )


def settle_or_fail(
    future: asyncio.Future[Extraction],
    message: Message,
    *,
    lost: int,
    phases: Phases | None,
    schema: type[BaseModel],
    keep_values: bool,
    sender: str,
) -> None:
    """``settle``, or the row failed with why when its result does not load here (e.g. the
    schema this side has rejects what the ``sender``, "worker" or "actor", dumped)."""
    try:
        settle(future, message, lost=lost, phases=phases, schema=schema, keep_values=keep_values)
    except Exception as exc:
        failure = Failure(ErrorKind.OTHER, f"the {sender}'s result did not load: {exc}"[:500])
        if not future.done():
            future.set_exception(ExtractionFailed(failure, 1, 0, 0))
