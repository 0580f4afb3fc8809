"""Past runs from the run store: open one to see (and export) its rows, or resume it."""

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
from core.store import RunInfo, Store
from core.strategies import LABELS

STATUS_STYLE = {
    "finished": "green",
    "cancelled": "yellow",
    "interrupted": "bold red",
    "running": "cyan",
}


@dataclass(frozen=True)
class HistoryChoice:
    run: RunInfo
    action: str
    """"open" or "resume"."""


class HistoryScreen(ModalScreen[HistoryChoice | None]):
    BINDINGS = [
        Binding("enter", "choose('open')", "Open", priority=True),
        Binding("r", "choose('resume')", "Resume"),
        Binding("escape", "dismiss_none", "Close"),
    ]

    def __init__(self, store: Path) -> None:
        super().__init__()
        self.store_path = store
        self.runs: list[RunInfo] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="history", classes="dialog") as box:
            box.border_title = f"past runs · {self.store_path}"
            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
            yield Label("", id="history-note", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#history-table", DataTable)
        for label in (
            "id",
            "created (UTC)",
            "dataset",
            "strategy",
            "sem",
            "rows",
            "ok",
            "failed",
            "cancelled",
            "pending",
            "status",
        ):
            table.add_column(label)
        try:
            with Store(self.store_path, create=False) as store:
                self.runs = store.list_runs(limit=200)
        except StoreError as exc:
            self.query_one("#history-note", Label).update(str(exc))
            return
        if not self.runs:
            self.query_one("#history-note", Label).update("no runs recorded yet")
        for info in self.runs:
            table.add_row(
                info.id,
                info.created_at.replace("T", " ")[:19],
                Text(info.dataset_name),
                LABELS.get(info.strategy, info.strategy),
                str(info.semaphore or "—"),
                str(info.records),
                str(info.ok),
                str(info.failed),
                str(info.cancelled),
                str(info.pending),
                Text(info.status, style=STATUS_STYLE.get(info.status, "")),
                key=info.id,
            )
        table.focus()

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
