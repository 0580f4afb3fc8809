"""What each HTTP exchange tells us, delivered to whoever is listening in this task.

The HTTP client calls ``on_request`` and ``on_response`` (httpx event hooks)
in the task that sends the request, so a context variable routes the
signal to the right listener without threading it through instructor and
the SDK: the extractor counts a row's attempts and 429s this way, and the
adaptive strategy learns the server's ``x-ratelimit-*`` budget the moment a
response arrives, not when the row finally finishes.

A row's ``FairShare`` also waits here (``pace_with``): once an answer's headers
are in, the SDK reads and wraps the body, half of what an answer costs the
client, and that work then takes its turn like the rest instead of piling
into whichever pass a burst of answers lands in.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from core.failures import parse_duration, retry_after_seconds


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
        return cls(
            limit_requests=_int(headers.get("x-ratelimit-limit-requests")),
            remaining_requests=_int(headers.get("x-ratelimit-remaining-requests")),
            reset_requests=parse_duration(headers.get("x-ratelimit-reset-requests", "")),
            limit_tokens=_int(headers.get("x-ratelimit-limit-tokens")),
            remaining_tokens=_int(headers.get("x-ratelimit-remaining-tokens")),
            reset_tokens=parse_duration(headers.get("x-ratelimit-reset-tokens", "")),
            retry_after=retry_after_seconds(headers)
            if "retry-after" in headers or "retry-after-ms" in headers
            else None,
        )

    @property
    def empty(self) -> bool:
        return self.remaining_requests is None and self.remaining_tokens is None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


class Pacer(Protocol):
    async def checkpoint(self) -> None: ...


class Listener(Protocol):
    def on_request(self) -> None: ...

    def on_response(self, status: int, headers: Mapping[str, str]) -> None: ...


_listeners: contextvars.ContextVar[tuple[Listener, ...]] = contextvars.ContextVar(
    "fanout_http_listeners", default=()
)
_pacer: contextvars.ContextVar[Pacer | None] = contextvars.ContextVar("fanout_pacer", default=None)


def listen(listener: Listener) -> contextvars.Token[tuple[Listener, ...]]:
    """Add a listener for HTTP exchanges made by the current task (until reset)."""
    return _listeners.set((*_listeners.get(), listener))


def stop_listening(token: contextvars.Token[tuple[Listener, ...]]) -> None:
    _listeners.reset(token)


def pace_with(pacer: Pacer) -> contextvars.Token[Pacer | None]:
    """Wait for ``pacer.checkpoint()`` when an answer's headers arrive, in this task."""
    return _pacer.set(pacer)


def stop_pacing(token: contextvars.Token[Pacer | None]) -> None:
    _pacer.reset(token)


async def request_hook(request: Any) -> None:
    for listener in _listeners.get():
        listener.on_request()


async def response_hook(response: Any) -> None:
    listeners = _listeners.get()
    if listeners:
        status, headers = response.status_code, response.headers
        for listener in listeners:
            listener.on_response(status, headers)
    pacer = _pacer.get()
    if pacer is not None:
        await pacer.checkpoint()


EVENT_HOOKS: dict[str, list[Callable[..., Any]]] = {
    "request": [request_hook],
    "response": [response_hook],
}
"""Pass as ``event_hooks=`` to the httpx client under the SDK."""
