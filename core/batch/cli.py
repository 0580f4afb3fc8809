"""The Batch API on the command line: ``--via batch`` and its options, for run and resume."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from core.batch.job import BatchJob, BatchSettings
from core.batch.ledger import batch_parts, summary
from core.batch.requests import MAX_BYTES, MAX_REQUESTS
from core.batch.run import BatchRun, batch_run
from core.dataset import Record
from core.errors import ConfigError
from core.localserver import ServerConfig
from core.results import Row, Status
from core.runner import Run
from core.store import RunInfo, RunMeta

if TYPE_CHECKING:
    from core.engine import Engine
    from core.recorder import RunRecorder

VIAS = ("online", "batch")
QUIET = frozenset({"preparing", "uploaded"})
"""Statuses too short-lived to print."""


def _positive(kind: Callable[[str], float | int], what: str) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def add_batch_options(parser: argparse.ArgumentParser, *, resume: bool = False) -> None:
    group = parser.add_argument_group(
        "Batch API",
        "--via batch sends the rows through the Batch API (half the price, a separate "
        "quota, results within 24 h); the run can be closed and resumed while it waits.",
    )
    group.add_argument(
        "--via",
        choices=VIAS,
        default=None if resume else "online",
        help="online requests, or the Batch API (default: "
        + ("the run's own)" if resume else "online)"),
    )
    group.add_argument(
        "--finish-online",
        action="store_true",
        default=None if resume else False,
        help="rows a batch failed, or whose answer did not validate, are sent again online "
        "with the usual retries",
    )
    group.add_argument(
        "--batch-max-requests",
        type=_positive(int, "a whole number above 0"),
        default=MAX_REQUESTS,
        metavar="N",
        help=f"requests per batch file (default: {MAX_REQUESTS:,}, OpenAI's limit)",
    )
    group.add_argument(
        "--batch-max-mb",
        type=_positive(float, "a number of MB above 0"),
        default=MAX_BYTES / 1024 / 1024,
        metavar="MB",
        help=f"size of one batch file (default: {MAX_BYTES // 1024 // 1024}, OpenAI's limit)",
    )
    group.add_argument(
        "--batch-poll",
        type=_positive(float, "a number of seconds above 0"),
        default=60.0,
        metavar="SECONDS",
        help="longest wait between two status checks of a batch (default: 60; the first "
        "checks come sooner)",
    )
    group.add_argument(
        "--batch-keep-files",
        action="store_true",
        help="leave the uploaded request files and the batches' output and error files at "
        "the provider (by default fanout deletes them once the rows are stored)",
    )
    simulator = (
        ("time-scale", "X", "the built-in simulator's batch time: simulated seconds a second"),
        ("expire-rate", "F", "share of the simulator's batches that expire half answered"),
        ("reject-rate", "F", "share of the simulator's batches that fail validation"),
        ("line-error-rate", "F", "share of the simulator's batch lines answered 500"),
    )
    for name, metavar, text in simulator:
        group.add_argument(f"--sim-batch-{name}", type=float, metavar=metavar, help=text)


def batch_server(config: ServerConfig, args: argparse.Namespace) -> ServerConfig:
    """The simulator's config with the ``--sim-batch-*`` options given (ConfigError if bad)."""
    changes = {
        "batch_time_scale": getattr(args, "sim_batch_time_scale", None),
        "batch_expire_rate": getattr(args, "sim_batch_expire_rate", None),
        "batch_reject_rate": getattr(args, "sim_batch_reject_rate", None),
        "batch_line_error_rate": getattr(args, "sim_batch_line_error_rate", None),
    }
    given = {name: value for name, value in changes.items() if value is not None}
    return dataclasses.replace(config, **given) if given else config


def batch_settings(args: argparse.Namespace) -> BatchSettings:
    poll = float(args.batch_poll)
    return BatchSettings(
        finish_online=bool(args.finish_online),
        max_requests=int(args.batch_max_requests),
        max_bytes=int(args.batch_max_mb * 1024 * 1024),
        poll_min=min(2.0, poll),
        poll_max=poll,
        keep_files=bool(getattr(args, "batch_keep_files", False)),
    )


def with_via(meta: RunMeta, args: argparse.Namespace) -> RunMeta:
    """The run's record says how it was sent, so resume and ``fanout runs`` know."""
    if args.via != "batch":
        return meta
    return batch_meta(meta, finish_online=bool(args.finish_online))


def batch_meta(meta: RunMeta, *, finish_online: bool) -> RunMeta:
    options = {**meta.options, "via": "batch", "finish_online": finish_online}
    return dataclasses.replace(meta, options=options, strategy="as_completed")


def open_run(
    engine: Engine,
    records: Iterable[Record],
    schema: type[BaseModel],
    args: argparse.Namespace,
    *,
    store_path: Path | None,
    quiet: bool,
) -> AbstractAsyncContextManager[Run]:
    rows = list(records)
    workers, ray = getattr(args, "workers", 1), getattr(args, "ray", None)
    if args.via != "batch":
        return engine.run(
            rows,
            schema,
            strategy=args.strategy,
            concurrency=args.concurrency,
            max_error_rate=args.max_error_rate,
            workers=workers,
            ray=ray,
        )
    if workers != 1 or ray is not None:
        raise ConfigError(
            "--via batch sends the rows as files to the Batch API from one process; "
            "--workers and --ray are for online runs"
        )
    return batch_run(
        engine,
        rows,
        schema,
        settings=batch_settings(args),
        concurrency=args.concurrency,
        store_path=store_path,
        max_error_rate=args.max_error_rate,
        on_change=None if quiet else StatusLines(),
    )


def bind(run: Run, recorder: RunRecorder | None, unanswered: Iterable[int] = ()) -> None:
    """Give a batch run its stored id (and, on resume, the rows still waiting on a batch)."""
    if isinstance(run, BatchRun) and recorder is not None:
        run.job.bind(recorder.run_id, recorder.session, unanswered)


def report(run: Run) -> None:
    """After a batch run: its batches' warnings and where each ended."""
    if not isinstance(run, BatchRun):
        return
    for message in run.job.warnings:
        print(f"fanout: warning: {message}", file=sys.stderr)
    for view in run.job.views():
        print(
            f"fanout: batch {view.batch_id or '(not created)'}: {view.status}, "
            f"{view.completed} answered, {view.failed} failed of {view.rows} rows",
            file=sys.stderr,
        )


class StatusLines:
    """One stderr line each time a batch changes status."""

    def __init__(self) -> None:
        self._seen: dict[int, str] = {}

    def __call__(self, job: BatchJob) -> None:
        for view in job.views():
            if self._seen.get(view.part) == view.status or view.status in QUIET:
                continue
            self._seen[view.part] = view.status
            where = view.batch_id or "file"
            failed = f", {view.failed} failed" if view.failed else ""
            print(
                f"fanout: batch {view.part} ({where}): {view.status}, "
                f"{view.completed} of {view.total or view.rows} answered{failed}",
                file=sys.stderr,
            )


def resume_note(run: Run) -> str:
    """On resume: how many rows wait on batches already submitted (not sent again)."""
    if not isinstance(run, BatchRun):
        return ""
    waiting = sum(len(rows) for rows in run.job.attached.values())
    return f"; {waiting} of them wait on batches already submitted" if waiting else ""


def runs_cells(path: Path, runs: Sequence[RunInfo]) -> dict[str, dict[str, Any]]:
    """For ``fanout runs``: each batch run's batches (JSON) and their one-line summary."""
    ids = [info.id for info in runs if info.options.get("via") == "batch"]
    if not ids:
        return {}
    parts = batch_parts(path, ids)
    cells: dict[str, dict[str, Any]] = {}
    for run_id in ids:
        mine = parts.get(run_id, [])
        line = summary(mine)
        cells[run_id] = {
            "via": "batch",
            "batches": [part.to_dict() for part in mine],
            "batches_line": f"; {line}" if line else "",
        }
    return cells


def waiting_rows(stored: Iterable[Row]) -> set[int]:
    """Stored rows a resumed batch run may find in a batch already submitted: those without
    a result, and those cancelled when the run stopped (their batch may have gone on)."""
    return {row.index for row in stored if row.status not in (Status.OK, Status.FAILED)}


def online_over_batches(path: Path, info: RunInfo, via: str) -> str | None:
    """A resume ``--via online`` of a batch run whose batches may still answer: say so."""
    if via == "batch" or info.options.get("via") != "batch":
        return None
    live = [
        part
        for part in batch_parts(path, [info.id]).get(info.id, [])
        if part.batch_id and not part.terminal
    ]
    if not live:
        return None
    rows = sum(len(part.rows) for part in live)
    return (
        f"run {info.id} has {len(live)} batch(es) that may still answer ({rows} rows); resuming "
        "--via online sends their rows again (a resume without --via waits for them)"
    )
