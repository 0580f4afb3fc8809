"""Rows the run store could not take: kept in a recovery file, and put back later.

When the store cannot commit a run's last rows (a full disk, a lock another
process holds for too long), the recorder writes them here instead: one JSON
Lines file per run, named ``<store file>.<run id>.recovery.jsonl``, beside the
store if that folder can take it, else in the current folder, else in the
temporary folder. The command then exits non-zero and names the file.

The next command that opens the store for writing (``fanout resume``,
``fanout export``, ``fanout runs``, the dashboard's past runs) looks for such
files in those three places, writes their rows into the store, and removes
them, so a resume never pays again for a row the server answered.

Line 1 is a header ``{"fanout_recovery": 1, "store": ..., "run_id": ...,
"status": ..., "stats": ...}``; every other line is one row's stored values by
column name (``ROW_FIELDS``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import StoreError
from core.store import ROW_UPDATE_FIELDS

FORMAT = 1
SUFFIX = ".recovery.jsonl"
ROW_FIELDS = ROW_UPDATE_FIELDS


def file_name(store: Path, run_id: str) -> str:
    return f"{store.name}.{run_id}{SUFFIX}"


def folders(store: Path) -> list[Path]:
    """Where recovery files go, in order of preference (and where they are looked for)."""
    places = [store.expanduser().resolve().parent, Path.cwd(), Path(tempfile.gettempdir())]
    unique: list[Path] = []
    for place in places:
        if place not in unique:
            unique.append(place)
    return unique


def write_recovery(
    store: Path,
    run_id: str,
    params: Sequence[Sequence[Any]],
    end: tuple[str, str, dict[str, Any] | None] | None,
) -> Path:
    """Write the rows (``row_params`` tuples) and the run's end; the file's path.

    Raises ``StoreError`` naming every place tried when none can take the file.
    """
    header = {
        "fanout_recovery": FORMAT,
        "store": str(store.expanduser().resolve()),
        "run_id": run_id,
        "status": end[1] if end else None,
        "stats": end[2] if end else None,
    }
    lines = [json.dumps(header, ensure_ascii=False)]
    lines += [
        json.dumps(dict(zip(ROW_FIELDS, values, strict=True)), ensure_ascii=False)
        for values in params
    ]
    text = "\n".join(lines) + "\n"
    problems: list[str] = []
    for folder in folders(store):
        target = folder / file_name(store, run_id)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            problems.append(f"{folder}: {exc.strerror or exc}")
            target.unlink(missing_ok=True)
            continue
        return target
    raise StoreError("no folder could take the recovery file (" + "; ".join(problems) + ")")


def find_recoveries(store: Path) -> list[Path]:
    """Recovery files written for this store (by its resolved path), oldest first."""
    resolved = str(store.expanduser().resolve())
    found: list[Path] = []
    for folder in folders(store):
        for path in sorted(folder.glob(f"{store.name}.*{SUFFIX}")):
            try:
                with path.open(encoding="utf-8") as handle:
                    header = json.loads(handle.readline())
            except (OSError, ValueError):
                continue
            if isinstance(header, dict) and header.get("store") == resolved:
                found.append(path)
    return found


def read_recovery(
    path: Path,
) -> tuple[str, list[tuple[Any, ...]], tuple[str, str, dict[str, Any] | None] | None]:
    """``(run_id, row update parameters, end or None)`` from a recovery file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        rows = [json.loads(line) for line in lines[1:] if line.strip()]
        run_id = str(header["run_id"])
        params = [tuple(row[name] for name in ROW_FIELDS) for row in rows]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise StoreError(f"recovery file {path} cannot be read ({exc})") from None
    status = header.get("status")
    end = (run_id, status, header.get("stats")) if isinstance(status, str) else None
    return run_id, params, end
