"""Open another dataset: the file, its text and id columns, and the schema to extract.

A path may be typed, picked from the folder tree, or be a bundled name
(``contacts.csv``). Picking a file shows its rows and columns and suggests a
built-in schema that fits (``core.models.suggest_schema``). A file or schema
that does not load shows the loader's message here; the dashboard keeps its
current data until both load.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, DirectoryTree, Input, Label, Select

from core.dataset import Dataset, load_dataset
from core.errors import FanoutError
from core.models import BUILTIN_MODELS, load_schema, suggest_schema
from core.options import bundled_datasets_dir, resolve_dataset

DATA_SUFFIXES = {".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".txt"}
OWN = "own"
"""The schema picker's entry for a model of the user's own (typed below it)."""


@dataclass(frozen=True)
class OpenChoice:
    """What the dialog returns: the loaded dataset, and the schema with its spec."""

    dataset: Dataset
    schema: type[BaseModel]
    schema_spec: str


class DataFileTree(DirectoryTree):
    """Folders and data files only; hidden entries left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            p
            for p in paths
            if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in DATA_SUFFIXES)
        ]


class OpenDatasetScreen(ModalScreen[OpenChoice | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(
        self,
        start: Path,
        text_column: str | None,
        schema_spec: str = "Person",
        id_column: str | None = None,
    ) -> None:
        super().__init__()
        self.start = start
        self.text_column = text_column
        self.id_column = id_column
        self.schema_spec = schema_spec
        self._schema_touched = False
        self._preview_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        folder = self.start if self.start.is_dir() else self.start.parent
        builtin = next((n for n in BUILTIN_MODELS if n.lower() == self.schema_spec.lower()), None)
        with Vertical(id="open", classes="dialog") as box:
            box.border_title = "open a dataset (.csv .tsv .jsonl .json .txt)"
            yield DataFileTree(folder, id="open-tree")
            yield Input(
                str(self.start),
                placeholder=f"path, or a bundled name ({', '.join(_bundled())})",
                id="open-path",
            )
            yield Label("", id="open-info", classes="hint")
            with Horizontal(classes="fields"):
                yield Input(
                    self.text_column or "", placeholder="text column: text", id="open-column"
                )
                yield Input(self.id_column or "", placeholder="id column: id", id="open-id")
            with Horizontal(classes="fields"):
                yield Select(
                    [(name, name) for name in BUILTIN_MODELS] + [("your own…", OWN)],
                    value=builtin or OWN,
                    allow_blank=False,
                    id="open-schema",
                )
                yield Input(
                    "" if builtin else self.schema_spec,
                    placeholder="path/to/file.py:Class or module:Class",
                    id="open-schema-spec",
                )
            yield Label("", id="open-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Open", variant="primary", id="open-ok")
                yield Button("Cancel", id="open-cancel")

    def on_mount(self) -> None:
        self.query_one("#open-path", Input).focus()
        self._preview()

    # -- what the user picked ------------------------------------------------------

    def _path(self) -> Path:
        return resolve_dataset(self.query_one("#open-path", Input).value.strip() or None)

    def _value(self, selector: str) -> str | None:
        return self.query_one(selector, Input).value.strip() or None

    def _spec(self) -> str:
        choice = self.query_one("#open-schema", Select).value
        own = self._value("#open-schema-spec")
        if choice == OWN or own:
            return own or ""
        return str(choice)

    def _load(self) -> Dataset:
        return load_dataset(
            self._path(), text_column=self._value("#open-column"), id_column=self._value("#open-id")
        )

    def _preview(self) -> None:
        """Rows, columns and a suggested schema for the file named now (quietly on errors)."""
        info = self.query_one("#open-info", Label)
        try:
            dataset = self._load()
        except FanoutError:
            info.update("")
            return
        columns = [c for c in (dataset.text_column, dataset.id_column) if c]
        columns += list(dataset.columns)
        line = f"{len(dataset):,} rows · columns: {', '.join(columns) or '(plain text)'}"
        suggestion = suggest_schema(dataset.path.name, (r.text for r in dataset.records))
        if suggestion is not None:
            name, why = suggestion
            line += f" · suggested schema: {name} ({why})"
            if not self._schema_touched and not self._value("#open-schema-spec"):
                self._suggest(name)
        info.update(line)

    def _suggest(self, name: str) -> None:
        """Set the picker to a suggestion without counting it as the user's choice."""
        self.query_one("#open-schema", Select).value = name

    # -- events ----------------------------------------------------------------------

    @on(Input.Changed, "#open-path")
    def _path_typed(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(0.4, self._preview)

    @on(DirectoryTree.FileSelected)
    def _picked(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#open-path", Input).value = str(event.path)
        self._preview()

    @on(Select.Changed, "#open-schema")
    def _schema_picked(self, event: Select.Changed) -> None:
        if not event.select.has_focus_within:
            return  # set by the dialog (its start, a suggestion), not by the user
        self._schema_touched = True
        if event.value == OWN:
            self.query_one("#open-schema-spec", Input).focus()
        else:
            self.query_one("#open-schema-spec", Input).value = ""

    @on(Input.Submitted)
    @on(Button.Pressed, "#open-ok")
    def _open(self) -> None:
        error = self.query_one("#open-error", Label)
        try:
            dataset = self._load()
            if not self._schema_touched and not self._value("#open-schema-spec"):
                suggestion = suggest_schema(dataset.path.name, (r.text for r in dataset.records))
                if suggestion is not None:
                    self._suggest(suggestion[0])
            spec = self._spec()
            if not spec:
                raise FanoutError("choose a schema, or give your own as path/to/file.py:Class")
            schema = load_schema(spec)
        except FanoutError as exc:  # the loader's message carries the fix
            error.update(str(exc))
            return
        self.dismiss(OpenChoice(dataset, schema, spec))

    @on(Button.Pressed, "#open-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _bundled() -> list[str]:
    folder = bundled_datasets_dir()
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in DATA_SUFFIXES)
