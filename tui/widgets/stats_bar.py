"""Live figures for the current run: elapsed, in flight, progress, failures, speed, latency.

"In flight" is requests on the wire and latency is wire time; the waits (for
a semaphore slot, for the client-side rate limiter) have their own figure,
and the client-side limits stay shown for as long as they are set.

The figures are packed to the width the bar has, so none is ever cut: as
tiles (a label over its value) in the side column, or as one flowing line of
``label value`` items in the compact layout. Each value is shortened by its
unit (``tui.units``), and the bar grows a line rather than hide a figure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import ProgressBar

from tui.layout import is_compact
from tui.live import LiveStats
from tui.units import count, money, rate, secs

FIGURES = (
    ("elapsed", "elapsed"),
    ("in-flight", "in flight/limit"),
    ("done", "done"),
    ("failed", "failed"),
    ("errors", "errors"),
    ("cancelled", "cancelled"),
    ("throughput", "rows/s"),
    ("latency", "p50 / p95"),
    ("first", "first result"),
    ("tokens", "tokens"),
    ("cost", "cost"),
    ("retries", "retries"),
    ("waits", "wait sem / lim"),
    ("limits", "client limits"),
)
"""(key, label) in the order shown; a figure whose value is empty is left out."""
GAP = 2


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    bad: bool = False

    @property
    def tile_width(self) -> int:
        return max(cell_len(self.label), cell_len(self.value))

    @property
    def item_width(self) -> int:
        return cell_len(self.label) + 1 + cell_len(self.value)


def pack(widths: list[int], room: int, gap: int = GAP) -> list[list[int]]:
    """Indexes of items of ``widths`` in rows of at most ``room`` cells, in order;
    an item wider than ``room`` gets a row of its own."""
    rows: list[list[int]] = []
    used = 0
    for index, width in enumerate(widths):
        if rows and used + gap + width <= room:
            rows[-1].append(index)
            used += gap + width
        else:
            rows.append([index])
            used = width
    return rows


def fold(text: Text, room: int) -> Iterator[Text]:
    """``text`` in pieces of ``room`` cells (only a value wider than the bar needs it)."""
    plain = text.plain
    if room <= 0 or cell_len(plain) <= room:
        yield text
        return
    for start in range(0, len(text), room):
        yield text[start : start + room]


class StatTiles(Widget):
    """The figures, packed to the width: see the module docstring."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"stats--label", "stats--value", "stats--bad"}

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.figures: dict[str, Figure] = {key: Figure(label, "") for key, label in FIGURES}
        self._height = 0

    def set_value(self, key: str, value: str, *, bad: bool = False) -> None:
        """Show ``value``; a no-op when nothing changed, and a re-layout only when the
        packed figures need another line, so a tick costs only this widget's repaint."""
        figure = Figure(self.figures[key].label, value, bad)
        if figure == self.figures[key]:
            return
        self.figures[key] = figure
        if self.size.width and len(self.lines(self.size.width)) != self._height:
            self.refresh(layout=True)
        else:
            self.refresh()

    def value(self, key: str) -> str:
        return self.figures[key].value

    def shown(self) -> list[Figure]:
        return [figure for figure in self.figures.values() if figure.value]

    def lines(self, width: int) -> list[Text]:
        figures = self.shown()
        label = self.get_component_rich_style("stats--label", partial=True)
        plain = self.get_component_rich_style("stats--value", partial=True)
        bad = self.get_component_rich_style("stats--bad", partial=True)

        def value_style(figure: Figure) -> Style:
            return bad if figure.bad else plain

        lines: list[Text] = []
        gap = " " * GAP
        if is_compact(self.screen):
            for row in pack([f.item_width for f in figures], width):
                line = Text(no_wrap=True)
                for position, index in enumerate(row):
                    figure = figures[index]
                    line.append(gap if position else "")
                    line.append(figure.label + " ", style=label)
                    line.append(figure.value, style=value_style(figure))
                lines.extend(fold(line, width))
            return lines
        for row in pack([f.tile_width for f in figures], width):
            top, bottom = Text(no_wrap=True), Text(no_wrap=True)
            for position, index in enumerate(row):
                figure = figures[index]
                top.append(gap if position else "")
                bottom.append(gap if position else "")
                top.append(figure.label.ljust(figure.tile_width), style=label)
                bottom.append(figure.value.ljust(figure.tile_width), style=value_style(figure))
            lines.extend([*fold(top, width), *fold(bottom, width)])
        return lines

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.lines(width)))

    def render(self) -> Text:
        lines = self.lines(self.size.width)
        self._height = len(lines)
        return Text("\n", no_wrap=True).join(lines)


class StatsBar(Vertical):
    def compose(self) -> ComposeResult:
        yield StatTiles(id="stat-tiles")
        yield ProgressBar(total=1, show_eta=False, id="progress")

    @property
    def tiles(self) -> StatTiles:
        return self.query_one(StatTiles)

    def value(self, key: str) -> str:
        return self.tiles.value(key)

    def show(self, stats: LiveStats) -> None:
        tiles = self.tiles
        state = (" stopping" if stats.running else " stopped") if stats.stopping else ""
        tiles.set_value("elapsed", secs(stats.elapsed) + state)
        limit = "∞" if stats.limit is None else count(stats.limit)
        tiles.set_value("in-flight", f"{count(stats.in_flight)}/{limit}")
        tiles.set_value("done", f"{count(stats.done)}/{count(stats.total)}")
        self.query_one("#progress", ProgressBar).update(
            total=max(1, stats.total), progress=stats.done
        )
        tiles.set_value("failed", count(stats.failed), bad=stats.failed > 0)
        kinds = ", ".join(f"{k} {count(n)}" for k, n in sorted(stats.errors_by_kind.items()))
        tiles.set_value("errors", kinds, bad=True)
        tiles.set_value("cancelled", count(stats.cancelled) if stats.cancelled else "")
        tiles.set_value("throughput", rate(stats.throughput))
        tiles.set_value("latency", f"{secs(stats.p50)} / {secs(stats.p95)}")
        tiles.set_value("first", secs(stats.first_result))
        tiles.set_value("tokens", count(stats.tokens))
        tiles.set_value("cost", money(stats.cost_usd))
        tiles.set_value("retries", count(stats.retries) if stats.retries else "")
        tiles.set_value("waits", f"{secs(stats.wait_sem_p50)} / {secs(stats.wait_limiter_p50)}")

    def show_limits(self, limits: str) -> None:
        """The client-side limits (rpm, tpm, budget) the next runs go under, or "none"."""
        self.tiles.set_value("limits", limits, bad=limits != "none")

    def clear(self, total: int) -> None:
        tiles = self.tiles
        for key, _ in FIGURES:
            if key != "limits":  # the client-side limits stay shown while they are set
                tiles.set_value(key, "—")
        for key in ("errors", "cancelled", "retries"):
            tiles.set_value(key, "")
        tiles.set_value("done", f"0/{count(total)}")
        self.query_one("#progress", ProgressBar).update(total=max(1, total), progress=0)
