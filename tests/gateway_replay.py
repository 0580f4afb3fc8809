"""A replay of a LiteLLM-like gateway's rate limits: its own limit and an upstream's.

Not the simulator and not LiteLLM itself: a stdlib ``http.server`` on a loopback port,
in a thread of its own, answering ``/chat/completions`` the way LiteLLM's proxy does
with an ``rpm_limit`` in front of a provider with a lower limit of its own:

- **The gateway's limit:** at most ``rpm`` requests in any ``window`` seconds (a sliding
  window of the requests it let through, like LiteLLM's v3 limiter). Beyond that, a 429
  with no ``retry-after`` and no ``x-ratelimit-*`` header at all: nothing to wait on.
- **The upstream's limit** (``upstream_rpm``, optional, per ``upstream_window``
  seconds, by default the same window; a shorter one is a provider's burst limit): a request
  the gateway let through but the upstream refuses comes back as LiteLLM forwards it,
  a 429 whose only wait is in prefixed headers: ``llm_provider-retry-after`` (whole
  seconds, rounded up), ``llm_provider-retry-after-ms`` and
  ``llm_provider-x-ratelimit-reset-requests`` (a duration, ``"1.234s"``), each the time
  until the upstream's window has room again. The gateway counts it against its own
  limit all the same (it sent it).
- Otherwise a valid answer for the request's mode (``replay_server.answer("ok", ...)``)
  after ``latency`` seconds, with no rate-limit headers.

``window`` is 60 s for the real thing; tests scale it down (60 requests per 2 s) and
scale fanout's bare-429 backoff with it (``RetryPolicy.bare_429_delays``). Every request
is logged (``log``: arrival time, status, ``"ok"``/``"gateway"``/``"upstream"``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.replay_server import _Server, answer


@dataclass
class Gateway:
    rpm: int = 60
    window: float = 60.0
    upstream_rpm: int | None = None
    latency: float = 0.0
    upstream_window: float | None = None
    base_url: str = ""
    log: list[tuple[float, int, str]] = field(default_factory=list)
    _passed: deque[float] = field(default_factory=deque)
    _upstream: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, now: float) -> tuple[str, float]:
        """("ok" | "gateway" | "upstream", seconds until the upstream has room)."""
        with self._lock:
            upstream_window = self.upstream_window or self.window
            for times, window in ((self._passed, self.window), (self._upstream, upstream_window)):
                while times and times[0] <= now - window:
                    times.popleft()
            if len(self._passed) >= self.rpm:
                kind, wait = "gateway", 0.0
            else:
                self._passed.append(now)
                if self.upstream_rpm is not None and len(self._upstream) >= self.upstream_rpm:
                    kind, wait = "upstream", self._upstream[0] + upstream_window - now
                else:
                    self._upstream.append(now)
                    kind, wait = "ok", 0.0
            self.log.append((now, 429 if kind != "ok" else 200, kind))
        return kind, wait

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for _, _, k in self.log if k == kind)

    def max_in_window(self, kind: str = "ok", window: float | None = None) -> int:
        """The most ``kind`` answers any ``window`` seconds held (never above the limit)."""
        window = window or self.window
        with self._lock:
            times = [t for t, _, k in self.log if k == kind]
        most = 0
        start = 0
        for end, t in enumerate(times):
            while times[start] <= t - window:
                start += 1
            most = max(most, end - start + 1)
        return most


GATEWAY_429 = {
    "error": {
        "message": "Rate limit exceeded for api_key: 5f1c. Limit type: requests. "
        "Current limit: {rpm}, Remaining: 0.",
        "type": "None",
        "param": "None",
        "code": "429",
    }
}
UPSTREAM_429 = {
    "error": {
        "message": "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit "
        "reached for requests. Received Model Group=replay",
        "type": "throttling_error",
        "param": None,
        "code": "429",
    }
}


def _handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._send(200, {"object": "list", "data": [{"id": "replay"}]}, {})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length))
            kind, wait = gateway.decide(time.monotonic())
            if kind == "gateway":
                error = json.loads(json.dumps(GATEWAY_429).replace("{rpm}", str(gateway.rpm)))
                self._send(429, error, {})
            elif kind == "upstream":
                wait = max(0.001, wait)
                headers = {
                    "llm_provider-retry-after": str(math.ceil(wait)),
                    "llm_provider-retry-after-ms": str(math.ceil(wait * 1000)),
                    "llm_provider-x-ratelimit-reset-requests": f"{wait:.3f}s",
                }
                self._send(429, UPSTREAM_429, headers)
            else:
                if gateway.latency:
                    time.sleep(gateway.latency)
                self._send(*answer("ok", body), {})

    return Handler


@contextmanager
def gateway(
    rpm: int = 60,
    window: float = 60.0,
    upstream_rpm: int | None = None,
    *,
    upstream_window: float | None = None,
    latency: float = 0.0,
) -> Iterator[Gateway]:
    state = Gateway(rpm, window, upstream_rpm, latency, upstream_window)
    server = _Server(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
