"""Which view the lower area shows when it has room for one only (``t`` switches)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.layout import VIEWS


class ViewTabs(Static):
    def show(self, view: str, failed_only: bool = False) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        for position, name in enumerate(VIEWS):
            if position:
                text.append(" │ ", style="dim")
            label = name + (" (failed only)" if name == "results" and failed_only else "")
            text.append(f" {label} ", style="bold reverse" if name == view else "")
        text.append("   t: switch", style="dim")
        self.update(text)
