"""Write results (and run summaries) to CSV or JSONL, safely.

- One row per record: id, input text, one column per schema field (nested
  fields flattened with dots), status, error, timings, attempts, tokens,
  and where the row's time went (``TIMELINE_COLUMNS``).
- Spreadsheet formula injection: a text cell starting with ``=``, ``+``,
  ``-``, ``@``, tab or CR is prefixed with ``'`` so a spreadsheet shows it
  instead of running it. Numbers we write ourselves are left alone.
- Atomic: written to a temporary file beside the target, then renamed, so
  a crash never leaves half a file under the target's name.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.errors import ExportError
from core.models import field_columns, flatten
from core.results import PHASE_FIELDS, Row
from core.stats import RunStats

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TIMELINE_COLUMNS = PHASE_FIELDS
"""Where each row's time went (``core.results.Phases``): last of fanout's own columns,
filled by ``timeline_cells``; empty for rows stored before they were recorded."""
ROW_COLUMNS_AFTER = (
    "status",
    "error",
    "error_kind",
    "latency_s",
    "queued_s",
    "started_s",
    "finished_s",
    "delivered_s",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    *TIMELINE_COLUMNS,
)
EXPORT_FORMATS = ("csv", "jsonl")


def export_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix == "csv":
        return "csv"
    raise ExportError(f"{path}: cannot tell the format; name the file .csv or .jsonl")


def safe_cell(value: Any) -> Any:
    """Neutralise a text cell a spreadsheet would execute."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".12g") if value == value else ""
    if isinstance(value, (dict, list)):
        return safe_cell(json.dumps(value, ensure_ascii=False))
    if isinstance(value, bool):
        return "true" if value else "false"
    return safe_cell(value) if isinstance(value, str) else value


def row_record(row: Row, columns: Sequence[str]) -> dict[str, Any]:
    """A row as an ordered mapping of export columns -> raw values."""
    record: dict[str, Any] = {"id": row.id, "text": row.text}
    record.update(flatten(row.data or {}, list(columns)))
    record.update(
        status=row.status.value,
        error=row.error,
        error_kind=row.error_kind.value if row.error_kind else None,
        latency_s=row.latency_s,
        queued_s=row.queued_s,
        started_s=row.started_s,
        finished_s=row.finished_s,
        delivered_s=row.delivered_s,
        attempts=row.attempts,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.total_tokens,
        cost_usd=row.cost_usd,
    )
    record.update(timeline_cells(row))
    return record


# -- the time line per row (core.results.Phases): fanout's own columns, one place --------


def timeline_cells(row: Row) -> dict[str, float | int | None]:
    """``TIMELINE_COLUMNS`` for a row: where its time went; empty when not recorded."""
    phases = row.phases
    if phases is None:
        return dict.fromkeys(TIMELINE_COLUMNS)
    return {name: getattr(phases, name) for name in TIMELINE_COLUMNS}


# ----------------------------------------------------------------------------------------


def results_csv(rows: Iterable[Row], schema: type[BaseModel]) -> str:
    columns = field_columns(schema)
    header = ["id", "text", *columns, *ROW_COLUMNS_AFTER]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        record = row_record(row, columns)
        writer.writerow([_cell(record[name]) for name in header])
    return buffer.getvalue()


def row_json(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "text": row.text,
        "status": row.status.value,
        "data": row.data,
        "error": row.error,
        "error_kind": row.error_kind.value if row.error_kind else None,
        "latency_s": row.latency_s,
        "queued_s": row.queued_s,
        "started_s": row.started_s,
        "finished_s": row.finished_s,
        "delivered_s": row.delivered_s,
        "attempts": row.attempts,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cost_usd": row.cost_usd,
        **timeline_cells(row),
    }


def results_jsonl(rows: Iterable[Row]) -> str:
    return "".join(json.dumps(row_json(row), ensure_ascii=False) + "\n" for row in rows)


def export_results(rows: Iterable[Row], schema: type[BaseModel], path: str | Path) -> Path:
    """Write results to ``path`` (.csv or .jsonl), atomically. Returns the path."""
    target = Path(path).expanduser()
    fmt = export_format(target)
    text = results_csv(rows, schema) if fmt == "csv" else results_jsonl(rows)
    write_atomic(target, text)
    return target


RUN_COLUMNS = (
    "strategy",
    "concurrency",
    "records",
    "ok",
    "failed",
    "cancelled",
    "elapsed_s",
    "first_result_s",
    "first_finished_s",
    "p50_latency_s",
    "p95_latency_s",
    "throughput_rps",
    "max_in_flight",
    "attempts",
    "rate_limited",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "errors_by_kind",
    "stopped_reason",
    # where the time went besides the wire (core.stats: RunStats' wait figures)
    "p50_wait_sem_s",
    "p95_wait_sem_s",
    "p50_wait_limiter_s",
    "p95_wait_limiter_s",
    "backoff_s",
    "retries_by_kind",
)


def runs_csv(stats: Iterable[RunStats], extra: Sequence[dict[str, Any]] | None = None) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    extra_names = list(extra[0]) if extra else []
    writer.writerow([*extra_names, *RUN_COLUMNS])
    for i, item in enumerate(stats):
        data = item.to_dict()
        front = [_cell(extra[i][name]) for name in extra_names] if extra else []
        writer.writerow([*front, *(_cell(data.get(name)) for name in RUN_COLUMNS)])
    return buffer.getvalue()


def export_runs(
    stats: Iterable[RunStats], path: str | Path, extra: Sequence[dict[str, Any]] | None = None
) -> Path:
    target = Path(path).expanduser()
    if export_format(target) == "jsonl":
        items = list(stats)
        text = "".join(
            json.dumps({**(extra[i] if extra else {}), **s.to_dict()}) + "\n"
            for i, s in enumerate(items)
        )
    else:
        text = runs_csv(stats, extra)
    write_atomic(target, text)
    return target


def write_atomic(target: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``target`` via a temp file and a rename."""
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise ExportError(f"{target}: folder {directory} does not exist")
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
