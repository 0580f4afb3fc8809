"""A DataTable that never shows a value cut: a cell fits whole, ends in ``…``, or is blank.

DataTable crops its lines at the widget's edge wherever that falls, so the column
the edge cuts through shows the first characters of its values: rows/s 7.1 reads
"7.", a strategy "for", a header "ro". Here every line is checked after DataTable
drew it: in a column the edge (or the column's own width) cuts, a text cell is
shortened to what shows with a trailing ``…``, and a number column is left blank
there (a shortened number would lie), until scrolling shows it whole.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.errors import MarkupError
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey


def plain(value: object) -> str:
    """What DataTable shows for a cell, as text (a str cell is read as markup there)."""
    if isinstance(value, Text):
        return value.plain
    if isinstance(value, str):
        try:
            return Text.from_markup(value).plain
        except MarkupError:
            return value
    return str(value)


class WholeCellTable(DataTable[Any]):
    """``text_columns`` (column keys) may be shortened with ``…``; every other column
    holds numbers (or ids) and is shown whole or not at all."""

    def __init__(self, *, text_columns: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text_columns = text_columns
        self._widest: dict[ColumnKey, tuple[int, int]] = {}
        """Per column: (the table's update count, its widest cell, header included)."""
        self._checked: LRUCache[tuple[int, int, int, int], tuple[Strip, Strip]] = LRUCache(1000)
        """DataTable's line (by identity: it caches its own), span and view -> the line
        checked: a redraw with nothing changed does not check its cells again."""

    def _widest_cell(self, key: ColumnKey) -> int:
        cached = self._widest.get(key)
        if cached is not None and cached[0] == self._update_count:
            return cached[1]
        column = self.columns[key]
        widest = max(
            [cell_len(column.label.plain)]
            + [cell_len(plain(value)) for value in self.get_column(key)]
        )
        self._widest[key] = (self._update_count, widest)
        return widest

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        strip = super()._render_line(y, x1, x2, base_style)
        if self.fixed_columns or self._row_label_column_width:
            return strip  # not used by fanout's tables; left as DataTable draws it
        key = (id(strip), x1, x2, self.scrollable_content_region.width)
        cached = self._checked.get(key)
        if cached is not None and cached[0] is strip:
            return cached[1]
        checked = self._check(strip, y, x1, x2)
        self._checked[key] = (strip, checked)  # holds strip: its id is not reused meanwhile
        return checked

    def _check(self, strip: Strip, y: int, x1: int, x2: int) -> Strip:
        try:
            row_key, line = self._get_offsets(y)
        except LookupError:
            return strip
        if line:
            return strip
        right = x1 + min(x2 - x1, self.scrollable_content_region.width)
        pad = self.cell_padding
        start = 0
        for column in self.ordered_columns:
            end = start + column.get_render_width(self)
            if end > x1 and start < right:
                strip = self._whole(strip, row_key, column.key, start, end, x1, right, pad)
            start = end
        return strip

    def _whole(
        self,
        strip: Strip,
        row_key: Any,
        key: ColumnKey,
        start: int,
        end: int,
        x1: int,
        right: int,
        pad: int,
    ) -> Strip:
        """``strip`` with the cell of column ``key`` (cells ``start``-``end`` of the
        table, ``x1``-``right`` in view) whole, shortened with ``…``, or blank."""
        if row_key is self._header_row_key:
            text = self.columns[key].label.plain
        else:
            text = plain(self.get_cell(row_key, key))
        text = " ".join(text.split())
        first = start + pad  # where the value starts
        room = min(end - pad, right) - first
        whole = first >= x1 and cell_len(text) <= room
        if whole and (key.value in self.text_columns or self._widest_cell(key) <= room):
            return strip  # shown whole (and, for figures, so is the whole column)
        seen_from, seen_to = max(start, x1), min(end, right)
        if first >= x1 and key.value in self.text_columns and room >= 2:
            shown = set_cell_size(set_cell_size(text, room - 1) + "…", room)
            return _replace(strip, first - x1, shown)
        return _replace(strip, seen_from - x1, " " * (seen_to - seen_from))


def _replace(strip: Strip, at: int, text: str) -> Strip:
    """``strip`` with ``text`` drawn from cell ``at`` on, in the style found there."""
    length = cell_len(text)
    if length <= 0:
        return strip
    style = next(iter(strip.crop(at, at + 1)), Segment("")).style
    return Strip.join(
        [strip.crop(0, at), Strip([Segment(text, style)], length), strip.crop(at + length)]
    )
