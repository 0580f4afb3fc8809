"""Requests in flight over time, for this run and the few before it.

Drawn with plotext: a for loop is a flat line at 1, gather a spike to N that
drains, a semaphore a plateau at k. By default the chart shows the current
run on its own scale (a plateau at 50 after a gather of 1,000 stays readable);
the overlay of the last runs on one axis makes the difference visible. The
legend sits outside the plot, in ``ChartLegend``, so it never hides a line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget
from textual_plotext import PlotextPlot

from core.strategies import LABELS
from tui.widgets.stats_bar import pack

COLORS = ("cyan", "magenta", "green", "orange", "blue")
LEGEND_COLORS = {"orange": "dark_orange", "gray": "grey50"}
"""Rich's names where plotext's differ."""
MAX_SERIES = len(COLORS)
LIMIT_COLOR = "gray"
"""The adaptive strategy's limit over time, drawn with its run's line."""
MAX_POINTS = 120


@dataclass
class Series:
    label: str
    samples: list[tuple[float, int]]
    limits: list[tuple[float, int]] = field(default_factory=list)
    """The adaptive strategy's limit over time (empty for the others)."""


def steps(samples: list[tuple[float, int]], buckets: int = MAX_POINTS) -> list[tuple[float, int]]:
    """A step line through the samples: the peak of each time bucket, held until the next.

    Taking the peak keeps a gather's spike and a semaphore's plateau visible
    (a finish and the next start come microseconds apart, so raw samples dip).
    """
    if len(samples) < 2:
        return samples
    start, end = samples[0][0], samples[-1][0]
    width = (end - start) / buckets or 1.0
    peaks: dict[int, int] = {}
    for at, value in samples:
        bucket = min(buckets - 1, int((at - start) / width))
        peaks[bucket] = max(peaks.get(bucket, 0), value)
    points: list[tuple[float, int]] = []
    for bucket, peak in sorted(peaks.items()):
        at = start + bucket * width
        if points:
            points.append((at, points[-1][1]))
        points.append((at, peak))
    points.append((end, points[-1][1]))
    points.append(samples[-1])
    return points


def line(series: Series, now: float | None = None) -> list[tuple[float, int]]:
    """The points to draw for a series; while its run goes (``now`` given), the line
    is held at its last value up to now, so the time axis keeps up with the run
    even while nothing starts or finishes (a slow endpoint's first seconds)."""
    points = steps(series.samples)
    if now is not None and points and now > points[-1][0]:
        points = [*points, (now, points[-1][1])]
    return points


class ChartLegend(Widget):
    """Which line is which, below the plot; an entry moves to the next line whole."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.entries: list[Text] = []
        self._shown: tuple[tuple[tuple[str, str], ...], str] | None = None

    def show(self, entries: list[tuple[str, str]], hint: str) -> None:
        """Called on every redraw: a no-op unless the legend changed, and a re-layout
        only when it needs another line."""
        shown = (tuple(entries), hint)
        if shown == self._shown:
            return
        self._shown = shown
        before = len(self.lines(self.size.width)) if self.size.width else 0
        self.entries = [
            Text("━━ " + label, style=LEGEND_COLORS.get(color, color)) for label, color in entries
        ]
        if hint:
            self.entries.append(Text(hint, style="dim"))
        self.refresh(layout=not self.size.width or len(self.lines(self.size.width)) != before)

    def lines(self, width: int) -> list[Text]:
        rows = pack([entry.cell_len for entry in self.entries], width)
        return [Text("  ").join(self.entries[i] for i in row) for row in rows]

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.lines(width)))

    def render(self) -> Text:
        return Text("\n").join(self.lines(self.size.width))


class InFlightChart(PlotextPlot):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.series: list[Series] = []
        self.overlay = False
        """False: the current run alone, on its own scale; True: the last runs on one axis."""
        self.legend: ChartLegend | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()

    def start_series(self, strategy: str, semaphore: int | None, number: int) -> Series:
        label = f"#{number} {LABELS.get(strategy, strategy)}"
        if semaphore:
            label += f" ({semaphore})"
        series = Series(label, [(0.0, 0)])
        self.series.append(series)
        del self.series[:-MAX_SERIES]
        return series

    def toggle_overlay(self) -> bool:
        self.overlay = not self.overlay
        self.redraw()
        return self.overlay

    def drawn(self) -> list[tuple[Series, str]]:
        """The series on the chart with their colours (a run keeps its colour)."""
        paired = list(zip(self.series, COLORS, strict=False))
        return paired if self.overlay else paired[-1:]

    def redraw(self, now: float | None = None) -> None:
        """Draw the shown series; ``now`` is the current run's elapsed time while it goes."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("requests in flight" + (" · last runs" if self.overlay else ""))
        plt.xlabel("seconds")
        peak = 1
        current = self.series[-1] if self.series else None
        drawn = self.drawn()
        for series, color in drawn:
            points = line(series, now if series is current else None)
            if len(points) < 2:
                continue
            peak = max(peak, max(y for _, y in points))
            plt.plot([x for x, _ in points], [y for _, y in points], color=color, marker="braille")
            if len(series.limits) > 1:
                limit = steps(series.limits)
                peak = max(peak, max(y for _, y in limit))
                plt.plot([x for x, _ in limit], [y for _, y in limit], color=LIMIT_COLOR)
        if not drawn:
            plt.plot([0.0, 1.0], [0, 0], color="gray", marker="braille")
        top = peak + max(1, peak // 8)
        plt.ylim(0, top)
        plt.yticks(integer_ticks(peak))
        self.refresh()
        if self.legend is not None:
            hint = ""
            if len(self.series) > 1:
                hint = "v: this run only" if self.overlay else "v: overlay"
            entries = [(s.label, color) for s, color in drawn]
            if any(len(s.limits) > 1 for s, _ in drawn):
                entries.append(("adaptive limit", LIMIT_COLOR))
            self.legend.show(entries, hint)


def integer_ticks(peak: int, count: int = 4) -> list[int]:
    """Whole-number ticks at a round step (1, 2, 5 x 10^k), and the peak itself, so a
    plateau at k reads k on the axis."""
    steps = (m * 10**k for k in range(12) for m in (1, 2, 5))
    step = next(s for s in steps if -(-peak // s) <= count)
    ticks = list(range(0, peak + 1, step))
    if peak - ticks[-1] >= step / 2:
        ticks.append(peak)
    return ticks
