"""The row detail's "expected vs extracted": one line per scored field, differences marked."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from core.quality.columns import row_score
from core.quality.gold import Gold
from core.results import Row
from tui.visible import visible

MARKS = {"correct": ("✓", "green"), "wrong": ("✗", "red"), "missing": ("∅", "red")}


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return visible(text)


def field_diff(gold: Gold, row: Row) -> Text | None:
    """Expected vs extracted per scored field; None when the row has no gold label."""
    label = gold.expected(row.id)
    score = row_score(gold, row)
    if label is None:
        return None
    text = Text()
    if score is None:
        text.append("not scored: the row has no result yet", style="dim")
        return text
    width = max((len(s.column.label) for s in gold.fields), default=4)
    for scored in gold.fields:
        name = scored.column.label
        result = score.fields.get(name)
        if result is None:
            continue
        mark, style = MARKS.get(result.outcome, ("✗", "red"))
        expected = scored.column.value(label)
        got = scored.column.value(row.data)
        text.append(f"{mark} ", style=style)
        text.append(visible(name).ljust(width) + "  ", style="bold")
        if result.correct:
            text.append(_shown(got))
            if not result.exact:
                text.append(f"  (normalised; expected {_shown(expected)})", style="dim")
        else:
            text.append("expected ", style="dim")
            text.append(_shown(expected), style="green")
            text.append("  got ", style="dim")
            text.append(_shown(got), style="bold red reverse" if got is not None else "red")
            text.append(f"  {result.outcome}", style=style)
            if result.f1 is not None:
                text.append(f" (list F1 {result.f1:.2f})", style="dim")
        text.append("\n")
    text.append("row ", style="dim")
    text.append("correct" if score.correct else "wrong", style="green" if score.correct else "red")
    return text
