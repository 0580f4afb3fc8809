"""The pipe protocol between the parent and its worker processes.

A frame is a 4-byte big-endian length and a pickled list of messages; each
side sends at most one frame per pass of its event loop, so a busy run costs
one write and one read per pass, not per row. Messages are tuples whose first
item names them (``ROW``, ``OK`` ...). Both ends are this package at the same
version (the worker is started from the parent's interpreter), so pickle's
trust is the parent's own.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from collections.abc import Callable
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30

# parent -> worker
INIT = "init"
"""``(INIT, config)``: the first frame; see ``core.workers.child.WorkerConfig``."""
ROW = "row"
"""``(ROW, index, text)``: extract this row."""
CANCEL = "cancel"
"""``(CANCEL, index)``: the run no longer wants this row."""
GRANT = "grant"
"""``(GRANT, ticket, charged)``: the rate limiter let ticket's request go."""
PAUSE = "pause"
"""``(PAUSE, seconds)`` both ways: a 429 asked the run to wait (the run-wide pause)."""

# worker -> parent
READY = "ready"
"""``(READY, pid)``: the worker's client is built; rows may come."""
FATAL = "fatal"
"""``(FATAL, message)``: the worker cannot work (its schema does not load ...)."""
OK = "ok"
"""``(OK, index, data, attempts, prompt, completion, rate_limited, cost, guessed,
request_ids, lenient, phases)``."""
FAIL = "fail"
"""``(FAIL, index, failure, attempts, prompt, completion, rate_limited, cost,
request_ids, phases)``."""
BROKEN = "broken"
"""``(BROKEN, index, message, n_attempts, phases)``: the extract raised something else."""
RETRY = "retry"
"""``(RETRY, index, attempt, delay, failure)``: an attempt failed and will be retried."""
ASK = "ask"
"""``(ASK, ticket, estimated_tokens)``: may a request go (rpm / tpm)?"""
CORRECT = "correct"
"""``(CORRECT, charged, actual)``: what an answer really cost in tokens."""
SENT = "sent"
"""``(SENT, index)``: a request for this row went out (``--strategy adaptive`` only)."""
ANSWER = "answer"
"""``(ANSWER, index, status, latency, limits)``: that request's answer came in after
``latency`` seconds; ``limits`` is what its rate-limit headers said
(``core.signals.LimitInfo.values()``, None when nothing) (``--strategy adaptive`` only)."""


def encode(messages: list[tuple[Any, ...]]) -> bytes:
    body = pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> list[tuple[Any, ...]] | None:
    """The next frame's messages; None at the end of the stream (the other side is gone)."""
    try:
        head = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(head)
        if size > MAX_FRAME:
            raise ValueError(f"a frame of {size} bytes")
        body = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    messages: list[tuple[Any, ...]] = pickle.loads(body)
    return messages


class Outbox:
    """Messages for one pipe, written as one frame at the end of the loop's pass."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self._pending: list[tuple[Any, ...]] = []
        self.closed = False

    def put(self, message: tuple[Any, ...]) -> None:
        if self.closed:
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(message)

    def flush(self) -> None:
        if not self._pending or self.closed:
            self._pending.clear()
            return
        messages, self._pending = self._pending, []
        try:
            self._write(encode(messages))
        except (ConnectionError, RuntimeError, OSError):
            self.closed = True  # the other side is gone; its reader finds out
