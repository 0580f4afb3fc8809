"""Text for the headless commands: the per-field table and a run's quality figures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.quality.score import CORRECT, EXTRA, FAILED, MISSING, WRONG
from core.quality.tally import QualityTally, cost_per_correct, goodput
from core.stats import RunStats


@dataclass(frozen=True, slots=True)
class QualitySummary:
    """A run's quality beside its time and cost (the runs table, ``fanout bench``)."""

    rows: int
    """Rows scored (with a label, ended ok or failed)."""
    correct_rows: int
    accuracy: float | None
    goodput_rps: float | None
    """Correct rows per second of the run."""
    cost_per_correct_usd: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scored_rows": self.rows,
            "correct_rows": self.correct_rows,
            "accuracy": self.accuracy,
            "goodput_rps": self.goodput_rps,
            "cost_per_correct_usd": self.cost_per_correct_usd,
        }


def summarize(tally: QualityTally, stats: RunStats) -> QualitySummary:
    return QualitySummary(
        rows=tally.rows,
        correct_rows=tally.correct_rows,
        accuracy=tally.accuracy,
        goodput_rps=goodput(tally.correct_rows, stats.elapsed_s),
        cost_per_correct_usd=cost_per_correct(stats.cost_usd, tally.correct_rows),
    )


def short_usd(value: float | None) -> str:
    """Dollars to two significant figures, without an exponent ($0.000012, $0.50)."""
    if value is None:
        return "—"
    if value <= 0:
        return "$0"
    digits = max(2, 1 - math.floor(math.log10(value)))
    return f"${value:.{digits}f}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def field_table(tally: QualityTally) -> str:
    """The per-field table, in the schema's order, with the rows' total first."""
    head = (
        f"quality ({tally.gold.source}): {tally.correct_rows} of {tally.rows} scored rows "
        f"correct ({percent(tally.accuracy)})"
    )
    names = [t.label for t in tally.fields.values()]
    width = max([len("field"), *map(len, names)])
    columns = ("accuracy", "exact", CORRECT, WRONG, MISSING, EXTRA, FAILED, "list F1")
    lines = [head, "  ".join(["field".ljust(width), *(c.rjust(8) for c in columns)])]
    for t in tally.fields.values():
        cells = [
            percent(t.accuracy),
            percent(t.exact_accuracy),
            *(str(t.outcomes[o]) for o in (CORRECT, WRONG, MISSING, EXTRA, FAILED)),
            percent(t.f1) if t.is_list else "",
        ]
        lines.append("  ".join([t.label.ljust(width), *(c.rjust(8) for c in cells)]).rstrip())
    return "\n".join(lines)
