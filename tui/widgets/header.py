"""The line at the top: which data, which endpoint (and that the local one is simulated)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class DatasetBar(Static):
    def show(
        self,
        *,
        dataset: str,
        rows: int,
        endpoint: str,
        simulated: bool,
        model: str,
        schema: str,
        mode: str,
    ) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" fanout ", style="bold reverse")
        text.append("  dataset ", style="dim")
        text.append(f"{dataset} ({rows:,} rows)", style="bold")
        text.append("   endpoint ", style="dim")
        text.append(endpoint, style="bold")
        if simulated:
            text.append(" (simulator: rule-based answers, not an LLM)", style="yellow")
        text.append("   model ", style="dim")
        text.append(model, style="bold")
        text.append("   schema ", style="dim")
        text.append(schema, style="bold")
        text.append(f"   mode {mode}", style="dim")
        self.update(text)
