"""Accuracy per field against the gold labels, as bars, worst first, updated live."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from core.quality.tally import QualityTally
from tui.visible import visible


def accuracy_style(accuracy: float | None) -> str:
    if accuracy is None:
        return "dim"
    return "green" if accuracy >= 0.95 else "yellow" if accuracy >= 0.8 else "red"


def quality_text(tally: QualityTally | None, width: int) -> Text:
    """The panel's lines at ``width`` columns: rows correct, then one bar per field."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if tally is None:
        text.append("no gold labels (README: Quality)", "dim")
        return text
    if not tally.rows:
        text.append(f"{len(tally.gold):,} gold labels; no rows yet", style="dim")
        return text
    accuracy = tally.accuracy
    text.append("rows correct ", style="bold")
    text.append(f"{tally.correct_rows:,}/{tally.rows:,} ")
    text.append(f"{accuracy:.1%}", style=accuracy_style(accuracy))
    fields = tally.worst_first()
    label_width = min(max((len(t.label) for t in fields), default=4), max(4, width // 3))
    bar_width = max(4, width - label_width - 9)
    for t in fields:
        value = t.accuracy or 0.0
        label = visible(t.label)
        if len(label) > label_width:
            label = label[: label_width - 1] + "…"
        filled = round(value * bar_width)
        text.append("\n")
        text.append(label.ljust(label_width) + " ")
        text.append("█" * filled, style=accuracy_style(value))
        text.append("░" * (bar_width - filled), style="dim")
        text.append(f"{value:7.1%}", style=accuracy_style(value))
    return text


class QualityPanel(Static):
    """Rows correct and accuracy per field (worst first); ``w`` filters the wrong rows."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.tally: QualityTally | None = None

    def show(self, tally: QualityTally | None) -> None:
        self.tally = tally
        self.update(quality_text(tally, max(20, self.content_region.width or 36)))

    def on_resize(self) -> None:
        self.show(self.tally)
