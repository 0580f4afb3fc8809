"""Record a live Run into the run store, in small batches, without ever disturbing it.

    recorder = RunRecorder(store, run, meta, on_warning=print)
    run_id = await recorder.start()      # the run and all its rows, as pending
    try:
        await run.execute()
    finally:
        await recorder.close()           # the last batch, final stats and status

The guarantee: a row that finished is committed at most ``interval`` seconds
(0.25 s) plus one commit's duration later. A process killed with SIGKILL keeps
every row of every committed batch (WAL, ``synchronous=NORMAL``), so at most
the last fraction of a second of work is lost.

How: the listener only notes which rows changed (it runs on the event loop and
must be quick). A background task wakes when a row finishes, waits until the
previous commit is ``interval`` old, snapshots the changed rows into SQL
parameters (on the loop, so rows are read where they are written), and commits
them with one ``executemany`` on a dedicated writer thread with its own
connection, so the loop never waits for the disk. On ``RunEnded`` it writes the
last rows, the final stats and the status in one transaction.

A store error (disk full, locked file) never reaches the run: it becomes one
warning (``on_warning``), the rows stay marked as changed, and the next batch
tries again. The last write is retried for ``end_patience`` seconds (a lock
another process holds is waited for); if the store still cannot take the
rows, they go to a recovery file (``core.recovery``) and ``complete`` is
False: the command must then fail and name ``recovery_path``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from core.cores import use_all_cores
from core.dataset import Dataset
from core.errors import StoreError
from core.events import Event, RowDelivered, RowFinished, RunEnded
from core.recovery import write_recovery
from core.results import Row
from core.runner import Run
from core.stats import RunStats, compute_stats
from core.store import RowParams, RunMeta, Store, absolute_schema_spec, row_params

if TYPE_CHECKING:
    from core.client import Endpoint
    from core.engine import ClientOptions
    from core.quality.gold import Gold

GOLD_OPTION = "gold"
"""The stored options' key naming where a run's gold labels came from."""

FLUSH_INTERVAL_S = 0.25
"""The longest a finished row waits before its batch is committed (plus the commit itself)."""
END_PATIENCE_S = 30.0
"""How long the run's last write is retried (a busy or full store) before the rows go to a
recovery file."""

log = logging.getLogger("fanout.store")
T = TypeVar("T")


def run_meta(
    *,
    dataset: Dataset,
    schema_spec: str,
    schema: type[BaseModel],
    strategy: str,
    concurrency: int,
    endpoint: Endpoint,
    options: ClientOptions,
    max_error_rate: float | None = None,
    gold: Gold | None = None,
    model: str | None = None,
    mode: str | None = None,
) -> RunMeta:
    """What the store records about a run. The endpoint's API key is not taken. ``gold``:
    the run's gold labels, stored with its rows; ``model`` and ``mode``: the run's own when
    they are not the endpoint's and options' (a run parameter, as in the dashboard)."""
    return RunMeta(
        dataset_path=str(dataset.path.expanduser().resolve()),
        dataset_name=dataset.name,
        text_column=dataset.text_column,
        schema_spec=absolute_schema_spec(schema_spec),
        schema_json=_schema_json(schema),
        strategy=strategy,
        concurrency=concurrency,
        endpoint_kind=endpoint.kind,
        base_url=endpoint.base_url if endpoint.kind != "local" else None,
        model=model or endpoint.model,
        mode=mode or options.mode,
        options={
            "timeout": options.timeout,
            "max_retries": options.retry.max_retries,
            "validation_retries": options.retry.validation_retries,
            "system_prompt": options.system_prompt,
            "max_error_rate": max_error_rate,
            "max_tokens": options.max_tokens,
            "lenient": options.lenient,
            **({GOLD_OPTION: gold.source} if gold is not None else {}),
        },
        gold=gold.labels if gold is not None else {},
    )


def _schema_json(schema: type[BaseModel]) -> str | None:
    import json

    try:
        return json.dumps(schema.model_json_schema(), ensure_ascii=False)
    except Exception:  # a model pydantic cannot describe still runs; store no JSON
        return None


class RunRecorder:
    """Writes one Run into the store as it goes. Make one per Run."""

    def __init__(
        self,
        store: Store | Path,
        run: Run,
        meta: RunMeta | None = None,
        *,
        run_id: str | None = None,
        on_warning: Callable[[str], None] | None = None,
        interval: float = FLUSH_INTERVAL_S,
        finalize: Callable[[RunStats], RunStats] | None = None,
        end_patience: float | None = None,
    ) -> None:
        if (meta is None) == (run_id is None):
            raise ValueError("give either meta (a new run) or run_id (a resumed run)")
        self.path = store.path if isinstance(store, Store) else Path(store)
        self.run = run
        self.meta = meta
        self.run_id = run_id or ""
        self.session = 0
        self.interval = interval
        self.commits = 0
        self.max_commit_s = 0.0
        self.failed_writes = 0
        self.last_error: str | None = None
        self._warn = on_warning or log.warning
        self._warned = False
        self._finalize = finalize
        self._executor: ThreadPoolExecutor | None = None
        self._writer: Store | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._dirty: set[int] = set()
        self._late_delivery: set[int] = set()
        self._seen: set[int] = set()
        self._wake = asyncio.Event()
        self._ended = asyncio.Event()
        self._end_stats: RunStats | None = None
        self._last_commit = 0.0
        self._done = False
        self.end_patience = END_PATIENCE_S if end_patience is None else end_patience
        self.complete = False
        """The run's end and every finished row are committed."""
        self.unsaved = 0
        """Finished rows the store could not take (then in ``recovery_path``)."""
        self.recovery_path: Path | None = None
        self.recovery_error: str | None = None
        """Why not even a recovery file could be written (the rows are then only in memory)."""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        """Open the writer, record the run (or mark it resumed), start batching. Returns the id.

        Raises ``StoreError`` (nothing has been sent yet, so the caller can stop here).
        """
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fanout-store", initializer=use_all_cores
        )
        try:
            self._writer = await self._call(Store, self.path)
            if self.meta is not None:
                self.run_id = await self._call(self._writer.create_run, self.meta, self.run.records)
            else:
                self.session = await self._call(self._writer.begin_resume, self.run_id)
        except BaseException:
            await self._shutdown()
            raise
        self._unsubscribe = self.run.subscribe(self._on_event)
        self._task = asyncio.create_task(self._loop(), name=f"fanout-store-{self.run_id}")
        return self.run_id

    async def close(self) -> None:
        """Write what is left and end the run's record; then release the writer.

        A run that never ended (its task was torn down) is recorded as ``interrupted``.
        """
        try:
            if self._task is not None:
                self._ended.set()
                self._wake.set()
                try:
                    await asyncio.shield(self._task)
                except asyncio.CancelledError:
                    if not self._task.cancelled():
                        raise  # we are being cancelled; the writer thread still finishes
        finally:
            if self._unsubscribe is not None:
                with suppress(ValueError):
                    self._unsubscribe()
                self._unsubscribe = None
            await self._shutdown()

    async def _shutdown(self) -> None:
        executor, self._executor = self._executor, None
        writer, self._writer = self._writer, None
        if executor is None:
            return
        if writer is not None:
            with suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(executor, writer.close)
        executor.shutdown(wait=False)

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(func, *args))

    # -- events (on the loop: quick, and never raising) ----------------------------------

    def _on_event(self, event: Event) -> None:
        try:
            if isinstance(event, RowFinished):
                self._seen.add(event.index)
                self._dirty.add(event.index)
                self._late_delivery.discard(event.index)
                self._wake.set()
            elif isinstance(event, RowDelivered):
                if event.index not in self._dirty:
                    self._late_delivery.add(event.index)
            elif isinstance(event, RunEnded):
                self._end_stats = event.stats
                self._ended.set()
                self._wake.set()
        except Exception as exc:  # pragma: no cover - a bug here must not stop the run
            self._warning(f"run store: cannot track the run ({exc})")

    # -- batching --------------------------------------------------------------------------

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._done:
                await self._wake.wait()
                self._wake.clear()
                backoff = self.interval * min(8, 2**self.failed_writes) if self.failed_writes else 0
                delay = self._last_commit + max(self.interval, backoff) - loop.time()
                if delay > 0 and not self._ended.is_set():
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._ended.wait(), delay)
                if self._ended.is_set():
                    await self._write_end()
                    return
                await self._write_batch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # pragma: no cover - defensive: keep the run going
            self._warning(f"run store: recording stopped ({type(exc).__name__}: {exc})")

    def _snapshot(self) -> tuple[list[int], list[RowParams], list[int], list[Any]]:
        run, run_id, session = self.run, self.run_id, self.session
        dirty = sorted(self._dirty)
        late = sorted(self._late_delivery)
        self._dirty.clear()
        self._late_delivery.clear()
        params = [
            row_params(run_id, run.records[i].index, run.rows[i], session)
            for i in dirty
            if run.rows[i].status.is_final
        ]
        delivered = [(run.rows[i].delivered_s, run_id, run.records[i].index) for i in late]
        return dirty, params, late, delivered

    async def _write_batch(self) -> None:
        dirty, params, late, delivered = self._snapshot()
        if not params and not delivered:
            return
        if not await self._write(params, delivered, None):
            self._dirty.update(dirty)
            self._late_delivery.update(late)
            self._wake.set()

    async def _write_end(self) -> None:
        self._done = True
        stats = self._end_stats
        end: tuple[str, str, dict[str, Any] | None]
        if stats is not None:
            # Rows the runner cancelled at the end never had a RowFinished.
            self._dirty.update(i for i in range(len(self.run.rows)) if i not in self._seen)
            if self._finalize is not None:
                try:
                    stats = self._finalize(stats)
                except Exception as exc:
                    self._warning(f"run store: cannot combine the run's stats ({exc})")
            status = "cancelled" if stats.cancelled else "finished"
            end = (self.run_id, status, stats.to_dict())
        else:
            end = (self.run_id, "interrupted", None)
        _, params, _, delivered = self._snapshot()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.end_patience
        pause = self.interval
        while True:
            if await self._write(params, delivered, end):
                self.complete = True
                return
            if loop.time() + pause > deadline:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)
        self._save_recovery(params, end)

    def _save_recovery(
        self, params: Sequence[RowParams], end: tuple[str, str, dict[str, Any] | None]
    ) -> None:
        """The store would not take the last rows: keep them in a recovery file."""
        self.unsaved = sum(1 for p in params if p[0] != "pending")
        try:
            self.recovery_path = write_recovery(self.path, self.run_id, params, end)
        except StoreError as exc:
            self.recovery_error = str(exc)

    async def _write(
        self,
        params: Sequence[RowParams],
        delivered: Sequence[Any],
        end: tuple[str, str, dict[str, Any] | None] | None,
    ) -> bool:
        writer = self._writer
        if writer is None:
            return False
        loop = asyncio.get_running_loop()
        self._last_commit = loop.time()
        began = time.perf_counter()
        try:
            await self._call(functools.partial(writer.write_rows, params, delivered, end=end))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed_writes += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._warning(
                f"run store {self.path}: cannot save results ({exc}); the run goes on, "
                "and the store will be retried"
            )
            return False
        self.failed_writes = 0
        self.commits += 1
        self.max_commit_s = max(self.max_commit_s, time.perf_counter() - began)
        return True

    def problem(self) -> str | None:
        """After ``close``: None when the store holds the whole run, else one line saying
        where the rows it is missing are."""
        if self.complete or not self._done:
            return None
        where = f"run store {self.path} (run {self.run_id})"
        cause = f" ({self.last_error})" if self.last_error else ""
        if self.recovery_path is not None:
            return (
                f"{where} could not take {self.unsaved} answered row(s){cause}; they are "
                f"saved in {self.recovery_path}, which the next fanout command on this store "
                "puts back (nothing is sent again)"
            )
        return (
            f"{where} could not take {self.unsaved} answered row(s){cause}, and no recovery "
            f"file could be written: {self.recovery_error}"
        )

    def _warning(self, message: str) -> None:
        if self._warned:
            return
        self._warned = True
        with suppress(Exception):
            self._warn(message)


@asynccontextmanager
async def recording(
    store: Store | None,
    run: Run,
    meta: RunMeta,
    *,
    on_warning: Callable[[str], None] | None = None,
) -> AsyncIterator[RunRecorder | None]:
    """Record ``run`` in ``store`` for the duration of the block (nothing if store is None)."""
    if store is None:
        yield None
        return
    recorder = RunRecorder(store, run, meta, on_warning=on_warning)
    await recorder.start()
    try:
        yield recorder
    finally:
        await recorder.close()


def merge_rows(stored: Sequence[Row], run: Run) -> list[Row]:
    """The whole run: stored rows with this session's rows (re-indexed to the dataset) on top."""
    rows = {row.index: row for row in stored}
    for position, row in enumerate(run.rows):
        index = run.records[position].index
        rows[index] = replace(row, index=index)
    return [rows[i] for i in sorted(rows)]


def combined_stats(
    stored: Sequence[Row], run: Run, stats: RunStats, before: Mapping[str, Any] | None
) -> RunStats:
    """Whole-run stats after a resume: stored rows overlaid with this session's rows.

    Elapsed time, max in flight and 429s add up across sessions; latencies are
    per row so they stay meaningful; first-result times mix sessions' clocks.
    """
    merged = merge_rows(stored, run)
    session_rows = {record.index for record in run.records}
    before = before or {}
    prior_elapsed = _number(before.get("elapsed_s"))
    if prior_elapsed is None:
        prior_elapsed = max(
            (r.finished_s or 0.0 for r in stored if r.index not in session_rows), default=0.0
        )
    return compute_stats(
        merged,
        strategy=stats.strategy,
        concurrency=stats.concurrency,
        elapsed_s=prior_elapsed + stats.elapsed_s,
        max_in_flight=max(stats.max_in_flight, int(_number(before.get("max_in_flight")) or 0)),
        rate_limited=stats.rate_limited + int(_number(before.get("rate_limited")) or 0),
        stopped_reason=stats.stopped_reason,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
