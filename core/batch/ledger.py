"""Where a batch run's batches are, in the run store, written as soon as each id exists.

One line per part (one request file, one batch) in the table ``batches`` of the run
store, added beside ``runs`` and ``rows`` (``CREATE TABLE IF NOT EXISTS``, so older
stores gain it when a batch run first touches them, and nothing else changes):

- ``rows_json``: the dataset indexes of the rows in the part, written before the file
  is uploaded;
- ``input_file_id``, written as soon as the upload returns it; ``batch_id``, as soon as
  the batch is created: a resume finds a batch created from a recorded file even when
  the process died before its id was written (``batches.list`` by input file), so no
  part is ever submitted twice;
- ``status`` (``preparing``, ``uploaded``, OpenAI's batch statuses, or
  ``not_submitted`` when the upload or the creation failed for good), the request
  counts, the output and error file ids, and ``collected`` once its lines were read;
- ``files_deleted_at`` once its files were deleted at the provider (after every row of
  the part was stored with its result; ``--batch-keep-files`` keeps them).

The ledger has its own SQLite connection and writes on the caller's thread (a few
small writes per batch); without a store (``--no-store``) it lives in memory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import StoreError

_TABLE = """
CREATE TABLE IF NOT EXISTS batches (
    run_id          TEXT NOT NULL,
    part            INTEGER NOT NULL,
    session         INTEGER NOT NULL DEFAULT 0,
    rows_json       TEXT NOT NULL,
    input_file_id   TEXT,
    batch_id        TEXT,
    status          TEXT NOT NULL,
    total           INTEGER NOT NULL DEFAULT 0,
    completed       INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    output_file_id  TEXT,
    error_file_id   TEXT,
    collected       INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    files_deleted_at TEXT,
    PRIMARY KEY (run_id, part)
)
"""
_COLUMNS = (
    "run_id, part, session, rows_json, input_file_id, batch_id, status, total, completed, "
    "failed, output_file_id, error_file_id, collected, created_at, updated_at, files_deleted_at"
)
_UPDATABLE = frozenset(
    {
        "input_file_id",
        "batch_id",
        "status",
        "total",
        "completed",
        "failed",
        "output_file_id",
        "error_file_id",
        "collected",
        "files_deleted_at",
    }
)
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled", "not_submitted"})
"""Statuses after which a batch changes no more."""


@dataclass(frozen=True)
class Part:
    run_id: str
    part: int
    session: int
    rows: tuple[int, ...]
    input_file_id: str | None
    batch_id: str | None
    status: str
    total: int
    completed: int
    failed: int
    output_file_id: str | None
    error_file_id: str | None
    collected: bool
    created_at: str
    updated_at: str
    files_deleted_at: str | None = None
    """When fanout deleted the part's input, output and error files at the provider (its
    results were stored by then); None while they are kept."""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "batch_id": self.batch_id,
            "input_file_id": self.input_file_id,
            "status": self.status,
            "rows": len(self.rows),
            "total": self.total,
            "completed": self.completed,
            "failed": self.failed,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "collected": self.collected,
            "files_deleted_at": self.files_deleted_at,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Ledger:
    """The ``batches`` table of one store (or of memory, for a run not stored)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(
                ":memory:" if path is None else path,
                timeout=5.0,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA busy_timeout = 5000")
            if path is not None:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute(_TABLE)
            _add_missing_columns(self._conn)
        except sqlite3.Error as exc:
            raise StoreError(f"store {path}: cannot keep the batches: {exc}") from None

    def close(self) -> None:
        self._conn.close()

    def parts(self, run_id: str) -> list[Part]:
        return [
            _part(values)
            for values in self._conn.execute(
                f"SELECT {_COLUMNS} FROM batches WHERE run_id = ? ORDER BY part", (run_id,)
            )
        ]

    def add(self, run_id: str, part: int, session: int, rows: Sequence[int]) -> Part:
        stamp = _now()
        self._conn.execute(
            f"INSERT INTO batches ({_COLUMNS}) VALUES "
            "(?, ?, ?, ?, NULL, NULL, 'preparing', ?, 0, 0, NULL, NULL, 0, ?, ?, NULL)",
            (run_id, part, session, json.dumps(list(rows)), len(rows), stamp, stamp),
        )
        return self.get(run_id, part)

    def get(self, run_id: str, part: int) -> Part:
        values = self._conn.execute(
            f"SELECT {_COLUMNS} FROM batches WHERE run_id = ? AND part = ?", (run_id, part)
        ).fetchone()
        if values is None:
            raise StoreError(f"no part {part} of run {run_id} in the batches table")
        return _part(values)

    def update(self, run_id: str, part: int, **fields: Any) -> Part:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"not a batch column: {', '.join(sorted(unknown))}")
        names = sorted(fields)
        assignments = ", ".join(f"{name} = ?" for name in names)
        self._conn.execute(
            f"UPDATE batches SET {assignments}, updated_at = ? WHERE run_id = ? AND part = ?",
            (*(fields[n] for n in names), _now(), run_id, part),
        )
        return self.get(run_id, part)


def _part(values: Sequence[Any]) -> Part:
    (run_id, part, session, rows_json, input_file_id, batch_id, status) = values[:7]
    (total, completed, failed, output_file_id, error_file_id, collected) = values[7:13]
    return Part(
        run_id=run_id,
        part=int(part),
        session=int(session),
        rows=tuple(int(i) for i in json.loads(rows_json)),
        input_file_id=input_file_id,
        batch_id=batch_id,
        status=status,
        total=int(total),
        completed=int(completed),
        failed=int(failed),
        output_file_id=output_file_id,
        error_file_id=error_file_id,
        collected=bool(collected),
        created_at=values[13],
        updated_at=values[14],
        files_deleted_at=values[15],
    )


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """A store whose ``batches`` table predates a column gains it (NULL for old parts)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(batches)")}
    if "files_deleted_at" not in have:
        conn.execute("ALTER TABLE batches ADD COLUMN files_deleted_at TEXT")


def stored_rows(path: Path, run_id: str, rows: Sequence[int]) -> set[int]:
    """Which of these rows the run store holds with a final result (ok or failed)."""
    conn = sqlite3.connect(path, timeout=5.0)
    try:
        found: set[int] = set()
        wanted = list(rows)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            found.update(
                int(idx)
                for (idx,) in conn.execute(
                    f"SELECT idx FROM rows WHERE run_id = ? AND idx IN ({marks}) "
                    "AND status IN ('ok', 'failed')",
                    [run_id, *chunk],
                )
            )
        return found
    finally:
        conn.close()


def batch_parts(path: Path, run_ids: Sequence[str]) -> dict[str, list[Part]]:
    """The parts of these runs (for ``fanout runs``); empty when the store has none."""
    conn = sqlite3.connect(path, timeout=5.0)
    try:
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batches'"
        ).fetchone()
        if not has or not run_ids:
            return {}
        marks = ", ".join("?" for _ in run_ids)
        found: dict[str, list[Part]] = {}
        for values in conn.execute(
            f"SELECT {_COLUMNS} FROM batches WHERE run_id IN ({marks}) ORDER BY run_id, part",
            list(run_ids),
        ):
            part = _part(values)
            found.setdefault(part.run_id, []).append(part)
        return found
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def summary(parts: Sequence[Part]) -> str:
    """``2 batches: completed 1, in_progress 1 (450/1000 done)``."""
    if not parts:
        return ""
    latest: dict[int, Part] = {}
    for part in parts:
        latest[part.part] = part
    by_status: dict[str, int] = {}
    for part in latest.values():
        by_status[part.status] = by_status.get(part.status, 0) + 1
    total = sum(p.total for p in latest.values())
    done = sum(p.completed + p.failed for p in latest.values())
    statuses = ", ".join(f"{status} {n}" for status, n in sorted(by_status.items()))
    noun = "batch" if len(latest) == 1 else "batches"
    return f"{len(latest)} {noun}: {statuses} ({done}/{total} done)"
