"""The results table: one row per finished request, in the order they finished."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from rich.text import Text
from textual.widgets import DataTable

from core.models import field_columns, flatten
from core.results import Row, Status
from tui.widgets.waterfall import DeliveredCell, Timeline, WaterfallCell

TEXT_WIDTH = 36
FIELD_WIDTH = 14
WATERFALL_WIDTH = 32
STATUS_STYLE = {
    Status.OK: "green",
    Status.FAILED: "bold red",
    Status.CANCELLED: "yellow",
    Status.RUNNING: "cyan",
    Status.PENDING: "dim",
}


def clip(value: str, width: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= width else value[: width - 1] + "…"


class ResultsTable(DataTable[Any]):
    """Rows are added as requests finish; timing cells repaint themselves."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.timeline = Timeline()
        self._fields: list[str] = []
        self.rows_by_key: dict[str, Row] = {}

    def set_schema(self, schema: type[BaseModel]) -> None:
        self.clear(columns=True)
        self.rows_by_key.clear()
        self._fields = field_columns(schema)
        self.add_column("id", key="id")
        self.add_column("text", key="text", width=TEXT_WIDTH)
        for name in self._fields:
            self.add_column(name, key=f"field:{name}", width=FIELD_WIDTH)
        self.add_column("status", key="status", width=9)
        self.add_column("latency", key="latency", width=8)
        self.add_column("tries", key="attempts", width=5)
        self.add_column("waterfall (◆ delivered)", key="waterfall", width=WATERFALL_WIDTH)
        self.add_column("delivered", key="delivered", width=DeliveredCell.width)

    def reset(self) -> None:
        self.clear()
        self.rows_by_key.clear()
        self.timeline.scale = 1.0

    def add_results(self, rows: Sequence[Row]) -> None:
        for row in rows:
            key = str(row.index)
            if key in self.rows_by_key:
                continue
            self.rows_by_key[key] = row
            self.add_row(*self._cells(row), key=key)

    def _cells(self, row: Row) -> list[Any]:
        values = flatten(row.data or {}, self._fields)
        field_cells = [
            Text(clip("" if values[name] is None else str(values[name]), FIELD_WIDTH))
            for name in self._fields
        ]
        if row.status is Status.FAILED and self._fields:
            field_cells[0] = Text(clip(row.error or "failed", FIELD_WIDTH), style="red")
        latency = row.latency_s
        return [
            Text(row.id),
            Text(clip(row.text, TEXT_WIDTH)),
            *field_cells,
            Text(row.status.value, style=STATUS_STYLE[row.status]),
            Text("" if latency is None else f"{latency:.2f} s", justify="right"),
            Text(str(row.attempts), justify="right"),
            WaterfallCell(row, self.timeline, WATERFALL_WIDTH),
            DeliveredCell(row),
        ]

    def repaint(self) -> None:
        """Redraw the live cells (scale or delivery changed) without touching the data."""
        self.notify_style_update()

    def row_for_key(self, key: str | None) -> Row | None:
        return None if key is None else self.rows_by_key.get(key)
