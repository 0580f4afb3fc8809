"""The results table: one line per finished request, in the order they finished.

A Line API widget rather than a DataTable: adding a row appends to a list and
grows the virtual height, and painting draws only the visible lines, so a
run of 100,000 rows costs the same per frame as one of 100. Cells that do not
change are built once per row; the timing cells (waterfall, delivered) are
drawn from the live row every time, so late deliveries and a growing time
scale only need a repaint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.models import field_columns, flatten
from core.results import Row, Status
from tui.widgets.waterfall import MIN_SCALE, Timeline, delivered, waterfall

TEXT_WIDTH = 36
FIELD_WIDTH = 14
WATERFALL_WIDTH = 32
DELIVERED_WIDTH = 9
GAP = " "
STATUS_STYLE = {
    Status.OK: Style(color="green"),
    Status.FAILED: Style(color="red", bold=True),
    Status.CANCELLED: Style(color="yellow"),
    Status.RUNNING: Style(color="cyan"),
    Status.PENDING: Style(dim=True),
}
ERROR_STYLE = Style(color="red")


def clip(value: str, width: int) -> str:
    """One line of at most ``width`` cells, padded to exactly ``width``."""
    value = " ".join(value.split())
    if cell_len(value) > width:
        value = set_cell_size(value, width - 1) + "…"
    return set_cell_size(value, width)


@dataclass(frozen=True)
class Column:
    label: str
    width: int
    right: bool = False


class ResultsTable(ScrollView, can_focus=True):
    """Rows are appended as requests finish; ``enter`` opens the row under the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "choose", "Detail", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "results--header",
        "results--cursor",
        "results--stripe",
    }

    cursor_row: reactive[int] = reactive(0)

    class RowChosen(Message):
        """Enter (or a click) on a row."""

        def __init__(self, table: ResultsTable, row: Row) -> None:
            super().__init__()
            self.row = row
            self._table = table

        @property
        def control(self) -> ResultsTable:
            return self._table

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeline = Timeline()
        self.rows: list[Row] = []
        self.rows_by_key: dict[str, Row] = {}
        self._fields: list[str] = []
        self._columns: list[Column] = []
        self._static: dict[int, list[Segment]] = {}
        self._width = 0
        self._reserved = 0
        """Lines kept for the rows a running run will still add (see ``reserve``)."""
        self._undelivered: set[int] = set()
        """Rows drawn before the strategy delivered them: their marker is still to come."""
        self._all: list[Row] = []
        """Every row, shown or not (``rows`` holds the shown ones; see ``set_filter``)."""
        self._keep: Callable[[Row], bool] | None = None

    # -- data ----------------------------------------------------------------------

    def set_schema(self, schema: type[BaseModel]) -> None:
        self._fields = field_columns(schema)
        self._columns = [
            Column("id", 6),
            Column("text", TEXT_WIDTH),
            *(Column(name, FIELD_WIDTH) for name in self._fields),
            Column("status", 9),
            Column("latency", 8, right=True),
            Column("tries", 5, right=True),
            Column("waterfall (◆ delivered)", WATERFALL_WIDTH),
            Column("delivered", DELIVERED_WIDTH, right=True),
        ]
        self._width = sum(c.width for c in self._columns) + len(GAP) * (len(self._columns) + 1)
        self.reset()

    def reset(self) -> None:
        self.rows.clear()
        self._all.clear()
        self.rows_by_key.clear()
        self._static.clear()
        self.timeline.scale = 1.0
        self.cursor_row = 0
        self._reserved = 0
        self._undelivered.clear()
        self._resize()
        self.refresh()

    def reserve(self, rows: int) -> None:
        """Make room up front for a run of ``rows``: every change of the scrollable
        height re-lays-out the whole screen (15-50 ms), so a run that fills a table
        it has room in costs one layout, not one per growth step."""
        self._reserved = rows + 1
        self.timeline.scale = MIN_SCALE  # the axis grows from the run's first frame on
        self._resize()
        self.refresh()

    def add_results(self, rows: Sequence[Row], span: float) -> None:
        """Append rows for good (a run's end, a stored run): the height fits them and
        the time axis fits ``span`` seconds, exactly."""
        self._reserved = 0
        self._append(rows)
        self.timeline.scale = max(span, MIN_SCALE)
        self._resize()
        self.refresh()

    def show_progress(self, rows: Sequence[Row], elapsed: float) -> None:
        """A running run's frame: append ``rows``, let the time axis keep up with
        ``elapsed``, and repaint only what changed on screen: the new rows in view
        and rows in view delivered since they were drawn. A frame repaints every
        visible row only when the axis grows a step."""
        first = len(self.rows)
        self._append(rows)
        self._resize()
        if self.timeline.stretch(elapsed):
            self.refresh()
            return
        top, bottom = self._in_view()
        new_top, new_bottom = max(first, top), min(len(self.rows), bottom)
        if new_top < new_bottom:
            self.refresh_lines(new_top + 1, new_bottom - new_top)
        for index in list(self._undelivered):
            if self.rows[index].delivered_s is None:
                continue
            self._undelivered.discard(index)
            if top <= index < bottom:
                self.refresh_line(index + 1)

    def _append(self, rows: Sequence[Row]) -> None:
        for row in rows:
            key = str(row.index)
            if key not in self.rows_by_key:
                self.rows_by_key[key] = row
                self._all.append(row)
                if self._keep is None or self._keep(row):
                    self.rows.append(row)

    def _in_view(self) -> tuple[int, int]:
        """The rows on screen: ``rows[top:bottom]`` (line 0 is the header)."""
        top = int(self.scroll_offset.y)
        return top, top + max(0, self.size.height - 1)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def row_for_key(self, key: str | None) -> Row | None:
        return None if key is None else self.rows_by_key.get(key)

    def _resize(self) -> None:
        """Header plus rows, or the room reserved for a running run if that is more."""
        lines = max(len(self.rows) + 1, self._reserved)
        if lines != self.virtual_size.height or self._width != self.virtual_size.width:
            self.virtual_size = Size(self._width, lines)

    # -- drawing -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            strip = self._header()
        else:
            index = scroll_y + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, self.rich_style)
            strip = self._line(index)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _header(self) -> Strip:
        style = self.get_component_rich_style("results--header")
        segments = [Segment(GAP, style)]
        for column in self._columns:
            text = clip(column.label, column.width)
            segments += [Segment(text, style), Segment(GAP, style)]
        return Strip(segments, self._width)

    def _line(self, index: int) -> Strip:
        row = self.rows[index]
        if row.delivered_s is None:
            self._undelivered.add(index)
        static = self._static.get(row.index)
        if static is None:
            static = self._static[row.index] = self._static_cells(row)
        segments = [
            *static,
            *waterfall(row, self.timeline, WATERFALL_WIDTH),
            Segment(GAP),
            delivered(row, DELIVERED_WIDTH),
            Segment(GAP),
        ]
        strip = Strip(segments, self._width)
        base = self.rich_style
        if index == self.cursor_row and self.has_focus:
            base = base + self.get_component_rich_style("results--cursor")
        elif index % 2:
            base = base + self.get_component_rich_style("results--stripe")
        return strip.apply_style(base)

    def _static_cells(self, row: Row) -> list[Segment]:
        values = flatten(row.data or {}, self._fields)
        fields: list[tuple[str, Style | None]] = [
            ("" if values[name] is None else str(values[name]), None) for name in self._fields
        ]
        if row.status is Status.FAILED and fields:
            fields[0] = (row.error or "failed", ERROR_STYLE)
        latency = "" if row.latency_s is None else f"{row.latency_s:.2f} s"
        cells: list[tuple[str, Style | None]] = [
            (row.id, None),
            (row.text, None),
            *fields,
            (row.status.value, STATUS_STYLE[row.status]),
            (latency, None),
            (str(row.attempts), None),
        ]
        segments = [Segment(GAP)]
        for (text, style), column in zip(cells, self._columns, strict=False):
            value = clip(text, column.width)
            if column.right:
                value = value.strip().rjust(column.width)
            segments += [Segment(value, style), Segment(GAP)]
        return segments

    # -- filter (e.g. failed rows only) -------------------------------------------------

    def set_filter(self, keep: Callable[[Row], bool] | None) -> None:
        """Show only the rows ``keep`` accepts (all rows for None); later rows follow it."""
        self._keep = keep
        self.rows[:] = [row for row in self._all if keep is None or keep(row)]
        self._undelivered.clear()
        self.cursor_row = 0
        self.scroll_to(y=0, animate=False)
        self._resize()
        self.refresh()

    # -- moving around -------------------------------------------------------------------

    def watch_cursor_row(self, old: int, new: int) -> None:
        visible = max(1, self.size.height - 1)
        if new < self.scroll_y:
            self.scroll_to(y=new, animate=False)
        elif new >= self.scroll_y + visible:
            self.scroll_to(y=new - visible + 1, animate=False)
        self.refresh()

    def validate_cursor_row(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def action_cursor(self, step: int) -> None:
        self.cursor_row += step

    def action_page(self, direction: int) -> None:
        self.cursor_row += direction * max(1, self.size.height - 2)

    def action_jump(self, where: int) -> None:
        self.cursor_row = where if where >= 0 else len(self.rows) - 1

    def action_choose(self) -> None:
        if self.rows:
            self.post_message(self.RowChosen(self, self.rows[self.cursor_row]))

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y - 1
        if event.y >= 1 and 0 <= index < len(self.rows):
            self.cursor_row = index
            if event.chain >= 2:
                self.action_choose()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
