"""Two runs of this session compared field by field: the rows where they disagree."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from core.quality.diff import FieldDifference, rows_that_differ
from tui.visible import visible

SHOWN_MAX = 500
"""Differences listed at most (the count above them is of all)."""


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    return visible(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def diff_text(left: str, right: str, differences: Sequence[FieldDifference], shared: int) -> Text:
    rows = rows_that_differ(differences)
    text = Text()
    text.append(f"{visible(left)} vs {visible(right)}: ", style="bold")
    text.append(f"{len(rows):,} of {shared:,} rows differ ({len(differences):,} fields)\n")
    if not differences:
        text.append("they agree on every field of every row both finished", style="green")
        return text
    width = max(len(d.row_id) for d in differences[:SHOWN_MAX])
    for d in differences[:SHOWN_MAX]:
        text.append("\n" + visible(d.row_id).ljust(width) + "  ", style="dim")
        text.append(visible(d.field), style="bold")
        text.append("  ")
        text.append(_shown(d.left), style="yellow")
        text.append("  →  ", style="dim")
        text.append(_shown(d.right), style="cyan")
    if len(differences) > SHOWN_MAX:
        text.append(f"\n… and {len(differences) - SHOWN_MAX:,} more (fanout diff lists all)")
    return text


class RunDiffScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "close")]

    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="run-diff", classes="dialog") as box:
            box.border_title = "the last two runs, field by field"
            yield Static(self.text, id="run-diff-text")
        yield Footer()
