"""The export's quality columns (README "The result layout" and "Quality").

With gold labels, an export gains, after the ``data.<field path>`` columns:

- ``expected.<field path>``: the gold value of each scored field, flattened like
  ``data.*`` (JSONL: ``"expected": {...}``, the label as given, checked);
- ``correct``: the row is correct (every scored field is); empty for a row without
  a label or without an end (cancelled);
- ``correct_fields.<field path>``: that field is correct (JSONL:
  ``"correct_fields": {"<field path>": true, ...}``, so the CSV header is still the
  JSONL object flattened with dots).

The gold columns of the dataset itself are not repeated as ``input.expected.*``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.quality.gold import GOLD_PREFIX, Gold
from core.quality.score import RowScore
from core.results import Row, Status

CORRECT_COLUMN = "correct"
CORRECT_FIELDS = "correct_fields"


def row_score(gold: Gold, row: Row) -> RowScore | None:
    """The row's score, or None (no label, or the row did not end ok or failed)."""
    if row.status not in (Status.OK, Status.FAILED):
        return None
    return gold.score(row.id, row.data, ok=row.status is Status.OK)


def quality_header(gold: Gold) -> list[str]:
    labels = gold.labels_of_fields
    return [
        *(GOLD_PREFIX + label for label in labels),
        CORRECT_COLUMN,
        *(f"{CORRECT_FIELDS}.{label}" for label in labels),
    ]


def quality_cells(gold: Gold, row: Row, cell: Callable[..., str]) -> list[str]:
    """The row's quality cells, in ``quality_header`` order; ``cell`` writes one value
    (``core.export.data_cell``)."""
    label = gold.expected(row.id)
    score = row_score(gold, row)
    expected = [
        cell(s.column.value(label), as_json=s.column.json_cell) if label is not None else ""
        for s in gold.fields
    ]
    if score is None:
        return [*expected, "", *("" for _ in gold.fields)]
    flags = [
        cell(score.fields[s.column.label].correct) if s.column.label in score.fields else ""
        for s in gold.fields
    ]
    return [*expected, cell(score.correct), *flags]


def quality_json(gold: Gold, row: Row) -> dict[str, Any]:
    """The row's quality keys for a JSONL line."""
    score = row_score(gold, row)
    return {
        "expected": gold.expected(row.id),
        CORRECT_COLUMN: None if score is None else score.correct,
        CORRECT_FIELDS: None
        if score is None
        else {name: result.correct for name, result in score.fields.items()},
    }
