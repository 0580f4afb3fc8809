"""Per-field scoring of one extracted row against its gold label.

Values are compared in ``model_dump(mode="json")`` form, the form rows and
gold labels are kept in. For each scored field path (the result layout's
``FieldColumn`` paths, so scores line up with the ``data.<path>`` export
columns) there are two verdicts:

- **exact**: the two JSON values are equal;
- **match** (normalised), by the field's kind (``core.quality.kinds``): text
  case-folded with whitespace collapsed (``" Ada  LOVELACE"`` = ``"ada lovelace"``);
  numbers equal within ``Tolerance`` (default: relative 1e-6, absolute 1e-9);
  dates, datetimes and times parsed from ISO text (``2026-01-05`` =
  ``2026-01-05T00:00:00``); enums by value; nested models field by field;
  lists as item sets (below).

A field's **outcome** is ``correct`` (match, or both empty), ``wrong`` (both
have a value and they differ), ``missing`` (gold has a value, the row has
none), ``extra`` (gold is empty, the row has a value), or ``failed`` (the row
has no result at all). Empty is null, or an empty list.

Lists are item sets: each gold item is paired with an equal extracted item
(greedily, in order; model items equal when every field matches), giving
precision (paired / extracted), recall (paired / gold) and F1. A list field
is correct when every item on both sides is paired (F1 = 1, duplicates
counted).

A row is correct when every scored field is.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.quality.kinds import (
    BOOL,
    DATE,
    DATETIME,
    ENUM,
    LIST,
    MODEL,
    NUMBER,
    OTHER_KIND,
    TEXT,
    TIME,
    Kind,
)

CORRECT, WRONG, MISSING, EXTRA, FAILED = "correct", "wrong", "missing", "extra", "failed"
OUTCOMES = (CORRECT, WRONG, MISSING, EXTRA, FAILED)


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How close two numbers must be to match."""

    relative: float = 1e-6
    absolute: float = 1e-9


DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True, slots=True)
class FieldScore:
    """One field of one row."""

    outcome: str
    exact: bool
    """The JSON values are equal (no normalisation)."""
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    """Lists only: the item-set figures."""
    paired: int = 0
    expected_items: int = 0
    got_items: int = 0

    @property
    def correct(self) -> bool:
        return self.outcome == CORRECT


@dataclass(frozen=True, slots=True)
class RowScore:
    """Every scored field of one row, by field path label (``customer.name``)."""

    fields: Mapping[str, FieldScore]

    @property
    def correct(self) -> bool:
        return all(score.correct for score in self.fields.values())

    @property
    def wrong_fields(self) -> list[str]:
        return [label for label, score in self.fields.items() if not score.correct]


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, tuple)) and not value)


def score_field(
    expected: Any, got: Any, kind: Kind, tolerance: Tolerance = DEFAULT_TOLERANCE
) -> FieldScore:
    """Score one field: ``expected`` (gold) against ``got`` (extracted)."""
    exact = expected == got and type(expected) is type(got)
    if kind.tag == LIST:
        return _score_list(expected, got, kind.item or OTHER_KIND, tolerance, exact)
    if is_empty(expected) and is_empty(got):
        return FieldScore(CORRECT, exact)
    if is_empty(got):
        return FieldScore(MISSING, exact)
    if is_empty(expected):
        return FieldScore(EXTRA, exact)
    outcome = CORRECT if same(expected, got, kind, tolerance) else WRONG
    return FieldScore(outcome, exact)


def failed_field() -> FieldScore:
    """A field of a row that has no result (failed)."""
    return FieldScore(FAILED, False)


def _score_list(
    expected: Any, got: Any, item: Kind, tolerance: Tolerance, exact: bool
) -> FieldScore:
    want = list(expected) if isinstance(expected, (list, tuple)) else []
    have = list(got) if isinstance(got, (list, tuple)) else []
    if expected is not None and not isinstance(expected, (list, tuple)):
        want = [expected]
    if got is not None and not isinstance(got, (list, tuple)):
        have = [got]
    unpaired = list(range(len(have)))
    paired = 0
    for wanted in want:
        for position, index in enumerate(unpaired):
            if same(wanted, have[index], item, tolerance):
                paired += 1
                del unpaired[position]
                break
    precision = paired / len(have) if have else (1.0 if not want else 0.0)
    recall = paired / len(want) if want else (1.0 if not have else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if not want and not have:
        outcome = CORRECT
    elif not have:
        outcome = MISSING
    elif not want:
        outcome = EXTRA
    else:
        outcome = CORRECT if paired == len(want) == len(have) else WRONG
    return FieldScore(outcome, exact, precision, recall, f1, paired, len(want), len(have))


def same(expected: Any, got: Any, kind: Kind, tolerance: Tolerance = DEFAULT_TOLERANCE) -> bool:
    """Whether two values match under the normalised rules of ``kind``."""
    if expected is None or got is None:
        return expected is None and got is None
    tag = kind.tag
    if tag == TEXT:
        return isinstance(got, str) and isinstance(expected, str) and _text(expected) == _text(got)
    if tag == NUMBER:
        return _numbers_close(expected, got, tolerance)
    if tag in (DATE, DATETIME, TIME):
        left, right = _moment(expected, tag), _moment(got, tag)
        return left is not None and left == right
    if tag == ENUM:
        if isinstance(expected, str) and isinstance(got, str):
            return _text(expected) == _text(got)
        return bool(expected == got and type(expected) is type(got))
    if tag == BOOL:
        return expected is got
    if tag == MODEL:
        if not isinstance(expected, Mapping) or not isinstance(got, Mapping):
            return False
        names = set(expected) | set(got)
        return all(
            same(expected.get(n), got.get(n), kind.fields.get(n, OTHER_KIND), tolerance)
            for n in names
        )
    if tag == LIST:
        return _score_list(expected, got, kind.item or OTHER_KIND, tolerance, False).correct
    return _structural(expected, got, tolerance)


def _structural(expected: Any, got: Any, tolerance: Tolerance) -> bool:
    """``other`` values: dicts key by key, lists in order, text and numbers normalised."""
    if isinstance(expected, Mapping) and isinstance(got, Mapping):
        return set(expected) == set(got) and all(
            _structural(expected[k], got[k], tolerance) for k in expected
        )
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(
            _structural(a, b, tolerance) for a, b in zip(expected, got, strict=True)
        )
    if isinstance(expected, str) and isinstance(got, str):
        return _text(expected) == _text(got)
    if _is_number(expected) and _is_number(got):
        return _numbers_close(expected, got, tolerance)
    return bool(expected == got and type(expected) is type(got))


def _text(value: str) -> str:
    return " ".join(value.split()).casefold()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float(value: Any) -> float | None:
    """A number, or a number written as text (Decimal dumps as a string in JSON mode)."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _numbers_close(expected: Any, got: Any, tolerance: Tolerance) -> bool:
    left, right = _as_float(expected), _as_float(got)
    if left is None or right is None:
        return False
    return math.isclose(left, right, rel_tol=tolerance.relative, abs_tol=tolerance.absolute)


def _moment(value: Any, tag: str) -> Any:
    """A date / datetime / time parsed from ISO text; a datetime at midnight with no
    zone equals its date, so ``2026-01-05`` matches ``2026-01-05T00:00:00``."""
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        if tag == TIME:
            return dt.time.fromisoformat(text)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None and moment.time() == dt.time():
        return moment.date()
    return moment
