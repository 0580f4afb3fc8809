"""The simulator's Batch API: the files and batches endpoints the openai SDK calls.

Routes (with or without the ``/v1`` prefix):

- ``POST /files`` (multipart, ``purpose=batch``), ``GET /files``, ``GET /files/{id}``,
  ``GET /files/{id}/content``, ``DELETE /files/{id}``;
- ``POST /batches``, ``GET /batches`` (``limit``, ``after``), ``GET /batches/{id}``,
  ``POST /batches/{id}/cancel``;
- ``GET /fanout/batches``: the request log (not OpenAI's): how many times each
  ``custom_id`` was answered, over every batch this process ran, and each batch's state,
  so a test can prove that no row was submitted twice.

Each line of a batch is answered by the same code as an online
``/v1/chat/completions`` request (``SimulatorApp._plan`` and ``_answer``, with the
same fault draws), so a batch and an online run extract the same values.

Time runs ``batch_time_scale`` times faster than the clock (default 3600: an hour a
second), so the 24 h completion window is 24 s and a test can make it shorter. A
batch validates its file (60 simulated seconds), answers its lines over
``batch_duration`` simulated seconds (``request_counts`` grow as it goes), finalizes
(60 s) and completes with an output file and, when lines failed, an error file,
in OpenAI's line formats. Faults, each drawn per batch or per line from the seed:
``batch_reject_rate`` (the batch fails validation), ``batch_expire_rate`` (only half
its lines are answered before the window closes; the rest are ``batch_expired`` in the
error file) and ``batch_line_error_rate`` (a line answered 500). A file with a bad
line (not JSON, no ``custom_id``, a repeated ``custom_id``, another URL) fails
validation the way OpenAI's does, with the line number.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from core.localserver.app import Receive, Scope, Send, SimulatorApp

MAX_FILE_BYTES = 210 * 1024 * 1024
"""Largest upload taken (OpenAI's limit for a batch file is 200 MB)."""
WINDOW_S = 24 * 3600.0
VALIDATING_S = 60.0
FINALIZING_S = 60.0
STEPS = 20
"""A batch's lines are answered in this many steps over its duration."""
ENDPOINTS = ("/v1/chat/completions",)
LIVE = ("validating", "in_progress", "finalizing", "cancelling")
_JSON = (b"content-type", b"application/json")
_JSONL = (b"content-type", b"application/octet-stream")


class _HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def card(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    window: str
    metadata: dict[str, Any] | None
    created_at: int
    status: str = "validating"
    stamps: dict[str, int] = field(default_factory=dict)
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None
    cancel: bool = False

    def card(self, scale: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id,
            "completion_window": self.window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.stamps.get("in_progress_at"),
            "expires_at": self.created_at + int(WINDOW_S / scale),
            "finalizing_at": self.stamps.get("finalizing_at"),
            "completed_at": self.stamps.get("completed_at"),
            "failed_at": self.stamps.get("failed_at"),
            "expired_at": self.stamps.get("expired_at"),
            "cancelling_at": self.stamps.get("cancelling_at"),
            "cancelled_at": self.stamps.get("cancelled_at"),
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
            "metadata": self.metadata,
        }


class BatchService:
    """Files and batches of one simulator process, in memory."""

    def __init__(self, app: SimulatorApp) -> None:
        self.app = app
        self.config = app.config
        self.scale = self.config.batch_time_scale
        self.rng = random.Random(self.config.seed)
        self.files: dict[str, _File] = {}
        self.batches: dict[str, _Batch] = {}
        self.answered: Counter[str] = Counter()
        """Times each custom_id was answered, over every batch (the request log)."""
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-fanout{next(self._ids):08x}"

    async def _sleep(self, simulated_s: float) -> None:
        await asyncio.sleep(max(0.0, simulated_s / self.scale))

    # -- routing -----------------------------------------------------------------------

    @staticmethod
    def serves(path: str) -> bool:
        bare = path[3:] if path.startswith("/v1/") else path
        return bare.startswith(("/files", "/batches", "/fanout/batches"))

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, path: str, method: str
    ) -> None:
        from core.localserver.app import _SERVER, _error_body, _respond

        bare = path[3:] if path.startswith("/v1/") else path
        parts = [p for p in bare.split("/") if p]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            status, headers, body = await self._route(scope, receive, method, parts, query)
        except _HttpError as exc:
            kind = "invalid_request_error"
            status, headers = exc.status, [_JSON]
            body = _error_body(exc.message, kind, exc.code)
        await _respond(send, status, [*headers, _SERVER], body)

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        method: str,
        parts: list[str],
        query: dict[str, list[str]],
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        head, rest = parts[0], parts[1:]
        if head == "fanout":
            return 200, [_JSON], json.dumps(self.log()).encode()
        if head == "files":
            if not rest and method == "POST":
                return self._ok(self._upload(scope, await _read(receive)).card())
            if not rest and method == "GET":
                data = [f.card() for f in self.files.values()]
                return self._ok({"object": "list", "data": data, "has_more": False})
            file = self._file(rest[0])
            if len(rest) == 1 and method == "GET":
                return self._ok(file.card())
            if len(rest) == 1 and method == "DELETE":
                del self.files[file.id]
                return self._ok({"id": file.id, "object": "file", "deleted": True})
            if rest[1:] == ["content"] and method == "GET":
                return 200, [_JSONL], file.data
        if head == "batches":
            if not rest and method == "POST":
                return self._ok(self._create(await _read(receive)).card(self.scale))
            if not rest and method == "GET":
                return self._ok(self._list(query))
            batch = self.batches.get(rest[0])
            if batch is None:
                raise _HttpError(404, f"No batch found with id '{rest[0]}'.", "not_found")
            if len(rest) == 1 and method == "GET":
                return self._ok(batch.card(self.scale))
            if rest[1:] == ["cancel"] and method == "POST":
                if batch.status in LIVE:
                    batch.cancel = True
                    if batch.status != "cancelling":
                        batch.status = "cancelling"
                        batch.stamps["cancelling_at"] = int(time.time())
                return self._ok(batch.card(self.scale))
        raise _HttpError(404, f"Unknown request URL: {method} /v1/{'/'.join(parts)}", "unknown_url")

    @staticmethod
    def _ok(document: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return 200, [_JSON], json.dumps(document).encode()

    def _file(self, file_id: str) -> _File:
        file = self.files.get(file_id)
        if file is None:
            raise _HttpError(404, f"No such File object: {file_id}", "not_found")
        return file

    def log(self) -> dict[str, Any]:
        return {
            "answered": dict(self.answered),
            "twice": sorted(cid for cid, n in self.answered.items() if n > 1),
            "batches": [{**b.card(self.scale), "lines": b.total} for b in self.batches.values()],
            "files": len(self.files),
        }

    # -- files ---------------------------------------------------------------------------

    def _upload(self, scope: Scope, body: bytes) -> _File:
        content_type = ""
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                content_type = value.decode("latin-1")
        fields = _multipart(content_type, body)
        upload = fields.get("file")
        if upload is None:
            raise _HttpError(400, "Missing required parameter: 'file'.")
        purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace")
        if purpose not in ("batch", "assistants", "fine-tune", "user_data", "evals"):
            raise _HttpError(400, f"Invalid value for 'purpose': {purpose!r}.")
        filename, data = upload
        file = _File(self._new_id("file"), filename or "upload", purpose, data, int(time.time()))
        self.files[file.id] = file
        return file

    # -- batches -------------------------------------------------------------------------

    def _create(self, body: bytes) -> _Batch:
        try:
            request = json.loads(body)
        except ValueError:
            raise _HttpError(400, "The body must be a JSON object.") from None
        if not isinstance(request, dict):
            raise _HttpError(400, "The body must be a JSON object.")
        file = self._file(str(request.get("input_file_id")))
        endpoint = request.get("endpoint")
        if endpoint not in ENDPOINTS:
            raise _HttpError(
                400, f"Invalid 'endpoint': {endpoint!r}; the simulator serves /v1/chat/completions."
            )
        if request.get("completion_window") != "24h":
            raise _HttpError(400, "Invalid 'completion_window': only '24h' is supported.")
        if file.purpose != "batch":
            raise _HttpError(400, f"File {file.id} has purpose {file.purpose!r}, not 'batch'.")
        metadata = request.get("metadata")
        batch = _Batch(
            self._new_id("batch"),
            file.id,
            endpoint,
            "24h",
            metadata if isinstance(metadata, dict) else None,
            int(time.time()),
        )
        self.batches[batch.id] = batch
        task = asyncio.get_running_loop().create_task(self._process(batch, file.data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return batch

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = int((query.get("limit") or ["20"])[0])
        after = query["after"][0] if query.get("after") else None
        newest = list(reversed(self.batches.values()))
        if after is not None:
            ids = [b.id for b in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        page = newest[: max(1, min(limit, 100))]
        return {
            "object": "list",
            "data": [b.card(self.scale) for b in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": len(newest) > len(page),
        }

    async def _process(self, batch: _Batch, data: bytes) -> None:
        started = time.monotonic()
        await self._sleep(VALIDATING_S)
        lines, errors = _validate(data)
        if not errors and self.rng.random() < self.config.batch_reject_rate:
            errors = [
                {
                    "code": "fanout_simulated_rejection",
                    "message": "The batch failed validation (simulated fault).",
                    "param": None,
                    "line": None,
                }
            ]
        if errors:
            batch.errors = errors
            batch.status = "failed"
            batch.stamps["failed_at"] = int(time.time())
            return
        if batch.cancel:
            await self._finish(batch, [], [], lines, "cancelled")
            return
        batch.total = len(lines)
        batch.status = "in_progress"
        batch.stamps["in_progress_at"] = int(time.time())
        expires = self.rng.random() < self.config.batch_expire_rate
        answering = lines[: len(lines) // 2] if expires else lines
        outputs: list[str] = []
        failures: list[str] = []
        step = max(1, -(-len(answering) // STEPS))
        pause = self.config.batch_duration / max(1, -(-len(answering) // step))
        done = 0
        for start in range(0, len(answering), step):
            if batch.cancel:
                break
            await self._sleep(pause)
            if batch.cancel:
                break
            for line in answering[start : start + step]:
                ok, text = self._answer(line)
                (outputs if ok else failures).append(text)
                if ok:
                    batch.completed += 1
                else:
                    batch.failed += 1
                done += 1
        unanswered = lines[done:]
        if batch.cancel:
            await self._finish(batch, outputs, failures, unanswered, "cancelled")
            return
        if expires:
            left = WINDOW_S / self.scale - (time.monotonic() - started)
            await asyncio.sleep(max(0.0, left))
            await self._finish(batch, outputs, failures, unanswered, "expired")
            return
        batch.status = "finalizing"
        batch.stamps["finalizing_at"] = int(time.time())
        await self._sleep(FINALIZING_S)
        await self._finish(batch, outputs, failures, [], "completed")

    async def _finish(
        self,
        batch: _Batch,
        outputs: list[str],
        failures: list[str],
        unanswered: list[dict[str, Any]],
        status: str,
    ) -> None:
        code, why = {
            "expired": (
                "batch_expired",
                "This request could not be executed before the completion window expired.",
            ),
            "cancelled": ("batch_cancelled", "This request was cancelled with its batch."),
        }.get(status, ("", ""))
        for line in unanswered:
            failures.append(
                json.dumps(
                    {
                        "id": self._new_id("batch_req"),
                        "custom_id": line.get("custom_id"),
                        "response": None,
                        "error": {"code": code, "message": why},
                    }
                )
            )
            batch.failed += 1 if status == "expired" else 0
        if status == "cancelled":
            batch.total = batch.total or len(unanswered)
        now = int(time.time())
        if outputs:
            name = f"{batch.id}_output.jsonl"
            out = _File(self._new_id("file"), name, "batch_output", _lines(outputs), now)
            self.files[out.id] = out
            batch.output_file_id = out.id
        if failures:
            name = f"{batch.id}_error.jsonl"
            err = _File(self._new_id("file"), name, "batch_output", _lines(failures), now)
            self.files[err.id] = err
            batch.error_file_id = err.id
        batch.status = status
        batch.stamps[f"{status}_at"] = now

    def _answer(self, line: dict[str, Any]) -> tuple[bool, str]:
        """One line, answered as ``/v1/chat/completions`` would answer its body."""
        from core.localserver.app import _BadRequest, _error_body

        app = self.app
        custom_id = line["custom_id"]
        self.answered[custom_id] += 1
        app.counts["batch_lines"] = app.counts.get("batch_lines", 0) + 1
        request_id = next(app._ids)
        status: int
        try:
            plan = app._plan(json.dumps(line.get("body")).encode())
            if plan.stream:
                raise _BadRequest("Streaming is not supported in a batch.", "stream")
        except _BadRequest as exc:
            status, body = 400, _error_body(exc.message, "invalid_request_error", None, exc.param)
        else:
            fault = app._draw_fault()
            if fault is None and self.rng.random() < self.config.batch_line_error_rate:
                fault = "error"
            if fault == "timeout":
                fault = "error"  # a batch has no client to hang on: the line fails instead
            status, _, body = app._answer(plan, fault, request_id, 0.0)
        record = {
            "id": self._new_id("batch_req"),
            "custom_id": custom_id,
            "response": {
                "status_code": status,
                "request_id": f"req_fanout{request_id:012x}",
                "body": json.loads(body),
            },
            "error": None,
        }
        return status == 200, json.dumps(record, ensure_ascii=False)


def _lines(texts: list[str]) -> bytes:
    return ("\n".join(texts) + "\n").encode()


def _validate(data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The request lines of a batch file, or OpenAI-style validation errors."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()

    def error(number: int, code: str, message: str) -> None:
        errors.append({"code": code, "message": message, "param": None, "line": number})

    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            error(number, "invalid_json_line", "This line is not parseable as valid JSON.")
            continue
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            error(number, "missing_required_parameter", "Missing required parameter: custom_id.")
            continue
        if line["custom_id"] in seen:
            error(number, "duplicate_custom_id", "The custom_id for this request is a duplicate.")
            continue
        if line.get("method") != "POST" or line.get("url") not in ENDPOINTS:
            error(
                number,
                "invalid_url",
                "The URL provided for this request does not match the batch endpoint.",
            )
            continue
        if not isinstance(line.get("body"), dict):
            error(number, "missing_required_parameter", "Missing required parameter: body.")
            continue
        seen.add(line["custom_id"])
        lines.append(line)
    if not lines and not errors:
        error(0, "empty_file", "The batch input file is empty.")
    return lines, errors[:1000]


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename, bytes)."""
    marker = "boundary="
    if "multipart/form-data" not in content_type or marker not in content_type:
        raise _HttpError(400, "Expected a multipart/form-data upload.")
    boundary = content_type.split(marker, 1)[1].split(";")[0].strip().strip('"').encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary):
        if not part or part.startswith(b"--"):
            continue
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        name = filename = None
        for header in head.decode("utf-8", "replace").split("\r\n"):
            if header.lower().startswith("content-disposition"):
                for item in header.split(";"):
                    key, _, value = item.strip().partition("=")
                    if key == "name":
                        name = value.strip('"')
                    elif key == "filename":
                        filename = value.strip('"')
        if name:
            fields[name] = (filename, content)
    return fields


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _HttpError(400, "The client went away.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise _HttpError(413, f"Request body too large: over {MAX_FILE_BYTES} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
