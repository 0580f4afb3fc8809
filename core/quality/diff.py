"""Two runs of the same data, compared field by field: the rows where they disagree.

Rows are paired by id. For each field path of the schema (the result layout's, as in
the export), two values agree when they match under the scoring's normalised rules
(``core.quality.score.same``: case and whitespace, number tolerance, parsed dates, item
sets for lists). A row only one run finished (ok) is reported with its status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from core.layout import field_columns
from core.quality.kinds import kind_at
from core.quality.score import is_empty, same
from core.results import Row, Status


@dataclass(frozen=True, slots=True)
class FieldDifference:
    row_id: str
    field: str
    """The field path (``customer.name``), or ``status`` when one run has no result."""
    left: Any
    right: Any


def diff_runs(
    left: Sequence[Row], right: Sequence[Row], schema: type[BaseModel]
) -> list[FieldDifference]:
    """Every field where two runs' rows disagree, in the left run's row order."""
    columns = [(c, kind_at(schema, c.path)) for c in field_columns(schema)]
    others = {row.id: row for row in right}
    out: list[FieldDifference] = []
    for row in left:
        other = others.get(row.id)
        if other is None:
            continue
        ok_left, ok_right = row.status is Status.OK, other.status is Status.OK
        if not (ok_left and ok_right):
            if ok_left != ok_right:
                out.append(FieldDifference(row.id, "status", row.status.value, other.status.value))
            continue
        for column, kind in columns:
            a, b = column.value(row.data), column.value(other.data)
            if is_empty(a) and is_empty(b):
                continue
            if not same(a, b, kind):
                out.append(FieldDifference(row.id, column.label, a, b))
    return out


def rows_that_differ(differences: Sequence[FieldDifference]) -> list[str]:
    return list(dict.fromkeys(d.row_id for d in differences))
