"""Timing cells that read the live row when they paint.

A ``Timeline`` holds the run's time scale; a waterfall cell draws its row's
queued-start-finish span against it, with a diamond where the strategy
delivered the row. Because cells read the row and the scale when they are
drawn, nothing is rewritten when the scale grows or a row is delivered later
(gather delivers everything at the end): the table only repaints.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style

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
WAIT_STYLE = Style(dim=True)
DELIVERED_STYLE = Style(color="magenta", bold=True)


@dataclass
class Timeline:
    """The time span (seconds) the waterfall column covers; grows while a run runs."""

    scale: float = 1.0

    def column(self, seconds: float, width: int) -> int:
        if self.scale <= 0:
            return 0
        return max(0, min(width - 1, int(seconds / self.scale * width)))


def waterfall(row: Row, timeline: Timeline, width: int) -> list[Segment]:
    """A bar from the row's start to its finish; dots while it waited for a slot."""
    chars = [" "] * width
    styles: list[Style | None] = [None] * width
    if row.started_s is not None:
        start = timeline.column(row.started_s, width)
        end_s = row.finished_s if row.finished_s is not None else row.started_s
        end = max(start, timeline.column(end_s, width))
        if row.queued_s is not None:
            for i in range(timeline.column(row.queued_s, width), start):
                chars[i], styles[i] = WAIT, WAIT_STYLE
        style = STYLES[row.status]
        for i in range(start, end + 1):
            chars[i], styles[i] = BAR, style
    if row.delivered_s is not None:
        at = timeline.column(row.delivered_s, width)
        chars[at], styles[at] = DELIVERED, DELIVERED_STYLE
    segments: list[Segment] = []
    run_start = 0
    for i in range(1, width + 1):
        if i == width or styles[i] is not styles[run_start]:
            segments.append(Segment("".join(chars[run_start:i]), styles[run_start]))
            run_start = i
    return segments


def delivered(row: Row, width: int) -> Segment:
    """When the strategy handed the row over, or "waiting" until it has."""
    if row.delivered_s is None:
        return Segment("waiting".rjust(width), WAIT_STYLE)
    return Segment(f"{row.delivered_s:.2f} s".rjust(width), Style(color="magenta"))
