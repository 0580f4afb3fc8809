"""Requests in flight over time, for this run and the few before it.

Drawn with plotext: a for loop is a flat line at 1, gather a spike to N that
drains, a semaphore a plateau at k. Overlaying runs makes the difference
visible, not only readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual_plotext import PlotextPlot

from core.strategies import LABELS

COLORS = ("cyan", "magenta", "green", "orange", "blue")
MAX_SERIES = len(COLORS)
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


class InFlightChart(PlotextPlot):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.series: list[Series] = []

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

    def redraw(self, now: float | None = None) -> None:
        """Draw every series; ``now`` is the current run's elapsed time while it goes."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("requests in flight")
        plt.xlabel("seconds")
        peak = 1
        current = self.series[-1] if self.series else None
        for series, color in zip(self.series, COLORS, strict=False):
            points = line(series, now if series is current else None)
            if len(points) < 2:
                continue
            peak = max(peak, max(y for _, y in points))
            plt.plot(
                [x for x, _ in points],
                [y for _, y in points],
                label=series.label,
                color=color,
                marker="braille",
            )
        if not self.series:
            plt.plot([0.0, 1.0], [0, 0], color="gray", marker="braille")
        # Head room above the highest line keeps the legend from hiding it.
        top = peak + max(1, peak // 2) * len(self.series[-MAX_SERIES:]) // 2 + 1
        plt.ylim(0, top)
        plt.yticks(integer_ticks(top))
        self.refresh()


def integer_ticks(top: int, count: int = 4) -> list[int]:
    step = max(1, -(-top // count))
    return list(range(0, top + 1, step))
