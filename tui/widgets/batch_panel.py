"""The batches of a run via the Batch API: each one's status, counts and ETA."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from core.batch.job import BatchView
from tui.units import secs

STATUS_STYLE = {
    "validating": "yellow",
    "in_progress": "cyan",
    "finalizing": "cyan",
    "completed": "green",
    "failed": "red",
    "expired": "red",
    "cancelling": "yellow",
    "cancelled": "dim",
    "not_submitted": "red",
}


class BatchPanel(Static):
    """Hidden until a batch run starts; one line a batch, then a total with the ETA."""

    DEFAULT_CSS = """
    BatchPanel {
        display: none;
        height: auto;
        max-height: 6;
        padding: 0 1;
    }
    BatchPanel.-on {
        display: block;
    }
    """

    def show(self, views: Sequence[BatchView]) -> None:
        self.add_class("-on")
        self.update(render(views))

    def hide(self) -> None:
        self.remove_class("-on")


def render(views: Sequence[BatchView]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    total = sum(v.total or v.rows for v in views)
    done = sum(v.completed + v.failed for v in views)
    etas = [v.eta_s for v in views if v.eta_s is not None]
    text.append("Batch API ", style="bold")
    noun = "batch" if len(views) == 1 else "batches"
    text.append(f"{len(views)} {noun} · {done:,}/{total:,} answered", style="dim")
    if etas:
        text.append(f" · ETA {secs(max(etas))}", style="bold")
    shown = views if len(views) <= 4 else views[-4:]
    if len(shown) < len(views):
        text.append(f" · last {len(shown)} shown", style="dim")
    for view in shown:
        text.append("\n")
        text.append(f"{view.part:>3} ", style="dim")
        text.append(f"{view.status:<13}", style=STATUS_STYLE.get(view.status, ""))
        text.append(f" {view.completed + view.failed:,}/{view.total or view.rows:,}")
        if view.failed:
            text.append(f" · {view.failed:,} failed", style="red")
        if view.eta_s is not None:
            text.append(f" · ETA {secs(view.eta_s)}")
        text.append(f"  {view.batch_id or ''}", style="dim")
    return text
