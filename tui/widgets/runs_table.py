"""Every run of this session, side by side: the article's table, measured."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from core.quality.report import QualitySummary, percent, short_usd
from core.stats import RunStats
from core.strategies import LABELS
from tui.units import secs

COLUMNS = (
    ("#", 3),
    ("model", 12),
    ("accuracy", 8),
    ("correct/s", 9),
    ("$/correct", 9),
    ("mode", 11),
    ("strategy", 24),
    ("semaphore", 9),
    ("rows", 6),
    ("ok", 6),
    ("failed", 6),
    ("cancelled", 9),
    ("elapsed", 9),
    ("first result", 12),
    ("rows/s", 8),
    ("p50", 8),
    ("p95", 8),
    ("max in flight", 13),
    ("wait sem/lim", 12),
    ("tokens", 8),
    ("cost", 9),
    ("note", 24),
)


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


class RunsTable(DataTable[Any]):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.history: list[tuple[str, RunStats]] = []
        self.quality: list[QualitySummary | None] = []
        self.run_ids: list[str | None] = []
        """The stored run of each line (a past run opened with h), so it is listed once."""

    def on_mount(self) -> None:
        for label, width in COLUMNS:
            self.add_column(label, width=width)

    def add_stats(
        self,
        dataset: str,
        stats: RunStats,
        *,
        quality: QualitySummary | None = None,
        model: str = "",
        mode: str = "",
        run_id: str | None = None,
    ) -> None:
        """One run; ``quality`` (with gold labels) fills accuracy, correct rows/s ("goodput")
        and cost per correct row, ``model`` and ``mode`` what it ran on; ``run_id``: a stored
        run opened again (listed once, noted as such)."""
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
        if run_id is not None:
            note = f"stored run {run_id}" + (f"; {note}" if note else "")
        self.add_row(
            str(number),
            model or "—",
            percent(quality.accuracy) if quality else "—",
            f"{quality.goodput_rps:.1f}" if quality and quality.goodput_rps is not None else "—",
            per_correct(quality),
            mode or "—",
            LABELS.get(stats.strategy, stats.strategy),
            str(stats.concurrency) if stats.concurrency else "—",
            str(stats.records),
            str(stats.ok),
            str(stats.failed),
            str(stats.cancelled),
            secs(stats.elapsed_s),
            secs(stats.first_result_s),
            f"{stats.throughput_rps:.1f}",
            secs(stats.p50_latency_s),
            secs(stats.p95_latency_s),
            str(stats.max_in_flight),
            waits(stats),
            f"{stats.total_tokens:,}",
            f"${stats.cost_usd:.4f}",
            note,
            key=str(number),
        )
        self.move_cursor(row=self.row_count - 1)
