"""Cells that draw a row's timing, read live from the row at render time.

A ``Timeline`` holds the run's time scale; every ``WaterfallCell`` draws its
row's queued-start-finish span against it, with a diamond where the
strategy delivered the row. Because cells read the row and the scale when
they render, the table never rewrites cells when the scale grows or a row is
delivered later (gather delivers everything at the end): it only repaints.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text

from core.results import Row, Status

BAR = "█"
WAIT = "·"
DELIVERED = "◆"
STYLES = {
    Status.OK: Style(color="green"),
    Status.FAILED: Style(color="red"),
    Status.CANCELLED: Style(color="yellow", dim=True),
    Status.RUNNING: Style(color="cyan"),
    Status.PENDING: Style(dim=True),
}


@dataclass
class Timeline:
    """The time span (seconds) the waterfall column covers; grows while a run runs."""

    scale: float = 1.0

    def column(self, seconds: float, width: int) -> int:
        if self.scale <= 0:
            return 0
        return max(0, min(width - 1, int(seconds / self.scale * width)))


class WaterfallCell:
    """A bar from the row's start to its finish; dots while it waited for a slot."""

    def __init__(self, row: Row, timeline: Timeline, width: int) -> None:
        self.row = row
        self.timeline = timeline
        self.width = width

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.text()

    def text(self) -> Text:
        row, width = self.row, self.width
        cells = [" "] * width
        styles: list[Style | None] = [None] * width
        if row.started_s is not None:
            start = self.timeline.column(row.started_s, width)
            end_s = row.finished_s if row.finished_s is not None else row.started_s
            end = max(start, self.timeline.column(end_s, width))
            if row.queued_s is not None:
                for i in range(self.timeline.column(row.queued_s, width), start):
                    cells[i], styles[i] = WAIT, Style(dim=True)
            style = STYLES[row.status]
            for i in range(start, end + 1):
                cells[i], styles[i] = BAR, style
        if row.delivered_s is not None:
            at = self.timeline.column(row.delivered_s, width)
            cells[at], styles[at] = DELIVERED, Style(color="magenta", bold=True)
        text = Text(no_wrap=True, end="")
        for char, style in zip(cells, styles, strict=True):
            text.append(char, style)
        return text


class DeliveredCell:
    """When the strategy handed the row over, or a dash until it has."""

    width = 9

    def __init__(self, row: Row) -> None:
        self.row = row

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        value = self.row.delivered_s
        if value is None:
            yield Text("waiting".rjust(self.width), style="dim", end="")
        else:
            yield Text(f"{value:.2f} s".rjust(self.width), style="magenta", end="")
