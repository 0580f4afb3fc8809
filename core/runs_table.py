"""The table ``fanout runs`` prints: every recorded run on one line, fitted to the terminal.

The columns follow the dashboard's runs table where they overlap: after the run's id,
date and dataset come the model, its accuracy and correct rows per second (``—``
without gold labels), then how it ran and how it ended. A wide terminal (or a pipe)
gets every column, boxed. A narrower one gets the same table packed: no vertical
rules, the dashboard's short labels (``acc``, ``✓/s``), and, if that is still too wide,
the columns a reader needs least are left out one by one (``DROP_ORDER``) and named
in the caption, so a run's line is never folded into unreadable slivers and its id is
never cut (``--json`` always has every field).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from core.quality.stored import stored_quality
from core.report import quality_cells
from core.store import RunInfo


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    justify: Literal["left", "right"] = "left"
    short: str = ""
    """The label when the table is packed (empty: the name)."""


COLUMNS = (
    Column("id"),
    Column("created"),
    Column("dataset"),
    Column("model"),
    Column("accuracy", "right", "acc"),
    Column("correct/s", "right", "✓/s"),
    Column("strategy"),
    Column("semaphore", "right", "sem"),
    Column("rows", "right"),
    Column("ok", "right"),
    Column("failed", "right"),
    Column("cancelled", "right", "canc"),
    Column("cost", "right"),
    Column("status"),
)

DROP_ORDER = ("cancelled", "semaphore", "rows", "created", "correct/s", "model", "strategy")
"""Left out in this order while the packed table is wider than the terminal. What stays
(id, dataset, accuracy, ok, failed, cost, status) fits 80 columns: which run, how it
ended, how right it was, what it cost. ``cancelled`` goes first: the status says so."""


def run_cells(info: RunInfo, batch: Mapping[str, Any] | None = None) -> dict[str, str]:
    """One run's cells by column name; ``batch``: its batches (``runs_cells``), if any."""
    accuracy, goodput, _ = quality_cells(stored_quality(info))
    status = info.status
    if info.pending and not info.is_live:  # rows never sent; cancelled ones have a column
        status = f"{status} ({info.pending} pending)"
    return {
        "id": info.id,
        "created": _local_time(info.created_at),
        "dataset": info.dataset_name,
        "model": info.model or "—",
        "accuracy": accuracy,
        "correct/s": goodput,
        "strategy": "batch" if batch else info.strategy,
        "semaphore": str(info.semaphore) if info.semaphore and not batch else "—",
        "rows": str(info.records),
        "ok": str(info.ok),
        "failed": _failed_cell(info.failed, info.errors_by_kind),
        "cancelled": str(info.cancelled),
        "cost": f"${info.cost_usd:.4f}",
        "status": status + str((batch or {}).get("batches_line", "")),
    }


def runs_table(
    title: str, lines: Sequence[Mapping[str, str]], console: Console
) -> tuple[Table, list[str]]:
    """The table for ``console``'s width, and the names of the columns left out."""
    full = _table(title, lines, COLUMNS, packed=False)
    if _width(console, full) <= console.width:
        return full, []
    shown = list(COLUMNS)
    for name in DROP_ORDER:
        table = _table(title, lines, shown, packed=True)
        if _width(console, table) <= console.width:
            break
        shown = [column for column in shown if column.name != name]
    else:
        table = _table(title, lines, shown, packed=True)
    left_out = [column.name for column in COLUMNS if column not in shown]
    if left_out:
        table.caption = (
            f"left out at {console.width} columns: {', '.join(left_out)} (--json has every field)"
        )
    return table, left_out


def _table(
    title: str, lines: Sequence[Mapping[str, str]], columns: Sequence[Column], *, packed: bool
) -> Table:
    table = Table(title=title, title_style="bold", caption_justify="left")
    if packed:
        table.box = box.SIMPLE_HEAD
        table.show_edge = False
        table.padding = (0, 1, 0, 0)  # with the blank rule: two spaces between columns
        table.pad_edge = False
    for column in columns:
        label = column.short if packed and column.short else column.name
        if column.name == "id":  # whole, on one line, however narrow: resume and export take it
            longest = max((len(line["id"]) for line in lines), default=0)
            table.add_column(label, min_width=longest, no_wrap=True)
        else:
            table.add_column(label, justify=column.justify, overflow="ellipsis")
    for line in lines:
        table.add_row(*(line[column.name] for column in columns))
    return table


def _width(console: Console, table: Table) -> int:
    """The table's natural width, each cell on one line (measured without the console's
    width as a cap, which would make every table seem to fit)."""
    unbounded = console.options.update_width(1_000_000)
    return Measurement.get(console, unbounded, table).maximum


def _local_time(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def _failed_cell(failed: int, by_kind: dict[str, int]) -> str:
    """``3 (5xx 2, validation 1)``: the count and its causes, as the dashboard shows them."""
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))
    return f"{failed} ({kinds})" if kinds else str(failed)
