"""What each HTTP exchange tells us, delivered to whoever is listening in this task.

The HTTP client calls ``on_request`` and ``on_response`` (httpx event hooks)
in the task that sends the request, so a context variable routes the
signal to the right listener without threading it through instructor and
the SDK: the extractor counts a row's attempts and 429s this way, and the
adaptive strategy learns the server's ``x-ratelimit-*`` budget the moment a
response arrives, not when the row finally finishes.

The client's connection pool reports here too (``connected_hook``, an
aiohttp trace callback): until a request has its connection (from the
pool's queue, or newly set up) it is not yet on the wire.

A run's client can also pace answers here (``event_hooks(pacer)``): once an
answer's headers are in, the SDK reads and wraps the body, half of what an
answer costs the client, and with a pacer that work takes its turn like the
rest (``core.fairshare``) instead of piling into whichever pass a burst of
answers lands in.
"""

from __future__ import annotations

import contextvars
import math
import operator
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol, cast

import httpx2 as httpx

from core.failures import AnswerTooLarge, header, parse_duration, retry_after_seconds


@dataclass(frozen=True, slots=True)
class LimitInfo:
    """The server's rate-limit headers on one response (None where absent)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None
    retry_after: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> LimitInfo:
        """Read OpenAI's names, or the same ones as LiteLLM forwards an upstream's
        (``llm_provider-x-ratelimit-...``); resets in any form ``parse_duration`` reads."""
        return cls(
            limit_requests=_int(header(headers, "x-ratelimit-limit-requests")),
            remaining_requests=_int(header(headers, "x-ratelimit-remaining-requests")),
            reset_requests=parse_duration(header(headers, "x-ratelimit-reset-requests") or ""),
            limit_tokens=_int(header(headers, "x-ratelimit-limit-tokens")),
            remaining_tokens=_int(header(headers, "x-ratelimit-remaining-tokens")),
            reset_tokens=parse_duration(header(headers, "x-ratelimit-reset-tokens") or ""),
            retry_after=retry_after_seconds(headers, resets=False),
        )

    @property
    def empty(self) -> bool:
        return self.remaining_requests is None and self.remaining_tokens is None

    def values(self) -> tuple[float | int | None, ...] | None:
        """The fields as a plain tuple, None when the response said nothing (what a worker
        process sends its parent instead of the headers: ``LimitInfo(*values)``)."""
        values: tuple[float | int | None, ...] = _limit_fields(self)
        return None if values == _NOTHING else values


_limit_fields = operator.attrgetter(*(f.name for f in fields(LimitInfo)))
_NOTHING = (None,) * len(fields(LimitInfo))


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) else None


class Pacer(Protocol):
    async def checkpoint(self) -> None: ...


class Listener(Protocol):
    def on_request(self) -> None: ...

    def on_response(self, status: int, headers: Mapping[str, str]) -> None: ...

    def on_connected(self) -> None:
        """The request has its connection (reused, or made after a wait): it goes on the
        wire. Only clients that report connections call it (``core.client``)."""


_listeners: contextvars.ContextVar[tuple[Listener, ...]] = contextvars.ContextVar(
    "fanout_http_listeners", default=()
)


class RelayedListener(Listener, Protocol):
    """A listener that can also follow a row's requests made in another process (a worker
    process, ``core.workers``): ``on_request`` when one was sent there, ``on_relayed_answer``
    with what its answer said, timed where it was made."""

    def on_relayed_answer(self, status: int, info: LimitInfo, latency: float) -> None: ...


def listen(listener: Listener) -> contextvars.Token[tuple[Listener, ...]]:
    """Add a listener for HTTP exchanges made by the current task (until reset)."""
    return _listeners.set((*_listeners.get(), listener))


def stop_listening(token: contextvars.Token[tuple[Listener, ...]]) -> None:
    _listeners.reset(token)


def relayed_listeners() -> tuple[RelayedListener, ...]:
    """The current task's listeners that can follow requests made elsewhere: what a row
    handed to a worker process reports to."""
    listeners = _listeners.get()
    if not listeners:
        return ()
    # Not isinstance(x, RelayedListener): a runtime protocol check costs ~10 us a row.
    return tuple(cast(RelayedListener, x) for x in listeners if hasattr(x, "on_relayed_answer"))


async def request_hook(request: Any) -> None:
    for listener in _listeners.get():
        listener.on_request()


async def response_hook(response: Any) -> None:
    listeners = _listeners.get()
    if listeners:
        status, headers = response.status_code, response.headers
        for listener in listeners:
            listener.on_response(status, headers)


async def connected_hook(*_trace: Any) -> None:
    for listener in _listeners.get():
        listener.on_connected()


class _LimitedBody(httpx.AsyncByteStream):
    """An answer's body that stops at ``limit`` bytes with ``AnswerTooLarge``, so an
    endpoint sending junk without end costs a bounded amount of memory."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in self._stream:
            total += len(chunk)
            if total > self._limit:
                raise AnswerTooLarge(too_large(self._limit))
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


def too_large(limit: int) -> str:
    return (
        f"the answer is larger than {limit / 1e6:g} MB and was not read "
        "(--max-answer-mb raises the limit)"
    )


def size_limit_hook(limit: int) -> Callable[[Any], Awaitable[None]]:
    async def limit_body(response: Any) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit():
            # A declared length is all the client will read: check it, and skip the
            # counting wrapper (most answers come this way; it cost ~40 us each).
            if int(declared) > limit:
                raise AnswerTooLarge(too_large(limit))
            return
        response.stream = _LimitedBody(response.stream, limit)

    return limit_body


def event_hooks(
    pacer: Pacer | None = None, max_answer_bytes: int | None = None
) -> dict[str, list[Callable[..., Any]]]:
    """Pass as ``event_hooks=`` to the httpx client under the SDK; with a ``pacer``,
    the task that sent a request awaits ``pacer.checkpoint()`` when its answer's
    headers are in, before the SDK reads the body; with ``max_answer_bytes``, a
    larger body fails the attempt (``AnswerTooLarge``) instead of being read."""
    response: list[Callable[..., Any]] = [response_hook]
    if max_answer_bytes is not None:
        response.append(size_limit_hook(max_answer_bytes))
    if pacer is not None:

        async def pace(_response: Any) -> None:
            await pacer.checkpoint()

        response.append(pace)
    return {"request": [request_hook], "response": response}
