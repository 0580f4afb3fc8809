"""Export dialog: a prefilled path; Enter writes the file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet


@dataclass(frozen=True)
class ExportChoice:
    path: Path
    what: str
    """"results" or "runs"."""


def default_export_name(dataset: str, strategy: str, what: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    if what == "runs":
        return f"fanout-{dataset}-runs-{stamp}.csv"
    return f"fanout-{dataset}-{strategy}-{stamp}.csv"


class ExportScreen(ModalScreen[ExportChoice | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, dataset: str, strategy: str, *, now: datetime | None = None) -> None:
        super().__init__()
        self.dataset = dataset
        self.strategy = strategy
        self.now = now or datetime.now()

    def compose(self) -> ComposeResult:
        with Vertical(id="export", classes="dialog") as box:
            box.border_title = "export"
            with RadioSet(id="export-what"):
                yield RadioButton("results table", value=True, name="results", id="export-results")
                yield RadioButton("runs table", name="runs", id="export-runs")
            yield Label("file (.csv or .jsonl), in the current folder unless a path is given")
            yield Input(self._default_path("results"), id="export-path")
            yield Label("", id="export-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Export", variant="primary", id="export-ok")
                yield Button("Cancel", id="export-cancel")

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    def _default_path(self, what: str) -> str:
        return default_export_name(self.dataset, self.strategy, what, self.now)

    @on(RadioSet.Changed, "#export-what")
    def _what_changed(self, event: RadioSet.Changed) -> None:
        what = event.pressed.name or "results"
        path_input = self.query_one("#export-path", Input)
        path_input.value = self._default_path(what)
        path_input.focus()

    @property
    def what(self) -> str:
        button = self.query_one("#export-what", RadioSet).pressed_button
        return (button.name if button is not None else None) or "results"

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-ok")
    def _confirm(self) -> None:
        value = self.query_one("#export-path", Input).value.strip()
        if not value:
            self.query_one("#export-error", Label).update("give a file name")
            return
        path = Path(value).expanduser()
        if path.suffix.lower() not in (".csv", ".jsonl"):
            self.query_one("#export-error", Label).update("the name must end in .csv or .jsonl")
            return
        self.dismiss(ExportChoice(path, self.what))

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
