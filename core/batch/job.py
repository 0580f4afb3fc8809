"""A batch job: a run's rows sent through the Batch API, each row's result handed to the Run.

``BatchJob.drive`` writes the request files (``core.batch.requests``), uploads each
with the SDK's files API, creates its batch, and polls every live batch with backoff
(``poll_min`` growing by half up to ``poll_max``). When a batch ends it reads the
output and error files and settles each of its rows (``core.batch.answers``); rows the
batch did not answer end with the reason (expired, cancelled, failed validation).
Every step is written to the ledger (``core.batch.ledger``) the moment its id exists.

``BatchJob.extract`` is the Run's extract: it waits for its row's line, and returns
the object or raises ``ExtractionFailed`` with the reason; with ``finish_online`` a
failed row is sent once more online instead, by the run's ``Extractor`` (its retries,
re-asks and rate limits), at most ``concurrency`` at a time, and its row counts the
batch's tokens and the online ones.

Resuming: ``bind`` reads the run's parts. A row stored without a result whose part
reached the API (a file id recorded) waits on that part: its batch is polled where it
is, or found by its input file when its id was not recorded, or created from the
recorded file if it never was. Only rows that no batch holds are written into new files:
no row is submitted twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import openai

from core.batch.answers import LineFailure, Outcome, parse_line
from core.batch.ledger import Ledger, Part, stored_rows
from core.batch.requests import MAX_BYTES, MAX_REQUESTS, TooLarge, row_of, split_requests
from core.dataset import Record
from core.extract import Extraction, ExtractionFailed, Extractor, RetryHook
from core.failures import Failure, classify
from core.prices import Price
from core.results import ErrorKind, Phases

LIVE = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
API_RETRIES = 5
"""Tries of one files/batches call that failed for a transient cause (5xx, 429, network)."""
TRANSIENT = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)


@dataclass(frozen=True)
class BatchSettings:
    finish_online: bool = False
    """Rows the batch failed, or whose answer did not validate, are sent again online."""
    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES
    poll_min: float = 2.0
    poll_max: float = 60.0
    keep_files: bool = False
    """Leave the input, output and error files at the provider (``--batch-keep-files``);
    by default each part's are deleted once its rows are stored."""


@dataclass
class BatchView:
    """One batch as the dashboard and the progress line show it."""

    part: int
    batch_id: str | None
    status: str
    rows: int
    total: int
    completed: int
    failed: int
    eta_s: float | None


class BatchJob:
    def __init__(
        self,
        api: openai.AsyncOpenAI,
        online: Extractor,
        records: Sequence[Record],
        settings: BatchSettings,
        ledger: Ledger,
        *,
        price: Price | None,
        secrets: Sequence[str] = (),
        concurrency: int = 8,
        store_path: Path | None = None,
        on_change: Callable[[BatchJob], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.online = online
        self.prepared = online.prepared
        self.records = {r.index: r for r in records}
        self.settings = settings
        self.ledger = ledger
        self.store_path = store_path
        """The run store whose ``batches`` table ``bind`` switches the ledger to (opened only
        then: the recorder has created the store and the run by that time)."""
        self.price = price
        self.secrets = tuple(secrets)
        self.on_change = on_change
        self._clock = clock
        loop = asyncio.get_running_loop()
        self._results: dict[int, asyncio.Future[Outcome]] = {
            index: loop.create_future() for index in self.records
        }
        self._online = asyncio.Semaphore(max(1, concurrency))
        self.run_id = "unstored"
        self.session = 0
        self.parts: dict[int, Part] = {}
        self.attached: dict[int, list[int]] = {}
        """Rows (by part) that wait on a part submitted before this job: not sent again."""
        self._new: list[int] = list(self.records)
        self._earlier: set[int] = set()
        """Rows waiting on a batch an earlier session submitted."""
        self._owner: dict[int, int] = {}
        """Each row's part in this job: only its own part's line settles it."""
        self._progress: dict[int, tuple[float, int]] = {}
        """Per live part: when it was first seen in progress, and how many it had done."""
        self.detached = False
        """Set to leave the batches running on stop (a closed terminal): resume later."""
        self.warnings: list[str] = []
        self.submitted_rows = 0
        """Rows this job wrote into new batch files (not the ones it waited on)."""

    # -- binding to a stored run ------------------------------------------------------

    def bind(self, run_id: str | None, session: int = 0, unanswered: Iterable[int] = ()) -> None:
        """Take the run's id and its parts so far; ``unanswered`` are the rows stored without
        a result (pending, running, or cancelled when the run stopped): those already in a
        submitted part wait on it. If that batch was cancelled and has no line for one of
        them, the row goes into a new batch (it was never answered)."""
        if run_id is None:
            return
        self.run_id, self.session = run_id, session
        if self.store_path is not None:
            self.ledger.close()
            self.ledger = Ledger(self.store_path)
        waiting = set(unanswered)
        holder: dict[int, Part] = {}
        for stored in self.ledger.parts(run_id):
            self.parts[stored.part] = stored
            for row in stored.rows:
                holder[row] = stored
        self.attached, self._new = {}, []
        for index in self.records:
            part = holder.get(index)
            if (
                part is not None
                and part.input_file_id is not None
                and part.status != "not_submitted"
                and index in waiting
            ):
                self.attached.setdefault(part.part, []).append(index)
                self._owner[index] = part.part
                self._earlier.add(index)
            else:
                self._new.append(index)

    # -- the Run's extract -------------------------------------------------------------

    async def extract(
        self, record: Record, on_retry: RetryHook | None = None, phases: Phases | None = None
    ) -> Extraction:
        began = self._clock()
        try:
            outcome = await asyncio.shield(self._results[record.index])
        finally:
            if phases is not None:  # at the API: the row's "wire" time is its wait on the batch
                phases.wire_s += self._clock() - began
        if isinstance(outcome, Extraction):
            return outcome
        if self.settings.finish_online and outcome.failure.kind is not ErrorKind.AUTH:
            return await self._finish_online(record, outcome, on_retry, phases)
        raise ExtractionFailed(
            outcome.failure,
            1,
            outcome.prompt_tokens,
            outcome.completion_tokens,
            0,
            outcome.cost_usd,
            outcome.request_ids,
        )

    async def _finish_online(
        self,
        record: Record,
        outcome: LineFailure,
        on_retry: RetryHook | None,
        phases: Phases | None,
    ) -> Extraction:
        async with self._online:
            try:
                result = await self.online(record, on_retry, phases)
            except ExtractionFailed as exc:
                failure = Failure(
                    exc.failure.kind,
                    f"batch: {outcome.failure.message}; online: {exc.failure.message}",
                    exc.failure.retry_after,
                    exc.failure.status,
                )
                raise ExtractionFailed(
                    failure,
                    exc.attempts + 1,
                    exc.prompt_tokens + outcome.prompt_tokens,
                    exc.completion_tokens + outcome.completion_tokens,
                    exc.rate_limited,
                    exc.cost_usd + outcome.cost_usd,
                    outcome.request_ids + exc.request_ids,
                ) from None
        return replace(
            result,
            attempts=result.attempts + 1,
            prompt_tokens=result.prompt_tokens + outcome.prompt_tokens,
            completion_tokens=result.completion_tokens + outcome.completion_tokens,
            cost_usd=result.cost_usd + outcome.cost_usd,
            request_ids=outcome.request_ids + result.request_ids,
        )

    # -- driving the batches ---------------------------------------------------------------

    async def drive(self) -> None:
        """Submit, poll and collect until every row of the job has its outcome."""
        try:
            for number, rows in self.attached.items():
                await self._reattach(self.parts[number], rows)
            await self._submit_new()
            await self._poll()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never leave a row waiting: each gets the reason
            failure = classify(exc, self.secrets)
            self._settle_all(Failure(failure.kind, f"batch job stopped: {failure.message}"))

    async def _submit_new(self) -> None:
        if not self._new:
            return
        records = [self.records[i] for i in sorted(self._new)]
        self._new = []
        number = max(self.parts, default=0)
        files = split_requests(
            self.prepared,
            records,
            max_requests=self.settings.max_requests,
            max_bytes=self.settings.max_bytes,
        )
        for item in files:
            if isinstance(item, TooLarge):
                message = (
                    f"its request is {item.size} bytes, over the batch file limit of "
                    f"{self.settings.max_bytes} bytes; not sent"
                )
                self._settle(item.row, LineFailure(Failure(ErrorKind.BAD_REQUEST, message)))
                continue
            number += 1
            part = self.ledger.add(self.run_id, number, self.session, item.rows)
            self._owner.update(dict.fromkeys(item.rows, number))
            self._remember(part)
            name = f"fanout-{self.run_id}-part{number}.jsonl"
            try:
                uploaded = await self._call(
                    partial(
                        self.api.files.create,
                        file=(name, item.data, "application/jsonl"),
                        purpose="batch",
                    )
                )
            except Exception as exc:
                self._not_submitted(part, "upload", exc)
                continue
            part = self.ledger.update(
                self.run_id, number, input_file_id=uploaded.id, status="uploaded"
            )
            self._remember(part)
            self.submitted_rows += len(item.rows)
            await self._create(part)

    async def _create(self, part: Part) -> None:
        """One batch from the part's file. A create that failed in transit may have been
        made all the same: before trying again (and before giving up) the batches are
        searched for one made from this file, so a file never gets two batches."""
        assert part.input_file_id is not None
        metadata = {"fanout_run": self.run_id, "fanout_part": str(part.part)}
        delay = 1.0
        for attempt in range(API_RETRIES):
            try:
                batch = await self.api.batches.create(
                    input_file_id=part.input_file_id,
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                    metadata=metadata,
                )
            except TRANSIENT as exc:
                found = await self._find_batch(part.input_file_id)
                if found is not None:
                    self._update(part, found)
                    return
                if attempt == API_RETRIES - 1:
                    self._not_submitted(part, "batch creation", exc)
                    return
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
            except Exception as exc:
                self._not_submitted(part, "batch creation", exc)
                return
            else:
                self._update(part, batch)
                return

    async def _reattach(self, part: Part, rows: list[int]) -> None:
        if part.batch_id is None:
            found = await self._find_batch(part.input_file_id)
            if found is None:
                await self._create(part)  # the file was uploaded, its batch never created
                return
            self._update(part, found)
            return
        if part.terminal or part.collected:
            batch = await self._call(partial(self.api.batches.retrieve, part.batch_id))
            await self._collect(self._update(part, batch), batch)

    async def _find_batch(self, input_file_id: str | None) -> Any | None:
        """A batch created from this file (its id may not have been recorded)."""
        after: str | None = None
        for _ in range(50):
            kwargs: dict[str, Any] = {"limit": 100}
            if after:
                kwargs["after"] = after
            page = await self._call(partial(self.api.batches.list, **kwargs))
            for batch in page.data:
                if batch.input_file_id == input_file_id:
                    return batch
            if not page.has_more or not page.data:
                return None
            after = page.data[-1].id
        return None

    async def _poll(self) -> None:
        delay = self.settings.poll_min
        while True:
            live = [
                p
                for p in self.parts.values()
                if p.batch_id and any(not self._results[r].done() for r in self._mine(p))
            ]
            if not live:
                return
            await asyncio.sleep(delay)
            changed = False
            for part in live:
                try:
                    batch = await self._call(
                        partial(self.api.batches.retrieve, part.batch_id or "")
                    )
                except Exception as exc:
                    self._warn(f"batch {part.batch_id}: cannot read its status ({exc}); polling on")
                    continue
                before = (part.status, part.completed, part.failed)
                part = self._update(part, batch)
                changed |= before != (part.status, part.completed, part.failed)
                if batch.status in ("completed", "failed", "expired", "cancelled"):
                    await self._collect(part, batch)
            if self._new:  # rows a cancelled earlier batch never answered
                await self._submit_new()
                changed = True
            delay = self.settings.poll_min if changed else min(self.settings.poll_max, delay * 1.5)

    async def _collect(self, part: Part, batch: Any) -> None:
        mine = set(self._mine(part))
        seen: set[int] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self._call(partial(self.api.files.content, file_id))
            for raw in content.content.splitlines():
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                row = row_of(line.get("custom_id")) if isinstance(line, dict) else None
                if row is None or row not in mine or row in seen or _never_ran(line):
                    continue
                seen.add(row)
                self._settle(row, parse_line(line, self.prepared, self.price, self.secrets))
        reason = self._no_line_reason(batch)
        if batch.status == "cancelled":  # rows an earlier session's cancelled batch never ran
            again = {row for row in mine - seen if row in self._earlier}
            for row in sorted(again):
                self._owner.pop(row, None)
                self._earlier.discard(row)
                self._new.append(row)
            seen |= again
        for row in mine - seen:
            kind = ErrorKind.EXPIRED if batch.status == "expired" else ErrorKind.OTHER
            if batch.status == "failed":
                kind = ErrorKind.BAD_REQUEST
            self._settle(row, LineFailure(Failure(kind, reason)))
        part = self.ledger.update(self.run_id, part.part, collected=1)
        self._remember(part)

    def _no_line_reason(self, batch: Any) -> str:
        if batch.status == "failed":
            errors = getattr(batch.errors, "data", None) or []
            first = errors[0] if errors else None
            said = getattr(first, "message", None) or "no reason given"
            line = getattr(first, "line", None)
            where = f" (line {line})" if line else ""
            more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
            return f"batch {batch.id} failed validation: {said}{where}{more}"
        if batch.status == "expired":
            return f"batch {batch.id} expired before this row was answered"
        if batch.status == "cancelled":
            return f"batch {batch.id} was cancelled before this row was answered"
        return f"batch {batch.id} ended ({batch.status}) without an answer for this row"

    # -- cleaning up -------------------------------------------------------------------

    async def clean_up(self) -> int:
        """Delete the files of every ended part whose rows are all stored with their result
        (ok or failed), and record it in the ledger; the number of parts cleaned.

        Called after the run, once the recorder has committed its last rows: a part whose
        rows are not all in the store keeps its files (a resume reads its output again).
        Without a store, a part's rows count as kept once this job settled them. A file
        the provider no longer has counts as deleted; any other failure is one warning,
        and the part keeps its files until a later run of the same id tries again."""
        if self.settings.keep_files:
            return 0
        cleaned = 0
        for part in list(self.parts.values()):
            files = [f for f in (part.input_file_id, part.output_file_id, part.error_file_id) if f]
            if part.files_deleted_at or not part.terminal or not part.collected or not files:
                continue
            if not self._rows_kept(part):
                continue
            failed: list[str] = []
            reason = ""
            for file_id in files:
                try:
                    await self._call(partial(self.api.files.delete, file_id))
                except openai.NotFoundError:
                    continue
                except Exception as exc:
                    failed.append(file_id)
                    reason = reason or classify(exc, self.secrets).message
            if failed:
                where = part.batch_id or f"part {part.part}"
                self._warn(
                    f"batch {where}: cannot delete its files {', '.join(failed)} ({reason}); "
                    "they stay in the account's storage (the results are stored)"
                )
                continue
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
            self._remember(self.ledger.update(self.run_id, part.part, files_deleted_at=stamp))
            cleaned += 1
        return cleaned

    def _rows_kept(self, part: Part) -> bool:
        if self.ledger.path is None:
            return all(row in self._results and self._results[row].done() for row in part.rows)
        try:
            have = stored_rows(self.ledger.path, self.run_id, part.rows)
        except Exception:  # an unreadable store: keep the files
            return False
        return have >= set(part.rows)

    # -- stopping ----------------------------------------------------------------------

    async def cancel_remote(self) -> None:
        """Cancel every batch still running (the run was cancelled)."""
        for part in list(self.parts.values()):
            if part.batch_id and part.status in LIVE - {"cancelling"}:
                try:
                    batch = await self._call(partial(self.api.batches.cancel, part.batch_id))
                except Exception as exc:
                    self._warn(f"batch {part.batch_id}: cannot cancel it ({exc})")
                    continue
                self._update(part, batch)

    # -- bookkeeping -------------------------------------------------------------------

    def _mine(self, part: Part) -> list[int]:
        return [row for row in part.rows if self._owner.get(row) == part.part]

    def _settle(self, row: int, outcome: Outcome) -> None:
        future = self._results.get(row)
        if future is not None and not future.done():
            future.set_result(outcome)

    def _settle_all(self, failure: Failure) -> None:
        for row in self._results:
            self._settle(row, LineFailure(failure))

    def _not_submitted(self, part: Part, step: str, exc: Exception) -> None:
        failure = classify(exc, self.secrets)
        part = self.ledger.update(self.run_id, part.part, status="not_submitted", collected=1)
        self._remember(part)
        message = f"not submitted: the {step} failed: {failure.message}"
        for row in self._mine(part):
            self._settle(row, LineFailure(Failure(failure.kind, message, None, failure.status)))

    def _update(self, part: Part, batch: Any) -> Part:
        counts = batch.request_counts
        fields: dict[str, Any] = {"batch_id": batch.id, "status": batch.status}
        if counts is not None:
            fields.update(total=counts.total, completed=counts.completed, failed=counts.failed)
        fields["output_file_id"] = batch.output_file_id
        fields["error_file_id"] = batch.error_file_id
        part = self.ledger.update(self.run_id, part.part, **fields)
        if part.status == "in_progress" and part.part not in self._progress:
            self._progress[part.part] = (self._clock(), part.completed + part.failed)
        self._remember(part)
        return part

    def _remember(self, part: Part) -> None:
        self.parts[part.part] = part
        if self.on_change is not None:
            with suppress(Exception):  # a display's bug must not stop the job
                self.on_change(self)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    async def _call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """One files/batches call, tried again on transient failures (5xx, 429, network)."""
        delay = 1.0
        for attempt in range(API_RETRIES):
            try:
                return await make()
            except TRANSIENT:
                if attempt == API_RETRIES - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
        raise AssertionError("unreachable")

    # -- what is on screen -------------------------------------------------------------

    def views(self) -> list[BatchView]:
        """Each part of this job (its latest state) with an ETA from its progress so far."""
        now = self._clock()
        shown: list[BatchView] = []
        for number in sorted(self.parts):
            part = self.parts[number]
            eta = None
            start = self._progress.get(number)
            done = part.completed + part.failed
            if part.status == "in_progress" and start is not None and part.total:
                began, done_then = start
                rate = (done - done_then) / max(1e-9, now - began)
                if rate > 0:
                    eta = (part.total - done) / rate
            shown.append(
                BatchView(
                    number,
                    part.batch_id,
                    part.status,
                    len(part.rows),
                    part.total,
                    part.completed,
                    part.failed,
                    eta,
                )
            )
        return shown


def _never_ran(line: dict[str, Any]) -> bool:
    """A line for a request its cancelled batch never ran: as if there were no line."""
    error = line.get("error")
    return (
        line.get("response") is None
        and isinstance(error, dict)
        and (error.get("code") == "batch_cancelled")
    )
