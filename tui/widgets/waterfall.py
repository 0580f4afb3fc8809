"""Timing cells that read the live row when they paint.

A ``Timeline`` holds the run's time scale; a waterfall cell draws its row's
queued-start-finish span against it, with a diamond where the strategy
delivered the row. The span shows where the time went (``Row.phases``):
``·`` waiting its turn (for a semaphore slot, or the rows before it in a
for loop; after its start, for a connection from the pool), ``░`` waiting
for the client-side rate limiter, ``▒`` backing off before a retry, ``█``
on the wire (and the client's own work). A row's limiter, connection and
backoff waits are drawn first, in that order, then its wire time: at one
cell per column, the sums are what can be read, not the order of a retried
row's attempts.

Because cells read the row and the scale when they are drawn, nothing is
rewritten when the scale grows or a row is delivered later (gather
delivers everything at the end): the table only repaints. While a
run goes the scale grows in steps (``Timeline.stretch``), so most frames
repaint only the rows that changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style

from core.results import Row, Status

BAR = "█"
WAIT = "·"
LIMITER = "░"
BACKOFF = "▒"
DELIVERED = "◆"
LEGEND = "· waiting its turn  ░ rate limiter  ▒ backoff  █ on the wire  ◆ delivered"
STYLES = {
    Status.OK: Style(color="green"),
    Status.FAILED: Style(color="red"),
    Status.CANCELLED: Style(color="yellow", dim=True),
    Status.RUNNING: Style(color="cyan"),
    Status.PENDING: Style(dim=True),
}
WAIT_STYLE = Style(dim=True)
DELIVERED_STYLE = Style(color="magenta", bold=True)
MIN_SCALE = 0.01
"""The shortest time axis (seconds), for a run's very first frame."""


@dataclass
class Timeline:
    """The time span (seconds) the waterfall column covers; grows while a run runs."""

    scale: float = 1.0

    def stretch(self, elapsed: float) -> bool:
        """While a run goes: cover ``elapsed``, growing in steps of a quarter or so.

        Between steps the bars already drawn stay as they are, so a frame
        repaints only the rows that changed, not every visible row. Returns
        whether the scale changed (then every bar has to be redrawn).
        """
        if elapsed <= self.scale:
            return False
        self.scale = nice_ceiling(elapsed)
        return True

    def column(self, seconds: float, width: int) -> int:
        if self.scale <= 0:
            return 0
        return max(0, min(width - 1, int(seconds / self.scale * width)))


NICE = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceiling(seconds: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten >= seconds."""
    if seconds <= 0:
        return MIN_SCALE
    power = 10.0 ** math.floor(math.log10(seconds))
    for step in NICE:
        if step * power >= seconds * (1 - 1e-9):
            return max(MIN_SCALE, round(step * power, 12))
    return 10 * power  # pragma: no cover - NICE ends at 10


def waterfall(row: Row, timeline: Timeline, width: int) -> list[Segment]:
    """Dots while the row waited for a slot, then its limiter wait, backoff and wire time."""
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
        phases = row.phases
        if phases is not None and row.finished_s is not None:
            # The last cell stays a bar: every finished row shows its time on the wire.
            at = row.started_s
            for glyph, seconds, glyph_style in (
                (LIMITER, phases.wait_limiter_s, style),
                (WAIT, phases.connect_s, WAIT_STYLE),
                (BACKOFF, phases.backoff_s, style),
            ):
                first = min(end, timeline.column(at, width))
                at += seconds
                for i in range(first, min(end, timeline.column(at, width))):
                    chars[i], styles[i] = glyph, glyph_style
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
