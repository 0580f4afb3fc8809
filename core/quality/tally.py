"""Accuracy over a run, kept up to date as rows finish (the dashboard's quality panel,
``fanout run``'s per-field table, the runs table's accuracy and goodput).

Every row with a gold label that ended ``ok`` or ``failed`` counts; cancelled and
unfinished rows do not. A failed row counts against every field it has gold for
(outcome ``failed``), so accuracy is over the rows asked, not only those answered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.quality.gold import Gold
from core.quality.score import CORRECT, OUTCOMES, RowScore
from core.results import Row, Status


@dataclass(slots=True)
class FieldTally:
    label: str
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    exact: int = 0
    paired: int = 0
    expected_items: int = 0
    got_items: int = 0
    is_list: bool = False

    @property
    def scored(self) -> int:
        return sum(self.outcomes.values())

    @property
    def correct(self) -> int:
        return self.outcomes[CORRECT]

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.scored if self.scored else None

    @property
    def exact_accuracy(self) -> float | None:
        return self.exact / self.scored if self.scored else None

    @property
    def precision(self) -> float | None:
        """Lists: paired items over extracted items, over the whole run (micro)."""
        return self.paired / self.got_items if self.got_items else None

    @property
    def recall(self) -> float | None:
        return self.paired / self.expected_items if self.expected_items else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0


class QualityTally:
    """Per-field and per-row counts over the rows added so far."""

    def __init__(self, gold: Gold) -> None:
        self.gold = gold
        self.fields: dict[str, FieldTally] = {
            label: FieldTally(label) for label in gold.labels_of_fields
        }
        for scored in gold.fields:
            self.fields[scored.column.label].is_list = scored.kind.tag == "list"
        self.rows = 0
        self.correct_rows = 0
        self.scores: dict[str, RowScore] = {}

    def add(self, row: Row) -> RowScore | None:
        """Count a finished row (once; a row added again replaces its earlier count)."""
        if row.status not in (Status.OK, Status.FAILED):
            return None
        score = self.gold.score(row.id, row.data, ok=row.status is Status.OK)
        if score is None:
            return None
        old = self.scores.get(row.id)
        if old is not None:
            self._count(old, -1)
        self.scores[row.id] = score
        self._count(score, 1)
        return score

    def add_all(self, rows: Iterable[Row]) -> QualityTally:
        for row in rows:
            self.add(row)
        return self

    def _count(self, score: RowScore, sign: int) -> None:
        self.rows += sign
        self.correct_rows += sign * score.correct
        for label, result in score.fields.items():
            tally = self.fields[label]
            tally.outcomes[result.outcome] += sign
            tally.exact += sign * result.exact
            tally.paired += sign * result.paired
            tally.expected_items += sign * result.expected_items
            tally.got_items += sign * result.got_items

    @property
    def accuracy(self) -> float | None:
        """Correct rows over scored rows."""
        return self.correct_rows / self.rows if self.rows else None

    def worst_first(self) -> list[FieldTally]:
        """Fields by accuracy, lowest first (ties: layout order)."""
        order = {label: i for i, label in enumerate(self.fields)}
        scored = [t for t in self.fields.values() if t.scored]
        return sorted(scored, key=lambda t: (t.accuracy or 0.0, order[t.label]))

    def score_of(self, row_id: str) -> RowScore | None:
        return self.scores.get(row_id)


def goodput(correct_rows: int, elapsed_s: float) -> float | None:
    """Correct rows per second."""
    return correct_rows / elapsed_s if elapsed_s > 0 else None


def cost_per_correct(cost_usd: float, correct_rows: int) -> float | None:
    return cost_usd / correct_rows if correct_rows else None
