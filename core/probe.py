"""Which instructor modes an endpoint accepts: one small request per mode.

Servers differ: llama-cpp-python answers ``response_format: json_schema`` with a 500,
some proxies refuse ``tool_choice`` with a 400, a small model may answer every mode
but validate in only one. ``probe_modes`` sends the same short text in each mode,
one after another (a one-slot server is not made to queue), and says per mode
whether the request was accepted, whether the answer validated for the schema, and
how long it took. ``fanout probe`` prints it; ``Engine.preflight`` uses it so that
a run in a mode the endpoint rejects stops before it starts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from core.client import MODES, close_client
from core.dataset import Record
from core.extract import ExtractionFailed, RetryPolicy
from core.results import ErrorKind

if TYPE_CHECKING:
    from core.engine import Engine

Verdict = Literal["works", "invalid", "rejected", "busy", "no answer"]

SAMPLE_TEXT = (
    "My name is Ann Lee and I am 30 years old. I live at 1 Main Street, Oslo, Norway; "
    "write to ann@example.com or call +47 555 0100. I rated the product 4 of 5: it works well."
)
"""A short text most schemas find something in (the probe checks the answer validates)."""

_PROBE_RETRY = RetryPolicy(max_retries=0, validation_retries=0)
_BUSY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class ModeResult:
    mode: str
    verdict: Verdict
    seconds: float
    detail: str = ""

    @property
    def accepted(self) -> bool | None:
        """Whether the server took a request in this mode (None: it did not say)."""
        if self.verdict in ("works", "invalid"):
            return True
        if self.verdict == "rejected":
            return False
        return None


def verdict_of(failure_kind: ErrorKind, status: int | None) -> Verdict:
    """What a failed probe request says about the mode."""
    if failure_kind in (ErrorKind.VALIDATION, ErrorKind.BAD_RESPONSE):
        return "invalid"  # answered, in this mode, but not an object for the schema
    if status in _BUSY_STATUSES or failure_kind is ErrorKind.RATE_LIMIT:
        return "busy"
    if failure_kind in (ErrorKind.BAD_REQUEST, ErrorKind.SERVER):
        return "rejected"  # a 4xx, or a 500 such as llama.cpp's "unsupported json_schema"
    if failure_kind is ErrorKind.TIMEOUT:
        return "busy"
    return "no answer"


async def probe_modes(
    engine: Engine,
    schema: type[BaseModel],
    modes: Iterable[str] = tuple(MODES),
    text: str = SAMPLE_TEXT,
) -> list[ModeResult]:
    """One request per mode, in order, each on a client of its own (no retries)."""
    record = Record(0, "probe", text)
    results = []
    for mode in modes:
        extractor = engine.extractor(schema, 1, mode=mode, retry=_PROBE_RETRY)
        started = time.monotonic()
        try:
            await extractor(record)
        except ExtractionFailed as exc:
            failure = exc.failure
            verdict = verdict_of(failure.kind, failure.status)
            results.append(ModeResult(mode, verdict, time.monotonic() - started, failure.message))
        else:
            results.append(ModeResult(mode, "works", time.monotonic() - started))
        finally:
            await close_client(extractor.client)
    return results


def working(results: Sequence[ModeResult]) -> list[str]:
    return [r.mode for r in results if r.verdict == "works"]


def probe_table(results: Sequence[ModeResult]) -> str:
    """The probe as a plain table: mode, accepted, valid answer, time, what went wrong."""
    lines = [f"{'mode':<12} {'accepted':<9} {'valid':<6} {'time':>8}  detail"]
    for r in results:
        accepted = {True: "yes", False: "no", None: "?"}[r.accepted]
        valid = "yes" if r.verdict == "works" else ("no" if r.accepted else "-")
        note = r.detail if r.verdict != "busy" else f"busy: {r.detail}"
        lines.append(f"{r.mode:<12} {accepted:<9} {valid:<6} {r.seconds:>6.2f} s  {note}".rstrip())
    return "\n".join(lines)
