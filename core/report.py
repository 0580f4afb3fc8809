"""Text output for the headless commands: a progress bar, a summary line, the table."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.quality.report import short_usd
from core.runner import Run
from core.stats import RunStats
from core.strategies import LABELS


def seconds(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f} s"


def format_stats_line(stats: RunStats, out: Path | None) -> str:
    parts = [
        f"{LABELS.get(stats.strategy, stats.strategy)}: {stats.records} rows, {stats.ok} ok",
    ]
    if stats.failed:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(stats.errors_by_kind.items()))
        parts.append(f"{stats.failed} failed ({kinds})")
    if stats.cancelled:
        parts.append(f"{stats.cancelled} cancelled")
    line = ", ".join(parts)
    line += (
        f" in {stats.elapsed_s:.2f} s ({stats.throughput_rps:.1f} rows/s); "
        f"first result {seconds(stats.first_result_s)}; "
        f"latency (on the wire) p50 {seconds(stats.p50_latency_s)} "
        f"p95 {seconds(stats.p95_latency_s)}"
    )
    waits = format_waits(stats)
    if waits:
        line += f"; {waits}"
    if stats.rate_limited:
        line += f"; {stats.achieved_rpm:.0f} ok/min, {stats.share_429:.1%} of attempts got 429"
    if stats.total_tokens:
        line += f"; {stats.total_tokens:,} tokens"
    if stats.cost_usd:
        line += f" (${stats.cost_usd:.4f})"
    if out is not None:
        line += f" -> {out}"
    return line


def format_waits(stats: RunStats) -> str:
    """The waits that are not latency, e.g. "waits p50 limiter 3.10 s, semaphore 0.20 s"."""
    parts = []
    for name, p50 in (
        ("limiter", stats.p50_wait_limiter_s),
        ("semaphore", stats.p50_wait_sem_s),
    ):
        if p50 is not None and p50 >= 0.005:
            parts.append(f"{name} {seconds(p50)}")
    line = f"waits p50 {', '.join(parts)}" if parts else ""
    if stats.backoff_s >= 0.005:
        line += ("; " if line else "") + f"backoff {seconds(stats.backoff_s)} in all"
    if stats.retries_by_kind:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(stats.retries_by_kind.items()))
        line += ("; " if line else "") + f"retries {kinds}"
    return line


@contextmanager
def progress_display(run: Run, title: str, *, enabled: bool) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr fed from the run's counters; yields a tick()."""
    if not enabled:
        yield lambda: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        transient=False,
    )
    task = progress.add_task(title, total=run.total, detail="")

    def tick() -> None:
        detail = f"in flight {run.in_flight}"
        if run.failed:
            detail += f" · failed {run.failed}"
        if run.cancelled:
            detail += f" · {run.cancelled} cancelled"
        if run.retries:
            detail += f" · retries {run.retries}"
        if run.stopping:
            detail += " · stopping"
        progress.update(task, completed=run.done, detail=detail)

    with progress:
        yield tick
        tick()


def quality_cells(quality: dict[str, Any] | None) -> list[str]:
    """Accuracy, correct rows/s and cost per correct row (``QualitySummary.to_dict``)."""
    if not quality:
        return ["—", "—", "—"]
    accuracy = quality.get("accuracy")
    rate = quality.get("goodput_rps")
    cost = quality.get("cost_per_correct_usd")
    return [
        "—" if accuracy is None else f"{accuracy:.1%}",
        "—" if rate is None else f"{rate:.1f}",
        short_usd(cost),
    ]


def stats_table(
    stats: Sequence[RunStats],
    ideal: Sequence[float | None] | None = None,
    quality: Sequence[dict[str, Any] | None] | None = None,
    models: Sequence[str] | None = None,
) -> None:
    """Print the article's table, measured; with ``quality`` (gold labels), accuracy,
    correct rows/s and cost per correct row beside the time."""
    table = Table(title="fanout bench", title_style="bold")
    if models is not None:
        table.add_column("model")
    table.add_column("strategy")
    table.add_column("semaphore", justify="right")
    table.add_column("elapsed", justify="right")
    show_ideal = bool(ideal) and any(v is not None for v in ideal or ())
    if show_ideal:
        table.add_column("ideal", justify="right")
    table.add_column("first result", justify="right")
    table.add_column("ok", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("rows/s", justify="right")
    table.add_column("p50", justify="right")
    table.add_column("p95", justify="right")
    table.add_column("max in flight", justify="right")
    table.add_column("sem wait p50", justify="right")
    rate_waits = any((item.p50_wait_limiter_s or 0) > 0 for item in stats)
    if rate_waits:
        table.add_column("limiter wait p50", justify="right")
    cancelled = any(item.cancelled for item in stats)
    if cancelled:
        table.add_column("cancelled", justify="right")
    limited = any(item.rate_limited for item in stats)
    if limited:
        table.add_column("ok/min", justify="right")
        table.add_column("429 share", justify="right")
    if quality is not None:
        for name in ("accuracy", "correct/s", "$/correct"):
            table.add_column(name, justify="right")
    for i, item in enumerate(stats):
        cells = [*((models[i],) if models is not None else ())]
        cells += [
            LABELS.get(item.strategy, item.strategy),
            str(item.concurrency) if item.concurrency else "—",
            seconds(item.elapsed_s),
        ]
        if show_ideal:
            value = ideal[i] if ideal else None
            cells.append(seconds(value))
        cells += [
            seconds(item.first_result_s),
            str(item.ok),
            str(item.failed),
            f"{item.throughput_rps:.1f}",
            seconds(item.p50_latency_s),
            seconds(item.p95_latency_s),
            str(item.max_in_flight),
            seconds(item.p50_wait_sem_s),
        ]
        if rate_waits:
            cells.append(seconds(item.p50_wait_limiter_s))
        if cancelled:
            cells.append(str(item.cancelled))
        if limited:
            cells += [f"{item.achieved_rpm:.0f}", f"{item.share_429:.1%}"]
        if quality is not None:
            cells += quality_cells(quality[i])
        table.add_row(*cells)
    console = Console()
    if not console.is_terminal:
        console = Console(width=240)  # piped: keep the table on one line per run
    console.print(table)
