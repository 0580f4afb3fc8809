"""Open another dataset: type a path or pick one from the folder tree.

A file that does not load shows the loader's message here; the dashboard
keeps its current data until a file loads.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label

from core.dataset import Dataset, load_dataset

DATA_SUFFIXES = {".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".txt"}


class DataFileTree(DirectoryTree):
    """Folders and data files only; hidden entries left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            p
            for p in paths
            if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in DATA_SUFFIXES)
        ]


class OpenDatasetScreen(ModalScreen[Dataset | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, start: Path, text_column: str | None) -> None:
        super().__init__()
        self.start = start
        self.text_column = text_column

    def compose(self) -> ComposeResult:
        folder = self.start if self.start.is_dir() else self.start.parent
        with Vertical(id="open", classes="dialog") as box:
            box.border_title = "open a dataset (.csv .jsonl .json .txt)"
            yield DataFileTree(folder, id="open-tree")
            yield Input(str(self.start), placeholder="path to a dataset file", id="open-path")
            yield Input(
                self.text_column or "", placeholder="text column (default: text)", id="open-column"
            )
            yield Label("", id="open-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Open", variant="primary", id="open-ok")
                yield Button("Cancel", id="open-cancel")

    def on_mount(self) -> None:
        self.query_one("#open-path", Input).focus()

    @on(DirectoryTree.FileSelected)
    def _picked(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#open-path", Input).value = str(event.path)
        self._open()

    @on(Input.Submitted)
    @on(Button.Pressed, "#open-ok")
    def _open(self) -> None:
        path = Path(self.query_one("#open-path", Input).value.strip()).expanduser()
        column = self.query_one("#open-column", Input).value.strip() or None
        try:
            dataset = load_dataset(path, text_column=column)
        except Exception as exc:  # DatasetError carries the fix; anything else is shown too
            self.query_one("#open-error", Label).update(str(exc))
            return
        self.dismiss(dataset)

    @on(Button.Pressed, "#open-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
