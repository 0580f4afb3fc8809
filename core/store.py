"""The run store: every run and every row, in one SQLite file, so no paid-for result is lost.

The file lives in the user data dir (``platformdirs.user_data_path("fanout")``),
or where ``--store PATH`` or ``FANOUT_STORE`` say. It is opened in WAL mode
with ``synchronous=NORMAL``: a committed transaction survives the process
being killed at any moment (only a power loss can take the last few commits).

Tables (schema version ``SCHEMA_VERSION``, kept in ``schema_version``):

- ``runs``: one line per run: what was run (dataset, text column, schema
  spec and JSON schema, strategy, concurrency, endpoint kind, model, mode,
  options), who runs it (pid, host, process start time), its status and,
  once it ended, its final stats. Never an API key; a ``base_url`` only for
  non-local endpoints, with any ``user:password@``, query and fragment removed.
- ``rows``: one line per record, inserted as ``pending`` when the run starts
  (so resuming needs no input file), with the input's other columns
  (``extra_json``) and the row's checked gold label (``gold_json``, ``core.quality``),
  updated as rows finish. A run's quality figures sit in its stats, under ``quality``.

A store of an older schema version is brought up to date when opened
(the columns of ``_ADDED_ROW_COLUMNS`` it lacks, one transaction); a newer one is refused.

The status stored is ``running``, ``finished`` or ``cancelled``. A run whose
process died stays ``running`` in the file; readers report it as
``interrupted`` when its pid is gone (see ``RunInfo.status``).

A ``Store`` is one connection: use it from one thread. The recorder
(``core.recorder``) opens its own ``Store`` on its writer thread.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.dataset import Record
from core.errors import StoreError
from core.results import NO_EXTRA, ErrorKind, Phases, Row, Status
from core.strategies import USES_CONCURRENCY

SCHEMA_VERSION = 2
"""1: the first. 2: ``rows`` gains ``extra_json`` (the input's other columns),
``guessed_json`` (fields the endpoint made up) and ``timeline_json`` (where each row's
time went, ``Phases``)."""
STORE_ENV = "FANOUT_STORE"
STORE_FILENAME = "runs.sqlite3"
BUSY_TIMEOUT_S = 5.0
LATEST = ("last", "latest")
"""Run references that mean "the newest run"."""

QUALITY_KEY = "quality"
"""Where a run's stats hold its quality figures (accuracy, correct rows, goodput ...)."""

STORED_STATUSES = ("running", "finished", "cancelled", "interrupted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER NOT NULL,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id            TEXT PRIMARY KEY,
    created_at    TEXT NOT NULL,
    ended_at      TEXT,
    status        TEXT NOT NULL
                  CHECK (status IN ('running', 'finished', 'cancelled', 'interrupted')),
    pid           INTEGER,
    host          TEXT,
    proc_start    TEXT,
    dataset_path  TEXT NOT NULL,
    dataset_name  TEXT NOT NULL,
    text_column   TEXT,
    schema_spec   TEXT NOT NULL,
    schema_json   TEXT,
    strategy      TEXT NOT NULL,
    concurrency   INTEGER NOT NULL,
    endpoint_kind TEXT NOT NULL,
    base_url      TEXT,
    model         TEXT NOT NULL,
    mode          TEXT NOT NULL,
    options_json  TEXT NOT NULL DEFAULT '{}',
    records       INTEGER NOT NULL,
    resumes       INTEGER NOT NULL DEFAULT 0,
    stats_json    TEXT
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at, id);
CREATE TABLE IF NOT EXISTS rows (
    run_id            TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx               INTEGER NOT NULL,
    record_id         TEXT NOT NULL,
    text              TEXT NOT NULL,
    status            TEXT NOT NULL,
    data_json         TEXT,
    error             TEXT,
    error_kind        TEXT,
    queued_s          REAL,
    started_s         REAL,
    finished_s        REAL,
    delivered_s       REAL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL NOT NULL DEFAULT 0,
    session           INTEGER NOT NULL DEFAULT 0,
    extra_json        TEXT,
    guessed_json      TEXT,
    timeline_json     TEXT,
    request_ids_json  TEXT,
    lenient           INTEGER,
    gold_json         TEXT,
    PRIMARY KEY (run_id, idx)
);
CREATE INDEX IF NOT EXISTS rows_status ON rows (run_id, status);
"""

_ADDED_ROW_COLUMNS = (
    ("extra_json", "TEXT"),
    ("guessed_json", "TEXT"),
    ("timeline_json", "TEXT"),
    ("request_ids_json", "TEXT"),
    ("lenient", "INTEGER"),
    ("gold_json", "TEXT"),
)
"""Columns ``rows`` gained after schema version 1; ``Store._migrate`` adds them to an
older store (each only if missing, so the steps can come in any order). ``gold_json`` (the
row's gold label, ``core.quality``) came without a version bump: a column only added is
read by every build that knows it and ignored by the others, so older fanouts still open
the store."""

_RUN_COLUMNS = (
    "id, created_at, ended_at, status, pid, host, proc_start, dataset_path, dataset_name, "
    "text_column, schema_spec, schema_json, strategy, concurrency, endpoint_kind, base_url, "
    "model, mode, options_json, records, resumes, stats_json"
)
_ROW_COLUMNS = (
    "idx, record_id, text, status, data_json, error, error_kind, queued_s, started_s, "
    "finished_s, delivered_s, attempts, prompt_tokens, completion_tokens, cost_usd, "
    "extra_json, guessed_json, timeline_json, request_ids_json, lenient"
)
ROW_UPDATE_FIELDS = (
    "status",
    "data_json",
    "error",
    "error_kind",
    "queued_s",
    "started_s",
    "finished_s",
    "delivered_s",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "session",
    "guessed_json",
    "timeline_json",
    "request_ids_json",
    "lenient",
    "run_id",
    "idx",
)
"""A finished row's update, in the order ``row_params`` gives them (the last two pick the
row; the recovery file names its values by these)."""
_UPDATE_ROW = (
    "UPDATE rows SET "
    + ", ".join(f"{name} = ?" for name in ROW_UPDATE_FIELDS[:-2])
    + " WHERE run_id = ? AND idx = ?"
)
_UPDATE_DELIVERED = "UPDATE rows SET delivered_s = ? WHERE run_id = ? AND idx = ?"

RowParams = tuple[Any, ...]
"""One row's update, as built by ``row_params`` (the last two are run id and idx)."""


# -- where the store is ------------------------------------------------------------------


def default_store_path() -> Path:
    """``$FANOUT_STORE`` if set, else ``runs.sqlite3`` in the user data dir."""
    env = os.environ.get(STORE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return _platform_store_path()


def _platform_store_path() -> Path:
    """The store in the user data dir; the only location fanout creates folders for."""
    import platformdirs

    return platformdirs.user_data_path("fanout") / STORE_FILENAME


def resolve_store_path(option: str | None) -> Path:
    """The store file for a ``--store`` value (None: the default)."""
    return Path(option).expanduser() if option else default_store_path()


# -- what is stored about a run ------------------------------------------------------------


@dataclass(frozen=True)
class RunMeta:
    """What a run is, as recorded when it starts. Holds no secret by construction."""

    dataset_path: str
    dataset_name: str
    text_column: str | None
    schema_spec: str
    schema_json: str | None
    strategy: str
    concurrency: int
    endpoint_kind: str
    base_url: str | None
    model: str
    mode: str
    options: Mapping[str, Any] = field(default_factory=dict)
    """Other settings a resume reuses: timeout, retries, system prompt, max error rate
    (and ``gold``: where the gold labels came from)."""
    gold: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The rows' checked gold labels by row id (``core.quality.gold``), stored with each row
    so an export, a resume and the dashboard score the run without the labels' file."""


def public_base_url(kind: str, base_url: str | None) -> str | None:
    """The URL to store: none for the local simulator, no credentials or query otherwise."""
    if kind == "local" or not base_url:
        return None
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def absolute_schema_spec(spec: str) -> str:
    """``file.py:Class`` with the file made absolute, so a resume works from any folder."""
    where, sep, name = spec.strip().rpartition(":")
    if not sep or not (where.endswith(".py") or "/" in where or "\\" in where):
        return spec.strip()
    return f"{Path(where).expanduser().resolve()}:{name}"


@dataclass(frozen=True)
class RunInfo:
    id: str
    created_at: str
    ended_at: str | None
    status: str
    """As a reader should show it: a ``running`` run whose process is gone is ``interrupted``."""
    stored_status: str
    pid: int | None
    host: str | None
    dataset_path: str
    dataset_name: str
    text_column: str | None
    schema_spec: str
    schema_json: str | None
    strategy: str
    concurrency: int
    endpoint_kind: str
    base_url: str | None
    model: str
    mode: str
    options: dict[str, Any]
    records: int
    resumes: int
    stats: dict[str, Any] | None
    ok: int = 0
    failed: int = 0
    cancelled: int = 0
    pending: int = 0
    cost_usd: float = 0.0
    """Every stored row's cost, failed and cancelled ones too (as ``RunStats.cost_usd``)."""
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    """Failed rows by cause (as ``RunStats.errors_by_kind``)."""

    @property
    def semaphore(self) -> int | None:
        return self.concurrency if self.strategy in USES_CONCURRENCY else None

    @property
    def is_live(self) -> bool:
        """Its process is still running it (here, or on another host: cannot tell)."""
        return self.status == "running"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "status": self.status,
            "dataset": self.dataset_name,
            "dataset_path": self.dataset_path,
            "text_column": self.text_column,
            "schema": self.schema_spec,
            "strategy": self.strategy,
            "concurrency": self.concurrency,
            "semaphore": self.semaphore,
            "endpoint": self.endpoint_kind,
            "base_url": self.base_url,
            "model": self.model,
            "mode": self.mode,
            "workers": self.options.get("workers", 1),
            "ray": self.options.get("ray"),
            "records": self.records,
            "ok": self.ok,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "pending": self.pending,
            "cost_usd": self.cost_usd,
            "errors_by_kind": self.errors_by_kind,
            "resumes": self.resumes,
            "pid": self.pid,
            "host": self.host,
            "stats": self.stats,
        }


# -- ids, clocks, processes -------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id(now: datetime | None = None) -> str:
    """``20261124-183501-a3f9``: sortable by creation time, short enough to type."""
    moment = (now or utc_now()).astimezone(UTC)
    return f"{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to spot reused pids."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20:
        return None
    if fields[0] in ("Z", "X"):
        return "dead"
    return fields[19]


def process_alive(pid: int | None, host: str | None, proc_start: str | None) -> bool:
    """Whether the process that wrote a ``running`` run still runs. Unknown: True."""
    if pid is None or host != socket.gethostname():
        return True
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    current = _process_start(pid)
    if current == "dead":
        return False
    return not (proc_start and current and current != proc_start)


# -- rows <-> SQL ------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def row_params(run_id: str, idx: int, row: Row, session: int = 0) -> RowParams:
    """A finished row as the parameters of one update (cheap: call it on the event loop)."""
    return (
        row.status.value,
        None if row.data is None else _dumps(row.data),
        row.error,
        row.error_kind.value if row.error_kind is not None else None,
        row.queued_s,
        row.started_s,
        row.finished_s,
        row.delivered_s,
        row.attempts,
        row.prompt_tokens,
        row.completion_tokens,
        row.cost_usd,
        session,
        _dumps(list(row.guessed)) if row.guessed else None,
        None if row.phases is None else _dumps(row.phases.to_dict()),
        _dumps(list(row.request_ids)) if row.request_ids else None,
        1 if row.lenient else None,
        run_id,
        idx,
    )


def _gold_json(gold: Mapping[str, Mapping[str, Any]], row_id: str) -> str | None:
    label = gold.get(row_id)
    return None if label is None else _dumps(dict(label))


def _error_kind(value: str | None) -> ErrorKind | None:
    if value is None:
        return None
    try:
        return ErrorKind(value)
    except ValueError:
        return ErrorKind.OTHER


def _status(value: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        return Status.PENDING


def _row_from_sql(values: Sequence[Any]) -> Row:
    (idx, record_id, text, status, data_json, error, error_kind, queued_s, started_s) = values[:9]
    (finished_s, delivered_s, attempts, prompt_tokens, completion_tokens, cost_usd) = values[9:15]
    extra_json, guessed_json, timeline_json, request_ids_json, lenient = values[15:20]
    data = None
    if data_json is not None:
        try:
            loaded = json.loads(data_json)
        except ValueError:
            loaded = None
        data = loaded if isinstance(loaded, dict) else None
    row_status = _status(status)
    if row_status is Status.RUNNING:  # never stored by fanout; treat as not done
        row_status = Status.PENDING
    return Row(
        index=idx,
        id=record_id,
        text=text,
        status=row_status,
        data=data,
        error=error,
        error_kind=_error_kind(error_kind),
        queued_s=queued_s,
        started_s=started_s,
        finished_s=finished_s,
        delivered_s=delivered_s,
        attempts=attempts or 0,
        prompt_tokens=prompt_tokens or 0,
        completion_tokens=completion_tokens or 0,
        cost_usd=cost_usd or 0.0,
        extra=_loads_dict(extra_json) or NO_EXTRA,
        guessed=_loads_paths(guessed_json),
        phases=_phases(timeline_json),
        request_ids=_loads_paths(request_ids_json),
        lenient=bool(lenient),
    )


def _phases(timeline_json: str | None) -> Phases | None:
    loaded = _loads_dict(timeline_json)
    return None if loaded is None else Phases.from_dict(loaded)


def _loads_paths(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _loads_dict(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- the store ---------------------------------------------------------------------------


class Store:
    """One connection to the run store. Raises ``StoreError`` with a message fit to print."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise StoreError(f"store {self.path} is a directory; give a file path")
        if not self.path.exists():
            if not create:
                if not self.path.parent.is_dir():
                    raise StoreError(
                        f"no run store at {self.path}: folder {self.path.parent} does not exist"
                    )
                raise StoreError(f"no run store at {self.path} (no run recorded there yet)")
            if not self.path.parent.is_dir() and self.path == _platform_store_path():
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"cannot create {self.path.parent}: {exc.strerror or exc}"
                    ) from None
            if not self.path.parent.is_dir():
                raise StoreError(f"store {self.path}: folder {self.path.parent} does not exist")
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------

    def _setup(self) -> None:
        with self._errors("open"):
            conn = self._conn
            conn.execute("PRAGMA foreign_keys = ON")
            # Known to be a fanout store (or empty) before anything in it changes: a
            # foreign SQLite file is refused as it was found, not switched to WAL first.
            version = self._version()
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"store {self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            if version is None:
                stamp = utc_now().isoformat(timespec="seconds")
                try:
                    conn.executescript(
                        "BEGIN IMMEDIATE;"
                        + _SCHEMA
                        + "INSERT INTO schema_version (version, applied_at) "
                        + f"SELECT {SCHEMA_VERSION}, '{stamp}' "
                        + "WHERE NOT EXISTS (SELECT 1 FROM schema_version);"
                        + "COMMIT;"
                    )
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                version = self._version()
            if version is None or version > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.path} was written by a newer fanout (schema version "
                    f"{version}; this one reads up to {SCHEMA_VERSION}); upgrade fanout or "
                    "use --store with another file"
                )
            # By the columns, not only the version: a store at this version number can
            # come from a build that added other columns (two branches each bumping it).
            if version < SCHEMA_VERSION or self._missing_row_columns():
                self._migrate()

    def _missing_row_columns(self) -> list[tuple[str, str]]:
        have = {str(info[1]) for info in self._conn.execute("PRAGMA table_info(rows)")}
        return [column for column in _ADDED_ROW_COLUMNS if column[0] not in have]

    def _migrate(self) -> None:
        """Bring an older store up to ``SCHEMA_VERSION`` in place (columns only ever added)."""
        with self.transaction() as conn:
            for name, declaration in self._missing_row_columns():  # again, inside: a race
                conn.execute(f"ALTER TABLE rows ADD COLUMN {name} {declaration}")
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) SELECT ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM schema_version WHERE version >= ?)",
                (SCHEMA_VERSION, utc_now().isoformat(timespec="seconds"), SCHEMA_VERSION),
            )

    def _version(self) -> int | None:
        has_table = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not has_table:
            tables = self._conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()
            if tables and tables[0]:
                raise StoreError(
                    f"{self.path} is an SQLite file but not a fanout run store; "
                    "use --store with another file"
                )
            return None
        row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            message = str(exc)
            if "not a database" in message or "malformed" in message:
                message = "not a fanout run store (not a readable SQLite database)"
            elif "locked" in message or "busy" in message:
                message = "locked by another process; try again"
            raise StoreError(f"store {self.path}: cannot {doing}: {message}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: cannot {doing}: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on any exception)."""
        conn = self._conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            if conn.in_transaction:
                conn.execute("COMMIT")

    # -- writing -------------------------------------------------------------------------

    def create_run(
        self, meta: RunMeta, records: Sequence[Record], *, now: datetime | None = None
    ) -> str:
        """Record a new run and all its rows as ``pending``; return its id."""
        moment = now or utc_now()
        pid = os.getpid()
        with self._errors("record the run"):
            for _ in range(20):
                run_id = new_run_id(moment)
                try:
                    with self.transaction() as conn:
                        conn.execute(
                            f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES "
                            "(?, ?, NULL, 'running', " + ", ".join("?" * 16) + ", 0, NULL)",
                            (
                                run_id,
                                moment.astimezone(UTC).isoformat(timespec="milliseconds"),
                                pid,
                                socket.gethostname(),
                                _process_start(pid),
                                meta.dataset_path,
                                meta.dataset_name,
                                meta.text_column,
                                meta.schema_spec,
                                meta.schema_json,
                                meta.strategy,
                                meta.concurrency,
                                meta.endpoint_kind,
                                public_base_url(meta.endpoint_kind, meta.base_url),
                                meta.model,
                                meta.mode,
                                _dumps(dict(meta.options)),
                                len(records),
                            ),
                        )
                        conn.executemany(
                            "INSERT INTO rows (run_id, idx, record_id, text, status, extra_json, "
                            "gold_json) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                            (
                                (
                                    run_id,
                                    r.index,
                                    r.id,
                                    r.text,
                                    _dumps(dict(r.extra)) if r.extra else None,
                                    _gold_json(meta.gold, r.id),
                                )
                                for r in records
                            ),
                        )
                except sqlite3.IntegrityError:
                    if self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                        continue  # the same id in the same second: draw another suffix
                    raise
                return run_id
        raise StoreError(f"store {self.path}: could not find a free run id")

    def begin_resume(self, run_id: str) -> int:
        """Mark a run as running again, by this process; return the new session number."""
        with self._errors("mark the run resumed"), self.transaction() as conn:
            row = conn.execute(
                "SELECT status, pid, host, proc_start, resumes FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id!r} in store {self.path}")
            status, pid, host, proc_start, resumes = row
            if status == "running" and pid != os.getpid() and process_alive(pid, host, proc_start):
                where = f"pid {pid}" + (f" on {host}" if host != socket.gethostname() else "")
                raise StoreError(
                    f"run {run_id} is still running ({where}); wait for it or stop it first"
                )
            pid = os.getpid()
            conn.execute(
                "UPDATE runs SET status = 'running', ended_at = NULL, pid = ?, host = ?, "
                "proc_start = ?, resumes = resumes + 1 WHERE id = ?",
                (pid, socket.gethostname(), _process_start(pid), run_id),
            )
            return int(resumes) + 1

    def write_rows(
        self,
        rows: Sequence[RowParams] = (),
        delivered: Sequence[tuple[float | None, str, int]] = (),
        *,
        end: tuple[str, str, dict[str, Any] | None] | None = None,
    ) -> None:
        """One transaction: finished rows, late delivery times, and optionally the run's end.

        ``end`` is ``(run_id, status, stats)``. Raises sqlite3 errors (the recorder
        turns them into a warning).
        """
        with self.transaction() as conn:
            if rows:
                conn.executemany(_UPDATE_ROW, rows)
            if delivered:
                conn.executemany(_UPDATE_DELIVERED, delivered)
            if end is not None:
                run_id, status, stats = end
                if status not in STORED_STATUSES:
                    raise ValueError(f"unknown run status {status!r}")
                conn.execute(
                    "UPDATE runs SET status = ?, ended_at = ?, stats_json = ? WHERE id = ?",
                    (
                        status,
                        utc_now().isoformat(timespec="milliseconds"),
                        None if stats is None else _dumps(stats),
                        run_id,
                    ),
                )

    def import_recoveries(self) -> list[str]:
        """Put back rows a run could not store (``core.recovery``); one line per file."""
        from core.recovery import find_recoveries, read_recovery

        messages: list[str] = []
        for path in find_recoveries(self.path):
            run_id, params, end = read_recovery(path)
            with self._errors("read the runs"):
                known = self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
            if not known:
                messages.append(f"{path}: run {run_id} is not in store {self.path}; left as is")
                continue
            with self._errors("put back recovered rows"):
                self.write_rows(params, end=end)
            path.unlink(missing_ok=True)
            messages.append(f"put back {len(params)} row(s) of run {run_id} from {path}")
        return messages

    def set_stats(self, run_id: str, stats: dict[str, Any]) -> None:
        with self._errors("save the run's stats"), self.transaction() as conn:
            conn.execute("UPDATE runs SET stats_json = ? WHERE id = ?", (_dumps(stats), run_id))

    def set_quality(self, run_id: str, quality: Mapping[str, Any]) -> None:
        """Put the run's quality figures (``QualitySummary.to_dict``) into its stats, under
        ``quality``, so a list of runs shows accuracy without scoring every row again."""
        with self._errors("save the run's quality"), self.transaction() as conn:
            row = conn.execute("SELECT stats_json FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return
            stats = _loads_dict(row[0]) or {}
            stats[QUALITY_KEY] = dict(quality)
            conn.execute("UPDATE runs SET stats_json = ? WHERE id = ?", (_dumps(stats), run_id))

    # -- reading -------------------------------------------------------------------------

    def _infos(self, rows: Iterable[Sequence[Any]]) -> list[RunInfo]:
        base = list(rows)
        counts: dict[str, dict[str, int]] = {str(r[0]): {} for r in base}
        costs: dict[str, float] = dict.fromkeys(counts, 0.0)
        errors: dict[str, dict[str, int]] = {run_id: {} for run_id in counts}
        if counts:
            marks = ", ".join("?" for _ in counts)
            for run_id, status, kind, count, cost in self._conn.execute(
                f"SELECT run_id, status, error_kind, count(*), total(cost_usd) FROM rows "
                f"WHERE run_id IN ({marks}) GROUP BY run_id, status, error_kind",
                list(counts),
            ):
                counts[run_id][status] = counts[run_id].get(status, 0) + count
                costs[run_id] += cost
                if status == Status.FAILED.value and kind is not None:
                    label = (_error_kind(kind) or ErrorKind.OTHER).value
                    errors[run_id][label] = errors[run_id].get(label, 0) + count
        infos: list[RunInfo] = []
        for values in base:
            (run_id, created_at, ended_at, status, pid, host, proc_start) = values[:7]
            (dataset_path, dataset_name, text_column, schema_spec, schema_json) = values[7:12]
            (strategy, concurrency, endpoint_kind, base_url, model, mode) = values[12:18]
            (options_json, records, resumes, stats_json) = values[18:22]
            shown = status
            if status == "running" and not process_alive(pid, host, proc_start):
                shown = "interrupted"
            by_status = counts[run_id]
            infos.append(
                RunInfo(
                    id=run_id,
                    created_at=created_at,
                    ended_at=ended_at,
                    status=shown,
                    stored_status=status,
                    pid=pid,
                    host=host,
                    dataset_path=dataset_path,
                    dataset_name=dataset_name,
                    text_column=text_column,
                    schema_spec=schema_spec,
                    schema_json=schema_json,
                    strategy=strategy,
                    concurrency=concurrency,
                    endpoint_kind=endpoint_kind,
                    base_url=base_url,
                    model=model,
                    mode=mode,
                    options=_loads_dict(options_json) or {},
                    records=records,
                    resumes=resumes,
                    stats=_loads_dict(stats_json),
                    ok=by_status.get("ok", 0),
                    failed=by_status.get("failed", 0),
                    cancelled=by_status.get("cancelled", 0),
                    pending=by_status.get("pending", 0) + by_status.get("running", 0),
                    cost_usd=costs[run_id],
                    errors_by_kind=errors[run_id],
                )
            )
        return infos

    def list_runs(self, limit: int | None = 20) -> list[RunInfo]:
        """Runs, newest first."""
        with self._errors("list runs"):
            rows = self._conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
            return self._infos(rows)

    def get_run(self, ref: str) -> RunInfo:
        """A run by id, unique id prefix, or ``last``; ``StoreError`` if none or ambiguous."""
        ref = ref.strip()
        if not ref:
            raise StoreError("give a run id (see `fanout runs`)")
        with self._errors("read the run"):
            if ref.lower() in LATEST:
                rows = self._conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1"
                ).fetchall()
                if not rows:
                    raise StoreError(f"no runs in store {self.path} yet")
                return self._infos(rows)[0]
            rows = self._conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (ref,)
            ).fetchall()
            if not rows:
                pattern = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                rows = self._conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE id LIKE ? ESCAPE '\\' "
                    "ORDER BY id LIMIT 6",
                    (pattern + "%",),
                ).fetchall()
            if not rows:
                raise StoreError(
                    f"no run {ref!r} in store {self.path}; `fanout runs` lists the runs"
                )
            if len(rows) > 1:
                shown = ", ".join(str(r[0]) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
                raise StoreError(f"run id {ref!r} is ambiguous ({shown}); type more of it")
            return self._infos(rows)[0]

    def load_rows(self, run_id: str) -> list[Row]:
        """Every row of a run, in dataset order; ``Row.index`` is the record's dataset index."""
        with self._errors("read the rows"):
            return [
                _row_from_sql(values)
                for values in self._conn.execute(
                    f"SELECT {_ROW_COLUMNS} FROM rows WHERE run_id = ? ORDER BY idx", (run_id,)
                )
            ]

    def load_gold(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's stored gold labels by row id (empty: none, or a store from before
        gold labels were stored)."""
        with self._errors("read the gold labels"):
            labels: dict[str, dict[str, Any]] = {}
            for record_id, gold_json in self._conn.execute(
                "SELECT record_id, gold_json FROM rows WHERE run_id = ? AND gold_json IS NOT "
                "NULL ORDER BY idx",
                (run_id,),
            ):
                label = _loads_dict(gold_json)
                if label is not None:
                    labels[str(record_id)] = label
            return labels

    def records_to_resume(self, run_id: str, *, include_failed: bool = True) -> list[Record]:
        """The records a resume must send: every row not stored ok (failed ones optional)."""
        statuses = ["pending", "running", "cancelled"] + (["failed"] if include_failed else [])
        marks = ", ".join("?" for _ in statuses)
        with self._errors("read the rows"):
            return [
                Record(index=idx, id=record_id, text=text, extra=_loads_dict(extra) or NO_EXTRA)
                for idx, record_id, text, extra in self._conn.execute(
                    f"SELECT idx, record_id, text, extra_json FROM rows WHERE run_id = ? "
                    f"AND status IN ({marks}) ORDER BY idx",
                    (run_id, *statuses),
                )
            ]
