"""The request files of a batch run: one JSONL line per row, split within the API's limits.

Each line carries the body fanout's prepared instructor request gives the row's text
(``PreparedRequest.body``, the same body an online run sends), under the custom id
``row-<dataset index>``. A file holds at most ``max_requests`` lines and
``max_bytes`` bytes (OpenAI: 50,000 requests and 200 MB per batch file); a longer
run is split into several files, each its own batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from core.dataset import Record
from core.prepared import PreparedRequest

MAX_REQUESTS = 50_000
"""OpenAI's limit of requests in one batch file."""
MAX_BYTES = 200 * 1024 * 1024
"""OpenAI's limit of one batch file's size."""
URL = "/v1/chat/completions"
_PREFIX = "row-"


def custom_id(index: int) -> str:
    return f"{_PREFIX}{index}"


def row_of(custom: object) -> int | None:
    """The dataset index in a custom id fanout wrote, or None for any other."""
    if not isinstance(custom, str) or not custom.startswith(_PREFIX):
        return None
    digits = custom[len(_PREFIX) :]
    return int(digits) if digits.isdigit() else None


def request_line(prepared: PreparedRequest, record: Record) -> bytes:
    line = {
        "custom_id": custom_id(record.index),
        "method": "POST",
        "url": URL,
        "body": prepared.body(record.text),
    }
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True)
class RequestFile:
    rows: tuple[int, ...]
    data: bytes


@dataclass(frozen=True)
class TooLarge:
    """A row whose one request is over the file size limit on its own."""

    row: int
    size: int


def split_requests(
    prepared: PreparedRequest,
    records: Iterable[Record],
    *,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
) -> Iterator[RequestFile | TooLarge]:
    """Request files in dataset order, each within both limits."""
    rows: list[int] = []
    chunks: list[bytes] = []
    size = 0
    for record in records:
        line = request_line(prepared, record)
        if len(line) > max_bytes:
            yield TooLarge(record.index, len(line))
            continue
        if rows and (len(rows) >= max_requests or size + len(line) > max_bytes):
            yield RequestFile(tuple(rows), b"".join(chunks))
            rows, chunks, size = [], [], 0
        rows.append(record.index)
        chunks.append(line)
        size += len(line)
    if rows:
        yield RequestFile(tuple(rows), b"".join(chunks))
