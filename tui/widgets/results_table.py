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

from core.export import data_cell
from core.layout import FieldColumn, field_columns
from core.results import Row, Status
from tui.visible import visible
from tui.widgets.waterfall import LEGEND, MIN_SCALE, Timeline, delivered, waterfall

TEXT_WIDTH = 36
FIELD_WIDTH = 14
FIELD_MAX_WIDTH = 24
WATERFALL_WIDTH = 32
"""The waterfall's width when the table has room; it narrows to ``WATERFALL_MIN``."""
WATERFALL_MIN = 10
MIDDLE_MIN = 56
"""Room kept for the text and a field or two before the waterfall narrows."""
TEXT_MIN = 12
DELIVERED_WIDTH = 9
GAP = " "
EDGE = "│"
"""Between the scrolling fields and the pinned status-to-delivered columns."""
EDGE_STYLE = Style(dim=True)
GUESSED_MARK = "~"
"""Before a value the endpoint made up (the simulator's placeholder for an unknown field)."""
STATUS_STYLE = {
    Status.OK: Style(color="green"),
    Status.FAILED: Style(color="red", bold=True),
    Status.CANCELLED: Style(color="yellow"),
    Status.RUNNING: Style(color="cyan"),
    Status.PENDING: Style(dim=True),
}
ERROR_STYLE = Style(color="red")
GUESSED_STYLE = Style(italic=True, dim=True)


def clip(value: str, width: int) -> str:
    """One line of at most ``width`` cells, padded to exactly ``width``; control
    characters from the data are shown as escapes, never sent to the terminal."""
    value = visible(" ".join(value.split()))
    if cell_len(value) > width:
        value = set_cell_size(value, width - 1) + "…"
    return set_cell_size(value, width)


def in_view(middle: Strip, x: int, view: int) -> Strip:
    """The scrolling cells between ``x`` and ``x + view``, none of them cut: a cell the
    right edge cuts through is shortened again to what shows, with ``…``, and one the
    left edge cuts through (a mouse scroll can stop inside a cell) is left blank; a
    value cut at the edge would read as another value ("Anjali Nak", "7." for 7.1)."""
    right = x + view
    segments: list[Segment] = []
    start = 0
    for segment in middle:
        end = start + segment.cell_length
        if x <= start and end <= right:
            segments.append(segment)
        elif start < right and end > x:
            shown = min(end, right) - max(start, x)
            body = segment.text.rstrip()
            if start < x:
                text = " " * shown
            elif cell_len(body) <= shown:
                text = set_cell_size(body, shown)
            elif shown >= 2:
                text = set_cell_size(body, shown - 1) + "…"
            else:
                text = " " * shown
            segments.append(Segment(text, segment.style))
        start = end
    return Strip(segments).adjust_cell_length(view)


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
        Binding("left", "column(-1)", "Column left", show=False),
        Binding("right", "column(1)", "Column right", show=False),
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
        self.border_subtitle = f"waterfall: {LEGEND}"
        self.rows: list[Row] = []
        self.rows_by_key: dict[str, Row] = {}
        self._fields: list[FieldColumn] = []
        self._left: list[Column] = []
        self._middle: list[Column] = []
        self._right: list[Column] = []
        self._static: dict[int, tuple[list[Segment], Strip, list[Segment]]] = {}
        """Per row: the pinned id cell, the scrolling text and fields, status to tries."""
        self._waterfall = WATERFALL_WIDTH
        self._width = 0
        self.guessed_rows = 0
        """Rows with a value the endpoint made up (marked ``~``)."""
        self._reserved = 0
        """Lines kept for the rows a running run will still add (see ``reserve``)."""
        self._undelivered: set[int] = set()
        """Rows drawn before the strategy delivered them: their marker is still to come."""
        self._all: list[Row] = []
        """Every row, shown or not (``rows`` holds the shown ones; see ``set_filter``)."""
        self._keep: Callable[[Row], bool] | None = None

    # -- data ----------------------------------------------------------------------

    def set_schema(self, schema: type[BaseModel]) -> None:
        """Columns for a schema: the row id pinned left; the text and the schema's fields
        (named as in exports, ``data.<field path>``) in the middle, scrolling sideways;
        status, latency, tries, the waterfall and the delivery time pinned right, so a
        wide schema never pushes them off screen."""
        self._fields = field_columns(schema)
        self._left = [Column("id", 6)]
        self._layout()
        self.reset()

    def _layout(self) -> None:
        """Fit the waterfall and the text to the width on screen: the waterfall narrows
        first, then the text; the schema's fields scroll in what is left."""
        fixed = sum(c.width + len(GAP) for c in self._left) + len(GAP)
        fixed += len(EDGE) + 9 + 8 + 5 + DELIVERED_WIDTH + 5 * len(GAP)
        width = self.scrollable_content_region.width or 160
        room = width - fixed - MIDDLE_MIN
        self._waterfall = max(WATERFALL_MIN, min(WATERFALL_WIDTH, room))
        middle = width - fixed - self._waterfall - len(GAP)
        fields = [
            Column(f.name, max(FIELD_WIDTH, min(len(f.name), FIELD_MAX_WIDTH)))
            for f in self._fields
        ]
        # The text gives way so that the fields fit, if they can, and at least one does.
        all_fields = sum(c.width + len(GAP) for c in fields)
        one_field = fields[0].width + len(GAP) if fields else 0
        room_for_text = (
            middle - all_fields if middle - all_fields >= TEXT_MIN else middle - one_field
        )
        text = max(TEXT_MIN, min(TEXT_WIDTH, room_for_text))
        self._middle = [Column("text", text), *fields]
        self._right = [
            Column("status", 9),
            Column("latency", 8, right=True),
            Column("tries", 5, right=True),
            Column("waterfall (◆ delivered)", self._waterfall),
            Column("delivered", DELIVERED_WIDTH, right=True),
        ]
        self._width = sum(
            c.width + len(GAP) for c in (*self._left, *self._middle, *self._right)
        ) + len(GAP)
        self._static.clear()

    def on_resize(self) -> None:
        self._layout()  # new widths: the cached cells are dropped there
        self._resize()
        self.refresh()

    @property
    def _left_width(self) -> int:
        return len(GAP) + sum(c.width + len(GAP) for c in self._left)

    @property
    def _right_width(self) -> int:
        return len(EDGE) + sum(c.width + len(GAP) for c in self._right)

    def reset(self) -> None:
        self.rows.clear()
        self._all.clear()
        self.rows_by_key.clear()
        self._static.clear()
        self.guessed_rows = 0
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
                if row.guessed:
                    self.guessed_rows += 1

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
        width = self.scrollable_content_region.width
        if y == 0:
            left, middle, right = self._header()
            base = self.get_component_rich_style("results--header")
        else:
            index = scroll_y + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, self.rich_style)
            left, middle, right = self._line(index)
            base = self._line_style(index)
        view = max(0, width - self._left_width - self._right_width)
        strip = Strip.join([left, in_view(middle, scroll_x, view), right])
        return strip.crop_extend(0, width, self.rich_style).apply_style(base)

    def _cells(
        self, values: list[tuple[str, Style | None]], columns: list[Column]
    ) -> list[Segment]:
        segments: list[Segment] = []
        for (text, style), column in zip(values, columns, strict=False):
            value = clip(text, column.width)
            if column.right:
                value = value.strip().rjust(column.width)
            segments += [Segment(value, style), Segment(GAP)]
        return segments

    def _header(self) -> tuple[Strip, Strip, Strip]:
        def part(columns: list[Column]) -> list[Segment]:
            return self._cells([(c.label, None) for c in columns], columns)

        left = [Segment(GAP), *part(self._left)]
        return (
            Strip(left, self._left_width),
            Strip(part(self._middle), self._middle_width),
            Strip([Segment(EDGE, EDGE_STYLE), *part(self._right)], self._right_width),
        )

    @property
    def _middle_width(self) -> int:
        return sum(c.width + len(GAP) for c in self._middle)

    def _line_style(self, index: int) -> Style:
        base = self.rich_style
        if index == self.cursor_row and self.has_focus:
            return base + self.get_component_rich_style("results--cursor")
        if index % 2:
            return base + self.get_component_rich_style("results--stripe")
        return base

    def _line(self, index: int) -> tuple[Strip, Strip, Strip]:
        row = self.rows[index]
        if row.delivered_s is None:
            self._undelivered.add(index)
        static = self._static.get(row.index)
        if static is None:
            static = self._static[row.index] = self._static_cells(row)
        left, middle, right_static = static
        right = [
            Segment(EDGE, EDGE_STYLE),
            *right_static,
            *waterfall(row, self.timeline, self._waterfall),
            Segment(GAP),
            delivered(row, DELIVERED_WIDTH),
            Segment(GAP),
        ]
        return Strip(left, self._left_width), middle, Strip(right, self._right_width)

    def _static_cells(self, row: Row) -> tuple[list[Segment], Strip, list[Segment]]:
        guessed = set(row.guessed)
        fields: list[tuple[str, Style | None]] = []
        for column in self._fields:
            text = data_cell(column.value(row.data), as_json=column.json_cell)
            if guessed and _is_guessed(column.label, guessed):
                fields.append((GUESSED_MARK + text, GUESSED_STYLE))
            else:
                fields.append((text, None))
        if row.status is Status.FAILED and fields:
            fields[0] = (row.error or "failed", ERROR_STYLE)
        elif row.status is Status.FAILED:
            fields = [(row.error or "failed", ERROR_STYLE)]
        latency = "" if row.latency_s is None else f"{row.latency_s:.2f} s"
        left = [Segment(GAP), *self._cells([(row.id, None)], self._left)]
        middle = self._cells([(row.text, None), *fields], self._middle)
        right = self._cells(
            [
                (row.status.value, STATUS_STYLE[row.status]),
                (latency, None),
                (str(row.attempts), None),
            ],
            self._right[:3],
        )
        return left, Strip(middle, self._middle_width), right

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

    def action_column(self, step: int) -> None:
        """Scroll the fields sideways by one whole column, so a press always shows the
        next field from its first character (not one cell at a time)."""
        starts, offset = [], 0
        for column in self._middle:
            starts.append(offset)
            offset += column.width + len(GAP)
        x = int(self.scroll_x)
        if step > 0:
            target = next((s for s in starts if s > x), self.max_scroll_x)
        else:
            target = next((s for s in reversed(starts) if s < x), 0)
        self.scroll_to(x=min(target, self.max_scroll_x), animate=False)

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


def _is_guessed(label: str, guessed: set[str]) -> bool:
    """Whether a column holds a made-up value: its path, or a path inside it
    (``items`` for ``items[].quantity``), is among the row's guessed paths."""
    if label in guessed:
        return True
    return any(path.startswith((label + ".", label + "[")) for path in guessed)
