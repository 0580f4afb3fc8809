"""Past runs from the run store: open one to see (and export) its rows, or resume it.

What a reader looks for comes first (status, ok, failed), and by default only
the runs of the dataset on screen are listed; ``a`` lists the whole store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label

from core.errors import StoreError
from core.quality.report import percent
from core.quality.stored import stored_quality
from core.store import RunInfo, Store
from core.strategies import LABELS
from tui.widgets.whole_cells import WholeCellTable

STATUS_STYLE = {
    "finished": "green",
    "cancelled": "yellow",
    "interrupted": "bold red",
    "running": "cyan",
}


COLUMNS = (
    "status",
    "model",
    "accuracy",
    "ok",
    "failed",
    "cancelled",
    "pending",
    "strategy",
    "sem",
    "rows",
    "dataset",
    "created (UTC)",
    "id",
)
TEXT_COLUMNS = frozenset({"status", "model", "strategy", "dataset"})
"""Shortened with "…" when cut; the other columns are figures or ids, whole or not shown."""


def stored_accuracy(info: RunInfo) -> float | None:
    """The run's accuracy as stored at its end (None: no gold labels, or not stored)."""
    value = (stored_quality(info) or {}).get("accuracy")
    return float(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class HistoryChoice:
    run: RunInfo
    action: str
    """"open" or "resume"."""


class HistoryScreen(ModalScreen[HistoryChoice | None]):
    BINDINGS = [
        Binding("enter", "choose('open')", "Open", priority=True),
        Binding("r", "choose('resume')", "Resume"),
        Binding("a", "toggle_all", "All datasets"),
        Binding("escape", "dismiss_none", "Close"),
    ]

    def __init__(self, store: Path, dataset: str | None = None) -> None:
        super().__init__()
        self.store_path = store
        self.dataset = dataset
        """List only this dataset's runs (None: all of them)."""
        self.all_datasets = dataset is None
        self.stored: list[RunInfo] = []
        self.runs: list[RunInfo] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="history", classes="dialog") as box:
            box.border_title = "past runs"
            yield WholeCellTable(
                text_columns=TEXT_COLUMNS,
                id="history-table",
                cursor_type="row",
                zebra_stripes=True,
            )
            yield Label("", id="history-note", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#history-table", DataTable)
        for label in COLUMNS:
            table.add_column(label, key=label)
        try:
            with Store(self.store_path, create=False) as store:
                self.stored = store.list_runs(limit=200)
        except StoreError as exc:
            self.query_one("#history-note", Label).update(str(exc))
            return
        self._fill()
        table.focus()

    def _fill(self) -> None:
        table = self.query_one("#history-table", DataTable)
        table.clear()
        self.runs = [
            info
            for info in self.stored
            if self.all_datasets or self.dataset is None or info.dataset_name == self.dataset
        ]
        box = self.query_one("#history")
        if self.all_datasets or self.dataset is None:
            box.border_subtitle = f"all datasets · {len(self.runs)} runs"
        else:
            box.border_subtitle = f"{self.dataset} · {len(self.runs)} runs · a: all datasets"
        note = "" if self.runs else "no runs recorded yet"
        if not self.runs and self.stored:
            note = f"no runs of {self.dataset} yet: a lists every dataset's"
        self.query_one("#history-note", Label).update(note)
        for info in self.runs:
            table.add_row(
                Text(info.status, style=STATUS_STYLE.get(info.status, "")),
                Text(info.model),
                percent(stored_accuracy(info)),
                str(info.ok),
                str(info.failed),
                str(info.cancelled),
                str(info.pending),
                "batch"
                if info.options.get("via") == "batch"
                else LABELS.get(info.strategy, info.strategy),
                str(info.semaphore or "—"),
                str(info.records),
                Text(info.dataset_name),
                info.created_at.replace("T", " ")[:16],
                info.id,
                key=info.id,
            )

    def action_toggle_all(self) -> None:
        self.all_datasets = not self.all_datasets
        self._fill()

    def _selected(self) -> RunInfo | None:
        table = self.query_one("#history-table", DataTable)
        if not self.runs or table.cursor_row < 0:
            return None
        return self.runs[table.cursor_row]

    def action_choose(self, action: str) -> None:
        info = self._selected()
        if info is None:
            return
        if action == "resume" and info.is_live:
            self.query_one("#history-note", Label).update(
                f"run {info.id} is still running in another process"
            )
            return
        self.dismiss(HistoryChoice(info, action))

    @on(DataTable.RowSelected, "#history-table")
    def _row_selected(self) -> None:
        self.action_choose("open")

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
