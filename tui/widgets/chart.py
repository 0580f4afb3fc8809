"""Requests in flight over time, for this run and the few before it.

Drawn with plotext: a for loop is a flat line at 1, gather a spike to N that
drains, a semaphore a plateau at k. By default the chart shows the current
run on its own scale (a plateau at 50 after a gather of 1,000 stays readable);
the overlay of the last runs on one axis makes the difference visible. The
legend sits outside the plot, in ``ChartLegend``, so it never hides a line, and it
takes at most the rows the plot can spare: its labels shorten by a rule to fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from rich.text import Text
from textual.app import RenderResult
from textual.geometry import Size
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
SHORT_LABELS = {
    "sequential": "for loop",
    "gather": "gather",
    "as_completed": "as_completed",
    "gather_semaphore": "gather+sem",
    "as_completed_semaphore": "as_completed+sem",
    "adaptive": "adaptive",
}
"""A strategy in a legend short of room: the article's name without ``asyncio.``, with
``Semaphore`` as ``sem`` and without adaptive's ``(AIMD)``."""
MIN_PLOT_ROWS = 8
"""Rows the plot keeps under the legend: title, frame, three rows of line, axis, ticks
and the axis label."""
MARK = "━━ "
PLOT_FRAME_ROWS = 5
"""Rows of the chart that are not the plot's: title, frame top, axis, ticks, axis label."""


@dataclass
class Series:
    label: str
    samples: list[tuple[float, int]]
    limits: list[tuple[float, int]] = field(default_factory=list)
    """The adaptive strategy's limit over time (empty for the others)."""
    shorter: tuple[str, ...] = ()
    """The label shortened, less and less (``#4 gather+sem (8)``, ``#4``), for a legend
    short of room."""


def labels(strategy: str, semaphore: int | None, number: int) -> tuple[str, ...]:
    """A run's legend label, from the full one down to its number (as in the runs table)."""
    size = f" ({semaphore})" if semaphore else ""
    full = f"#{number} {LABELS.get(strategy, strategy)}{size}"
    return full, f"#{number} {SHORT_LABELS.get(strategy, strategy)}{size}", f"#{number}"


@dataclass(frozen=True)
class LegendEntry:
    forms: tuple[str, ...]
    """The text from the longest to the shortest; the last is used when none fits."""
    style: str
    mark: bool = True
    """Drawn with its line's mark (the hint is not)."""

    def text(self, level: int) -> Text:
        label = self.forms[min(level, len(self.forms) - 1)]
        return Text((MARK if self.mark else "") + label, style=self.style)


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
    """Which line is which, below the plot, in at most the rows the plot can spare.

    Entries share a line when they fit; one wider than the legend wraps at its spaces,
    indented under its label, never cut. When the full labels take more rows than the
    plot can spare, every entry shortens one step (``SHORT_LABELS``, then the run's
    number, as in the runs table's ``#``); last, the ``v`` hint goes.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.entries: list[LegendEntry] = []
        self.hint: LegendEntry | None = None
        self._shown: tuple[tuple[tuple[tuple[str, ...], str], ...], str] | None = None

    def show(self, entries: list[tuple[tuple[str, ...], str]], hint: str) -> None:
        """Called on every redraw: a no-op unless the legend changed, and a re-layout
        only when it needs another number of lines."""
        shown = (tuple(entries), hint)
        if shown == self._shown:
            return
        self._shown = shown
        before = len(self._laid_out()) if self.size.width else 0
        self.entries = [
            LegendEntry(forms, LEGEND_COLORS.get(color, color)) for forms, color in entries
        ]
        self.hint = LegendEntry((hint,), "dim", mark=False) if hint else None
        self.refresh(layout=not self.size.width or len(self._laid_out()) != before)

    def lines(self, width: int, room: int | None = None) -> list[Text]:
        """The legend in ``width`` cells and, if it can, ``room`` lines (None: any)."""
        hint = [self.hint] if self.hint else []
        levels = max((len(entry.forms) for entry in self.entries), default=1)
        attempts = [(self.entries + hint, level) for level in range(levels)]
        attempts.append((self.entries, levels - 1))  # the shortest labels, without the hint
        laid: list[Text] = []
        for entries, level in attempts:
            laid = _flow([entry.text(level) for entry in entries], width)
            if room is None or len(laid) <= room:
                break
        return laid

    def _room(self, height: int) -> int:
        return max(1, height - MIN_PLOT_ROWS)

    def _laid_out(self) -> list[Text]:
        """The legend as drawn now: the chart's box (the parent) sets the room."""
        box = self.parent
        height = box.content_size.height if isinstance(box, Widget) else 0
        return self.lines(self.size.width, self._room(height))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.lines(width, self._room(container.height))))

    def render(self) -> Text:
        return Text("\n").join(self._laid_out())


def _flow(items: list[Text], width: int) -> list[Text]:
    """Items side by side, two spaces apart, in lines of ``width`` cells; an item wider
    than that wraps at its spaces onto lines of its own, indented under its label."""
    rows = pack([item.cell_len for item in items], width)
    lines: list[Text] = []
    for row in rows:
        if len(row) == 1 and items[row[0]].cell_len > width:
            lines += _wrap(items[row[0]], width)
        else:
            lines.append(Text("  ").join(items[i] for i in row))
    return lines


def _wrap(item: Text, width: int) -> list[Text]:
    indent = " " * len(MARK)
    words = item.plain.split(" ")
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        elif lines:
            lines.append(indent + word)
        else:
            lines.append(word)
    return [Text(line, style=item.style) for line in lines]


class InFlightChart(PlotextPlot):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.series: list[Series] = []
        self.overlay = False
        self.peak = 1
        """The highest value drawn (the y axis ends a little above it)."""
        """False: the current run alone, on its own scale; True: the last runs on one axis."""
        self.legend: ChartLegend | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()

    def start_series(self, strategy: str, semaphore: int | None, number: int) -> Series:
        label, *shorter = labels(strategy, semaphore, number)
        series = Series(label, [(0.0, 0)], shorter=tuple(shorter))
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

    def title(self) -> str:
        """The plot's title; in the overlay, shortened to fit (plotext drops a title
        wider than the plot, and the overlay's would go at 120x36)."""
        if not self.overlay:
            return "requests in flight"
        titles = ("requests in flight · last runs", "in flight · last runs")
        return next((t for t in titles if len(t) <= self.size.width - 2), "last runs")

    def render(self) -> RenderResult:
        # here, for the size it is drawn at: the title, and ticks a row apart each
        self.plt.title(self.title())
        rows = self.size.height - PLOT_FRAME_ROWS
        self.plt.yticks(row_ticks(self.peak, self.peak + max(1, self.peak // 8), rows))
        return super().render()

    def redraw(self, now: float | None = None) -> None:
        """Draw the shown series; ``now`` is the current run's elapsed time while it goes."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
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
        self.peak = peak
        plt.ylim(0, peak + max(1, peak // 8))
        self.refresh()
        if self.legend is not None:
            hint = ""
            if len(self.series) > 1:
                hint = "v: this run only" if self.overlay else "v: overlay"
            entries = [((s.label, *s.shorter), color) for s, color in drawn]
            if any(len(s.limits) > 1 for s, _ in drawn):
                entries.append((("adaptive limit", "limit"), LIMIT_COLOR))
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


def row_ticks(peak: int, top: float, rows: int) -> list[int]:
    """``integer_ticks`` with as many ticks as ``rows`` rows of plot (0 to ``top``) can
    show a row apart (two labels on one row: plotext shows either, a plateau at 7 read
    as 6), the peak among them when it can be."""
    per_row = top / max(1, rows - 1)
    fitting = [
        ticks
        for ticks in [*(integer_ticks(peak, count) for count in (4, 3, 2, 1)), [0, peak]]
        if all(b - a >= per_row for a, b in pairwise(ticks))
    ]
    if fitting and fitting[0] == integer_ticks(peak):
        return fitting[0]  # room for them all: as on a tall plot
    with_peak = [ticks for ticks in fitting if ticks[-1] == peak]
    return (with_peak or fitting or [[0]])[0]
