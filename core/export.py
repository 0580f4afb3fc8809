"""Write results (and run summaries) to CSV or JSONL, safely.

- One row per record, in the layout of ``core.layout``: fanout's own columns
  (``id``, ``text``, ``status``, ``error``, timings, attempts, tokens, cost, and
  where the row's time went, ``TIMELINE_COLUMNS``),
  the input's other columns as ``input.<column>``, the schema's fields as
  ``data.<field path>`` (nested models flattened with dots; lists, dicts,
  unions and recursive models as one JSON cell). JSONL keeps the structure:
  ``{"id", "text", "input": {...}, "data": model_dump(mode="json"), ...}``.
- Spreadsheet formula injection: a text cell starting with ``=``, ``+``,
  ``-``, ``@``, tab, CR or ``'`` is prefixed with ``'`` so a spreadsheet shows
  it instead of running it (and a reader strips exactly one ``'``). Numbers
  we write ourselves are left alone.
- Atomic: written to a temporary file beside the target, then renamed, so
  a crash never leaves half a file under the target's name. The file gets
  the permissions of any file the user creates (the umask), not the temporary
  file's private 0600.
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
from core.layout import INPUT_PREFIX, FieldColumn, field_columns, input_columns
from core.quality.columns import quality_cells, quality_header, quality_json
from core.quality.gold import Gold
from core.results import PHASE_FIELDS, Row
from core.stats import RunStats

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "'")
OWN_BEFORE = ("id", "text")
"""fanout's columns before the input's and the schema's."""
OWN_AFTER = (
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
    "request_ids",
    "lenient",
    *PHASE_FIELDS,
)
"""fanout's columns after them; last, where the row's time went (``TIMELINE_COLUMNS``)."""
TIMELINE_COLUMNS = PHASE_FIELDS
"""Where each row's time went (``core.results.Phases``): filled by ``timeline_cells``;
empty for rows stored before they were recorded."""
GUESSED_COLUMN = "guessed_fields"
"""Written only when some row has fields the endpoint made up (the simulator's placeholders)."""
OWN_COLUMNS = (*OWN_BEFORE, *OWN_AFTER, GUESSED_COLUMN)
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


def _own_cell(value: Any) -> Any:
    """One of fanout's own values (timings at 12 significant digits)."""
    if isinstance(value, float):
        return format(value, ".12g") if value == value else ""
    if isinstance(value, list):  # request ids, as guessed_fields: ";"-separated
        return ";".join(str(item) for item in value)
    return data_cell(value)


def data_cell(value: Any, *, as_json: bool = False) -> str:
    """A value of the user's data as CSV text, losing nothing that CSV can hold.

    None is empty; booleans ``true``/``false``; numbers as Python writes them
    (floats round-trip exactly); text as is (formula-safe); lists and dicts,
    and anything when ``as_json``, as compact JSON.
    """
    if value is None:
        return ""
    if as_json or isinstance(value, (dict, list)):
        return str(safe_cell(json.dumps(value, ensure_ascii=False, separators=(",", ":"))))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return str(safe_cell(str(value)))


class ResultLayout:
    """The columns of one export: fixed by the schema and the rows' input columns."""

    def __init__(
        self,
        schema: type[BaseModel],
        rows: Sequence[Row],
        input_names: Sequence[str] = (),
        gold: Gold | None = None,
    ) -> None:
        self.gold = gold
        self.fields: list[FieldColumn] = field_columns(schema)
        self.inputs = input_columns((row.extra for row in rows), input_names)
        self.guessed = any(row.guessed for row in rows)
        self.header = [
            *OWN_BEFORE,
            *(INPUT_PREFIX + name for name in self.inputs),
            *(column.name for column in self.fields),
            *(quality_header(gold) if gold is not None else ()),
            *OWN_AFTER,
            *((GUESSED_COLUMN,) if self.guessed else ()),
        ]

    def cells(self, row: Row) -> list[Any]:
        own = own_values(row)
        extra = row.extra
        return [
            *(_own_cell(own[name]) for name in OWN_BEFORE),
            *(data_cell(extra.get(name)) for name in self.inputs),
            *(data_cell(c.value(row.data), as_json=c.json_cell) for c in self.fields),
            *(quality_cells(self.gold, row, data_cell) if self.gold is not None else ()),
            *(_own_cell(own[name]) for name in OWN_AFTER),
            *((";".join(row.guessed),) if self.guessed else ()),
        ]


def own_values(row: Row) -> dict[str, Any]:
    """fanout's own values for a row, by column name."""
    return {
        "id": row.id,
        "text": row.text,
        "status": row.status.value,
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
        "total_tokens": row.total_tokens,
        "cost_usd": row.cost_usd,
        "request_ids": list(row.request_ids),
        "lenient": row.lenient,
        **timeline_cells(row),
    }


def timeline_cells(row: Row) -> dict[str, float | int | None]:
    """``TIMELINE_COLUMNS`` for a row: where its time went; empty when not recorded."""
    phases = row.phases
    if phases is None:
        return dict.fromkeys(TIMELINE_COLUMNS)
    return {name: getattr(phases, name) for name in TIMELINE_COLUMNS}


def results_csv(
    rows: Iterable[Row],
    schema: type[BaseModel],
    input_names: Sequence[str] = (),
    gold: Gold | None = None,
) -> str:
    items = rows if isinstance(rows, Sequence) else list(rows)
    layout = ResultLayout(schema, items, input_names, gold)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(layout.header)
    for row in items:
        writer.writerow(layout.cells(row))
    return buffer.getvalue()


def row_json(row: Row, gold: Gold | None = None) -> dict[str, Any]:
    """A row as one JSONL object: the model's own structure under ``data``."""
    own = own_values(row)
    item: dict[str, Any] = {"id": own.pop("id"), "text": own.pop("text")}
    item["input"] = dict(row.extra)
    item["data"] = row.data
    if gold is not None:
        item.update(quality_json(gold, row))
    own.pop("total_tokens")
    item.update(own)
    if row.guessed:
        item[GUESSED_COLUMN] = list(row.guessed)
    return item


def results_jsonl(rows: Iterable[Row], gold: Gold | None = None) -> str:
    return "".join(json.dumps(row_json(row, gold), ensure_ascii=False) + "\n" for row in rows)


def export_results(
    rows: Iterable[Row],
    schema: type[BaseModel],
    path: str | Path,
    input_names: Sequence[str] = (),
    gold: Gold | None = None,
) -> Path:
    """Write results to ``path`` (.csv or .jsonl), atomically. Returns the path.

    ``input_names``: the dataset's input columns, in file order (others found
    in the rows follow). ``gold``: add the quality columns (``core.quality.columns``)."""
    target = Path(path).expanduser()
    fmt = export_format(target)
    if fmt == "csv":
        text = results_csv(rows, schema, input_names, gold)
    else:
        text = results_jsonl(rows, gold)
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
        front = [_own_cell(extra[i][name]) for name in extra_names] if extra else []
        writer.writerow([*front, *(_own_cell(data.get(name)) for name in RUN_COLUMNS)])
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
    # The temporary name is short, so a target whose name is near the file system's
    # limit (255 bytes) can still be written.
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name[:24]}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ExportError(f"cannot write in {directory}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask: from /proc where it is shown (Linux), else by setting it
    and putting it back (a moment in which another thread's new file would get 022)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
