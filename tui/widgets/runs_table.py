"""Every run of this session, side by side: the article's table, measured.

The columns come in the order a reader compares runs by: which model, how accurate,
correct rows per second, cost per correct row, elapsed, cost; then how it ran. Every
column stays reachable (scroll sideways); when the table is narrower than
``COMPACT_BELOW`` cells (80x24, 120x36), it packs the columns to their content with
one space between them and shortens the labels (``SHORT``), so those six fit.
"""

from __future__ import annotations

from typing import Any

from core.quality.report import QualitySummary, percent, short_usd
from core.stats import RunStats
from core.strategies import LABELS
from tui.units import secs
from tui.widgets.whole_cells import WholeCellTable

COLUMNS = (
    ("#", 3),
    ("model", 12),
    ("accuracy", 8),
    ("correct/s", 9),
    ("$/correct", 9),
    ("elapsed", 9),
    ("cost", 9),
    ("mode", 11),
    ("strategy", 24),
    ("failed", 6),
    ("rows/s", 8),
    ("p50", 8),
    ("p95", 8),
    ("first result", 12),
    ("semaphore", 9),
    ("rows", 6),
    ("ok", 6),
    ("cancelled", 9),
    ("max in flight", 13),
    ("wait sem/lim", 12),
    ("tokens", 8),
    ("note", 24),
)


SHORT = {"accuracy": "acc", "correct/s": "✓/s", "$/correct": "$/✓", "first result": "first"}
"""Labels when compact; each is documented under the table in the README."""
TEXT_COLUMNS = frozenset({"model", "mode", "strategy", "note"})
"""Columns shortened with "…" when cut; the others hold figures, shown whole or not at all."""
COMPACT_BELOW = 100
"""Narrower than this (cells inside the border): the compact columns."""


def waits(stats: RunStats) -> str:
    """p50 waits for a semaphore slot and for the client-side rate limiter."""
    if stats.p50_wait_sem_s is None and stats.p50_wait_limiter_s is None:
        return "—"
    return f"{short_secs(stats.p50_wait_sem_s)} / {short_secs(stats.p50_wait_limiter_s)}"


def per_correct(quality: QualitySummary | None) -> str:
    """Cost per correct row, to 2 significant figures (a simulator's $0 shows as $0)."""
    return short_usd(quality.cost_per_correct_usd if quality is not None else None)


def short_secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


class RunsTable(WholeCellTable):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(text_columns=TEXT_COLUMNS, cursor_type="row", zebra_stripes=True, **kwargs)
        self.history: list[tuple[str, RunStats]] = []
        self.quality: list[QualitySummary | None] = []
        self.run_ids: list[str | None] = []
        """The stored run of each line (a past run opened with h), so it is listed once."""

        self.cells: list[list[str]] = []
        """Every line's cells, in ``COLUMNS`` order (the table is laid out again from them)."""
        self.compact: bool | None = None

    def on_mount(self) -> None:
        self._lay_out()

    def on_resize(self) -> None:
        if self.compact != self._wants_compact():
            self._lay_out()

    def _wants_compact(self) -> bool:
        return 0 < self.size.width < COMPACT_BELOW

    def _lay_out(self) -> None:
        """Columns for the width the table has (wide: fixed widths; compact: packed to
        their content, short labels), then every line again, the cursor kept."""
        compact = self._wants_compact()
        self.compact = compact
        cursor = self.cursor_row
        self.clear(columns=True)
        self.cell_padding = 0 if compact else 1
        for position, (label, width) in enumerate(COLUMNS):
            if compact:
                shown = SHORT.get(label, label)
                longest = max((len(line[position]) for line in self.cells), default=0)
                self.add_column(shown, width=max(len(shown), longest) + 1, key=label)
            else:
                self.add_column(label, width=width, key=label)
        for line in self.cells:
            self.add_row(*line, key=line[0])
        if self.cells:
            self.move_cursor(row=min(max(cursor, 0), len(self.cells) - 1))

    def add_stats(
        self,
        dataset: str,
        stats: RunStats,
        *,
        quality: QualitySummary | None = None,
        model: str = "",
        mode: str = "",
        run_id: str | None = None,
        reopened: bool = False,
    ) -> None:
        """One run; ``quality`` (with gold labels) fills accuracy, correct rows/s ("goodput")
        and cost per correct row, ``model`` and ``mode`` what it ran on; ``run_id``: its run in
        the store (a run is listed once); ``reopened``: a stored run opened with h."""
        if run_id is not None and run_id in self.run_ids:
            self.move_cursor(row=self.run_ids.index(run_id))
            return
        self.run_ids.append(run_id)
        self.history.append((dataset, stats))
        self.quality.append(quality)
        number = len(self.history)
        note = stats.stopped_reason or ""
        if stats.errors_by_kind:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(stats.errors_by_kind.items()))
            note = f"{kinds}; {note}" if note else kinds
        if reopened:
            note = f"stored run {run_id}" + (f"; {note}" if note else "")
        self.cells.append(
            [
                str(number),
                model or "—",
                percent(quality.accuracy) if quality else "—",
                f"{quality.goodput_rps:.1f}"
                if quality and quality.goodput_rps is not None
                else "—",
                per_correct(quality),
                secs(stats.elapsed_s),
                f"${stats.cost_usd:.4f}",
                mode or "—",
                LABELS.get(stats.strategy, stats.strategy),
                str(stats.failed),
                f"{stats.throughput_rps:.1f}",
                secs(stats.p50_latency_s),
                secs(stats.p95_latency_s),
                secs(stats.first_result_s),
                str(stats.concurrency) if stats.concurrency else "—",
                str(stats.records),
                str(stats.ok),
                str(stats.cancelled),
                str(stats.max_in_flight),
                waits(stats),
                f"{stats.total_tokens:,}",
                note,
            ]
        )
        self._lay_out()
        self.move_cursor(row=self.row_count - 1)
