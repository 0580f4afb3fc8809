"""The simulator as a raw ASGI application (no framework, for speed).

Routes:

- ``POST /v1/chat/completions``: answers the shapes instructor sends (tool
  calls, ``json_object`` / ``json_schema`` response formats, a schema in a
  system message answered in a fenced block, plain chat), filling the schema
  from the first user message with :mod:`core.localserver.filler`;
  ``stream: true`` is answered as server-sent events.
- ``GET /v1/models`` and ``GET /v1/models/{id}``: any model name is served; the
  named profiles (``sim-fast``, ``sim-careful``: ``profiles.py``) are listed.
- ``GET /health``: liveness and counters.

With ``api_key`` set in the config, every route but ``/health`` (and
``/healthz``) first checks the ``Authorization`` header against
``Bearer <api_key>`` (one constant-time comparison of one header) and answers
401 with OpenAI's ``invalid_api_key`` error body when it does not match.

Order of work per completion: parse and validate (400), build the answer
(cheap; its tokens count for ``tpm``), concurrency cap (429 "concurrency"),
request and token windows (429 "requests" / "tokens"; refused requests
consume nothing), then one fault draw, the answer built, the latency sleep,
and the answer sent. The latency counts from the request's arrival: every
request of a burst notes its arrival before any is parsed, and sleeps only
what is left of L, so the simulator's single core parsing a burst in turn does
not add its queue to L (a many-core API would not either).

Rate-limit headers on every completion response (OpenAI's names and
meanings): ``x-ratelimit-limit-requests`` is ``rpm`` (per minute, whatever the
window), ``-remaining-`` what is left in the current window (the window allows
``rpm * window / 60``), ``-reset-`` the time until the limit is back to its
initial state, i.e. the window is empty (OpenAI's duration format:
``"120ms"``, ``"1s"``, ``"6m0s"``); the same three for tokens
when ``tpm`` is set, and ``x-fanout-rate-window-seconds`` (the window
length, so a client can turn the limits into rates). A 429 carries
``retry-after`` (whole seconds, rounded up) and ``retry-after-ms``: the time
until the refused request would fit. Faults are marked ``x-fanout-fault``.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from core.localserver.batches import BatchService
from core.localserver.config import ServerConfig
from core.localserver.filler import compiled, message_text, request_text, schema_in_text
from core.localserver.profiles import PROFILES, adjust, latency_factor
from core.tokens import estimate_messages_tokens, estimate_tokens

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 8 * 1024 * 1024
_SCHEMA_CACHE_LIMIT = 256
_ANSWER_CACHE_LIMIT = 20_000
"""Filled answers kept (~1 KB each): a bench or a resume sends the same rows again."""

_JSON = (b"content-type", b"application/json")
_OPEN_PATHS = frozenset({"/health", "/healthz"})
"""Routes answered without an API key, even when the simulator requires one."""
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")
_SERVER = (b"server", b"fanout-sim")


def format_duration(seconds: float) -> str:
    """OpenAI's rate-limit duration format: ``"120ms"``, ``"1s"``, ``"1.5s"``, ``"6m0s"``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    seconds = math.ceil(seconds * 1000) / 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


class SlidingWindow:
    """A sliding-window log: at most ``allowance`` units in any ``window`` seconds."""

    __slots__ = ("allowance", "log", "used", "window")

    def __init__(self, allowance: float, window: float) -> None:
        self.allowance = allowance
        self.window = window
        self.log: deque[tuple[float, int]] = deque()
        self.used = 0

    def prune(self, now: float) -> None:
        cutoff = now - self.window
        log = self.log
        while log and log[0][0] <= cutoff:
            self.used -= log.popleft()[1]

    def wait(self, now: float, cost: int) -> float:
        """Seconds until ``cost`` more units fit (0: now; inf: never, it exceeds the allowance)."""
        self.prune(now)
        if self.used + cost <= self.allowance + 1e-9:
            return 0.0
        if cost > self.allowance + 1e-9:
            return math.inf
        excess = self.used + cost - self.allowance
        freed = 0
        for stamp, units in self.log:
            freed += units
            if freed >= excess - 1e-9:
                return self._until_out(stamp, now)
        return self.window  # unreachable: the log holds ``used`` units

    def _until_out(self, stamp: float, now: float) -> float:
        """Seconds until the unit stamped ``stamp`` leaves the window, as ``prune`` will
        see it: floats can leave ``stamp + window - now`` a hair short (or 0 while the
        unit still counts), so the wait grows until it really is enough."""
        wait = max(0.0, stamp + self.window - now)
        step = 1e-9
        while (now + wait) - self.window < stamp:
            wait += step
            step *= 2
        return wait

    def consume(self, now: float, cost: int) -> None:
        self.log.append((now, cost))
        self.used += cost

    def remaining(self) -> int:
        return max(0, math.floor(self.allowance - self.used + 1e-9))

    def reset(self, now: float) -> float:
        return max(0.0, self.log[-1][0] + self.window - now) if self.log else 0.0


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a completion answers, before faults."""

    kind: str  # "tools" | "function" | "json" | "md_json" | "text"
    model: str
    name: str
    value: Any
    payload: str
    prompt_tokens: int
    completion_tokens: int
    stream: bool
    include_usage: bool
    guessed: tuple[str, ...] = ()
    """Fields no rule found (placeholders), sent as ``fanout.guessed`` in the answer."""


GUESSED_KEY = "fanout"
"""A top-level key of the simulator's completions: ``{"guessed": [field paths]}``, the
fields it filled with a placeholder rather than from the text (clients ignore unknown keys)."""


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _error_body(message: str, kind: str, code: str | None, param: str | None = None) -> bytes:
    error = {"message": message, "type": kind, "param": param, "code": code}
    return json.dumps({"error": error}).encode()


_UNAUTHORIZED_BODY = json.dumps(
    {
        "error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
).encode()
"""OpenAI's answer to a wrong or missing key; it never echoes the key it was sent."""


class SimulatorApp:
    """The ASGI callable; one instance per server process (it holds the limits' state)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.clock: Callable[[], float] = time.monotonic
        self.started = int(time.time())
        request_allowance = config.request_allowance
        token_allowance = config.token_allowance
        self.requests = (
            SlidingWindow(request_allowance, config.rate_window) if request_allowance else None
        )
        self.tokens = (
            SlidingWindow(token_allowance, config.rate_window) if token_allowance else None
        )
        self._window_text = f"{config.rate_window:g}".encode()
        self.in_flight = 0
        """Completions being served (past the limits), as ``max_concurrency`` counts them."""
        self.open_requests = 0
        """Completion requests being handled at all (refused ones too), and the peak:
        what the endpoint saw at once, to check a client's "in flight" against."""
        self.max_open_requests = 0
        self.counts: dict[str, int] = {
            "completions": 0,
            "rate_limited": 0,
            "concurrency_limited": 0,
            "bad_requests": 0,
            "error": 0,
            "timeout": 0,
            "malformed": 0,
            "invalid": 0,
            "unauthorized": 0,
        }
        self.models: dict[str, None] = {config.model: None, **dict.fromkeys(PROFILES)}
        self._ids = itertools.count(1)
        self._system_schemas: dict[str, tuple[dict[str, Any], str] | None] = {}
        self._schema_tokens: dict[str, int] = {}
        self._answers: dict[tuple[str, str, str], tuple[Any, tuple[str, ...], str]] = {}
        """(schema key, text, model) -> (value, guessed, JSON): the filler is a pure
        function of those (and the seed), and its rules cost more than the rest of a request."""
        self._keys: dict[str, str] = {}
        """Each schema key's one copy (a request brings its own): the answers share it."""
        thresholds = []
        total = 0.0
        for name in ("error", "timeout", "malformed", "invalid"):
            total += getattr(config, f"{name}_rate")
            thresholds.append((total, name))
        self._faults = [(t, n) for t, n in thresholds if t > 0]
        self._any_fault = total > 0
        self._authorization = (
            f"Bearer {config.api_key}".encode() if config.api_key is not None else None
        )
        self.batches = BatchService(self)
        """The files and batches endpoints (``core.localserver.batches``)."""

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                await self._http(scope, receive, send)
            except Exception as exc:  # never let one request take the server down
                await _try_send(
                    send,
                    500,
                    [_JSON, _SERVER],
                    _error_body(f"simulator error: {type(exc).__name__}", "server_error", None),
                )
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            message = await receive()
            if message.get("type") == "websocket.connect":
                await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "/")
        method: str = scope.get("method", "GET")
        if path.endswith("/") and len(path) > 1:
            path = path.rstrip("/")
        if (
            self._authorization is not None
            and path not in _OPEN_PATHS
            and not self._authorized(scope)
        ):
            self.counts["unauthorized"] += 1
            await _respond(send, 401, [_JSON, _SERVER], _UNAUTHORIZED_BODY)
            return
        if path in ("/v1/chat/completions", "/chat/completions"):
            if method != "POST":
                await _respond(
                    send,
                    405,
                    [_JSON, _SERVER, (b"allow", b"POST")],
                    _error_body(
                        f"{method} is not allowed on {path}; use POST",
                        "invalid_request_error",
                        "method_not_allowed",
                    ),
                )
                return
            self.open_requests += 1
            if self.open_requests > self.max_open_requests:
                self.max_open_requests = self.open_requests
            try:
                await self._completions(receive, send)
            finally:
                self.open_requests -= 1
            return
        if BatchService.serves(path):
            await self.batches.handle(scope, receive, send, path, method)
            return
        if method in ("GET", "HEAD"):
            if path in ("/health", "/healthz", "/v1/health"):
                await _respond(send, 200, [_JSON, _SERVER], self._health())
                return
            if path in ("/v1/models", "/models"):
                data = [self._model_card(m) for m in self.models]
                body = json.dumps({"object": "list", "data": data}).encode()
                await _respond(send, 200, [_JSON, _SERVER], body)
                return
            for prefix in ("/v1/models/", "/models/"):
                if path.startswith(prefix) and len(path) > len(prefix):
                    model = path[len(prefix) :]
                    body = json.dumps(self._model_card(model)).encode()
                    await _respond(send, 200, [_JSON, _SERVER], body)
                    return
        await _respond(
            send,
            404,
            [_JSON, _SERVER],
            _error_body(
                f"Unknown request URL: {method} {path}. The fanout simulator serves "
                "POST /v1/chat/completions, GET /v1/models and GET /health.",
                "invalid_request_error",
                "unknown_url",
            ),
        )

    def _authorized(self, scope: Scope) -> bool:
        expected = self._authorization
        assert expected is not None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                return hmac.compare_digest(value, expected)
        return False

    def _model_card(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": self.started, "owned_by": "fanout"}

    def _health(self) -> bytes:
        return json.dumps(
            {
                "status": "ok",
                "simulator": True,
                "model": self.config.model,
                "in_flight": self.in_flight,
                "open_requests": self.open_requests,
                "max_open_requests": self.max_open_requests,
                "counts": self.counts,
            }
        ).encode()

    # ----------------------------------------------------------- completions
    async def _completions(self, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        now = self.clock()
        if self.config.latency > 0:
            # ``now`` is when the request arrived: L counts from here. Yield once so
            # that every request of a burst notes its arrival before any is parsed;
            # otherwise one core parsing a burst of 100 in turn (~0.2 ms each) would
            # add its queue to L, which a many-core API does not.
            await asyncio.sleep(0)
        if body is _TOO_LARGE:
            self.counts["bad_requests"] += 1
            message = f"request body too large: over {MAX_BODY_BYTES} bytes"
            headers = [_JSON, _SERVER, *self._rate_headers(now)]
            body = _error_body(message, "invalid_request_error", "request_too_large")
            await _respond(send, 413, headers, body)
            return
        try:
            plan = self._plan(body)
        except _BadRequest as exc:
            self.counts["bad_requests"] += 1
            headers = [_JSON, _SERVER, *self._rate_headers(now)]
            await _respond(
                send,
                400,
                headers,
                _error_body(exc.message, "invalid_request_error", None, exc.param),
            )
            return

        limit = self.config.max_concurrency
        if limit is not None and self.in_flight >= limit:
            self.counts["concurrency_limited"] += 1
            message = (
                f"Too many concurrent requests: the simulator serves at most {limit} at once. "
                "Please retry after a brief wait."
            )
            await self._too_many(send, now, 1.0, message, "concurrency")
            return

        cost = plan.prompt_tokens + plan.completion_tokens
        if self.requests is not None or self.tokens is not None:
            wait_requests = self.requests.wait(now, 1) if self.requests is not None else 0.0
            wait_tokens = self.tokens.wait(now, cost) if self.tokens is not None else 0.0
            if wait_requests > 0 or wait_tokens > 0:
                self.counts["rate_limited"] += 1
                await self._rate_limited(send, now, plan, wait_requests, wait_tokens, cost)
                return
            if self.requests is not None:
                self.requests.consume(now, 1)
            if self.tokens is not None:
                self.tokens.consume(now, cost)

        self.counts["completions"] += 1
        self.in_flight += 1
        try:
            await self._serve(plan, now, receive, send)
        finally:
            self.in_flight -= 1

    def _draw_fault(self) -> str | None:
        if not self._any_fault:
            return None
        draw = self.rng.random()
        for threshold, name in self._faults:
            if draw < threshold:
                return name
        return None

    def _draw_latency(self) -> float:
        latency = self.config.latency
        jitter = self.config.jitter
        if latency <= 0:
            return 0.0
        if jitter <= 0:
            return latency
        return self.rng.uniform(latency * (1 - jitter), latency * (1 + jitter))

    async def _serve(self, plan: _Plan, now: float, receive: Receive, send: Send) -> None:
        fault = self._draw_fault()
        request_id = next(self._ids)
        if fault == "timeout":
            self.counts["timeout"] += 1
            seconds = self.config.timeout_seconds
            if await _hang(seconds, receive):
                return  # the client gave up first
            headers = self._timing_headers(request_id, seconds, fault)
            headers += [_JSON, _SERVER, *self._rate_headers(self.clock())]
            body = _error_body(
                f"Gateway timeout: the request hung for {seconds:g} s (simulated fault).",
                "timeout",
                "timeout",
            )
            await _respond(send, 504, headers, body)
            return
        latency = self._draw_latency() * latency_factor(plan.model)
        status, headers, body = self._answer(plan, fault, request_id, latency)
        if latency > 0:
            # the answer is built while it waits: L from arrival to the answer's send
            await asyncio.sleep(max(0.0, now + latency - self.clock()))
        headers += self._rate_headers(self.clock())
        await _respond(send, status, headers, body)

    def _answer(
        self, plan: _Plan, fault: str | None, request_id: int, latency: float
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers (all but the rate-limit ones) and body of a completion's answer."""
        headers = self._timing_headers(request_id, latency, fault)
        headers.append(_SERVER)
        if fault == "error":
            self.counts["error"] += 1
            status = self.rng.choice((500, 503))
            if status == 500:
                message = "The server had an error while processing your request (simulated fault)."
                body = _error_body(message, "server_error", None)
            else:
                message = (
                    "The engine is currently overloaded, please try again later (simulated fault)."
                )
                body = _error_body(message, "server_error", "overloaded")
            return status, [_JSON, *headers], body
        payload = plan.payload
        completion_tokens = plan.completion_tokens
        if fault == "malformed":
            self.counts["malformed"] += 1
            payload = _break_json(payload)
        elif fault == "invalid" and plan.kind != "text":
            self.counts["invalid"] += 1
            payload = json.dumps(_corrupt(plan.value), ensure_ascii=False)
        if plan.kind == "md_json" and fault in ("malformed", "invalid"):
            payload = f"```json\n{payload}\n```"
        if payload is not plan.payload:
            completion_tokens = estimate_tokens(payload)
        created = int(time.time())
        if plan.stream:
            body = _stream_body(plan, payload, request_id, created, completion_tokens)
            return 200, [_SSE, *headers], body
        body = self._completion_body(plan, payload, request_id, created, completion_tokens)
        return 200, [_JSON, *headers], body

    def _completion_body(
        self, plan: _Plan, payload: str, request_id: int, created: int, completion_tokens: int
    ) -> bytes:
        message: dict[str, Any]
        if plan.kind == "tools":
            message = {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": f"call_{request_id:012x}",
                        "type": "function",
                        "function": {"name": plan.name, "arguments": payload},
                    }
                ],
            }
            finish = "tool_calls"
        elif plan.kind == "function":
            message = {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "function_call": {"name": plan.name, "arguments": payload},
            }
            finish = "function_call"
        else:
            message = {"role": "assistant", "content": payload, "refusal": None}
            finish = "stop"
        document = {
            "id": f"chatcmpl-fanout{request_id:012x}",
            "object": "chat.completion",
            "created": created,
            "model": plan.model,
            "system_fingerprint": "fanout-sim",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": plan.prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": plan.prompt_tokens + completion_tokens,
            },
        }
        if plan.guessed:
            document[GUESSED_KEY] = {"guessed": list(plan.guessed)}
        return json.dumps(document, ensure_ascii=False).encode()

    # ----------------------------------------------------------------- plan
    def _plan(self, raw: bytes) -> _Plan:
        try:
            request = json.loads(raw)
        except (ValueError, RecursionError):
            raise _BadRequest(
                "We could not parse the JSON body of your request. The body must be a JSON object."
            ) from None
        if not isinstance(request, dict):
            raise _BadRequest("The request body must be a JSON object.")
        messages = request.get("messages")
        if messages is None:
            raise _BadRequest("Missing required parameter: 'messages'.", "messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("'messages' must be a non-empty array of messages.", "messages")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise _BadRequest(
                    f"Invalid 'messages[{index}]': expected an object with a 'role'.",
                    f"messages[{index}]",
                )
            content = message.get("content")
            if content is not None and not isinstance(content, str | list):
                raise _BadRequest(
                    f"Invalid 'messages[{index}].content': expected a string or an array.",
                    f"messages[{index}].content",
                )
        model = request.get("model", self.config.model)
        if not isinstance(model, str) or not model:
            raise _BadRequest("'model' must be a non-empty string.", "model")
        if model not in self.models and len(self.models) < 64:
            self.models[model] = None
        stream = request.get("stream", False)
        if not isinstance(stream, bool):
            raise _BadRequest("'stream' must be a boolean.", "stream")
        options = request.get("stream_options")
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))

        prompt_tokens = estimate_messages_tokens(messages)
        text = request_text(messages)
        kind, name, schema, key, in_messages = self._mode(request, messages)
        if schema is not None and key is not None and not in_messages:
            tokens = self._schema_tokens.get(key)
            if tokens is None:
                if len(self._schema_tokens) >= _SCHEMA_CACHE_LIMIT:
                    self._schema_tokens.clear()
                tokens = self._schema_tokens[key] = estimate_tokens(key)
            prompt_tokens += tokens
        guessed: tuple[str, ...] = ()
        if schema is None:
            value: Any = None
            payload = _plain_answer(text, messages)
            if kind == "json":
                value = {"text": text}
                payload = json.dumps(value, ensure_ascii=False)
        else:
            value, guessed, payload = self._filled(schema, key, text, model)
            if kind == "md_json":
                payload = f"```json\n{payload}\n```"
        return _Plan(
            kind=kind,
            model=model,
            name=name,
            value=value,
            payload=payload,
            prompt_tokens=prompt_tokens,
            completion_tokens=estimate_tokens(payload),
            stream=stream,
            include_usage=include_usage,
            guessed=guessed,
        )

    def _filled(
        self, schema: dict[str, Any], key: str | None, text: str, model: str
    ) -> tuple[Any, tuple[str, ...], str]:
        """The schema filled from ``text`` as ``model`` answers: value, guessed fields, JSON.

        Cached: the value is shared, so nothing may change it in place (``_corrupt``
        builds a new one)."""
        if key is not None:  # one copy of each schema's text for all its answers
            if len(self._keys) >= _SCHEMA_CACHE_LIMIT and key not in self._keys:
                self._keys.clear()
            key = self._keys.setdefault(key, key)
        cache_key = (key, text, model) if key is not None else None
        if cache_key is not None:
            hit = self._answers.get(cache_key)
            if hit is not None:
                return hit
        value, guessed = compiled(schema, key).fill_marked(text)
        value = adjust(model, value, schema, text, self.config.seed)  # named profiles
        answer = (value, tuple(guessed), json.dumps(value, ensure_ascii=False))
        if cache_key is not None:
            if len(self._answers) >= _ANSWER_CACHE_LIMIT:
                del self._answers[next(iter(self._answers))]  # the oldest
            self._answers[cache_key] = answer
        return answer

    def _mode(
        self, request: dict[str, Any], messages: list[Any]
    ) -> tuple[str, str, dict[str, Any] | None, str | None, bool]:
        """``(kind, function name, schema, schema key, schema is in the messages)``."""
        tools = request.get("tools")
        if tools is not None:
            if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
                raise _BadRequest("'tools' must be an array of tool objects.", "tools")
            if tools:
                function = _chosen_function(tools, request.get("tool_choice"), "tools")
                schema, key = _parameters(function, "tools")
                return "tools", function["name"], schema, key, False
        functions = request.get("functions")
        if isinstance(functions, list) and functions:
            if not all(isinstance(f, dict) for f in functions):
                raise _BadRequest("'functions' must be an array of objects.", "functions")
            call = request.get("function_call")
            wanted = call.get("name") if isinstance(call, dict) else None
            function = next((f for f in functions if f.get("name") == wanted), functions[0])
            if not isinstance(function.get("name"), str):
                raise _BadRequest("each function needs a 'name'.", "functions")
            schema, key = _parameters(function, "functions")
            return "function", function["name"], schema, key, False
        response_format = request.get("response_format")
        if response_format is not None:
            if not isinstance(response_format, dict):
                raise _BadRequest("'response_format' must be an object.", "response_format")
            kind = response_format.get("type")
            if kind == "json_schema":
                spec = response_format.get("json_schema")
                given = spec.get("schema") if isinstance(spec, dict) else None
                if not isinstance(given, dict):
                    raise _BadRequest(
                        "'response_format.json_schema.schema' must be a JSON schema object.",
                        "response_format",
                    )
                name = spec.get("name") if isinstance(spec, dict) else None
                key = json.dumps(given, separators=(",", ":"), ensure_ascii=False)
                return "json", name if isinstance(name, str) else "response", given, key, False
            if kind == "json_object":
                found = self._system_schema(messages)
                if found is None:
                    return "json", "", None, None, True
                return "json", "", found[0], found[1], True
            if kind not in (None, "text"):
                raise _BadRequest(
                    f"Invalid 'response_format.type' {kind!r}: "
                    "use text, json_object or json_schema.",
                    "response_format.type",
                )
        found = self._system_schema(messages)
        if found is not None:
            return "md_json", "", found[0], found[1], True
        return "text", "", None, None, True

    def _system_schema(self, messages: list[Any]) -> tuple[dict[str, Any], str] | None:
        """A JSON schema given in a system (or developer) message, cached by its text."""
        for message in messages:
            if message.get("role") not in ("system", "developer"):
                continue
            text = message_text(message.get("content"))
            if "{" not in text:
                continue
            if text in self._system_schemas:
                entry = self._system_schemas[text]
            else:
                schema = schema_in_text(text)
                entry = None
                if schema is not None:
                    entry = (schema, json.dumps(schema, separators=(",", ":"), ensure_ascii=False))
                if len(self._system_schemas) >= _SCHEMA_CACHE_LIMIT:
                    self._system_schemas.clear()
                self._system_schemas[text] = entry
            if entry is not None:
                return entry
        return None

    # ---------------------------------------------------------------- limits
    def _rate_headers(self, now: float) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        if self.requests is not None or self.tokens is not None:
            headers.append((b"x-fanout-rate-window-seconds", self._window_text))
        for window, limit, suffix in (
            (self.requests, self.config.rpm, b"requests"),
            (self.tokens, self.config.tpm, b"tokens"),
        ):
            if window is None:
                continue
            window.prune(now)
            headers += [
                (b"x-ratelimit-limit-" + suffix, str(limit).encode()),
                (b"x-ratelimit-remaining-" + suffix, str(window.remaining()).encode()),
                (b"x-ratelimit-reset-" + suffix, format_duration(window.reset(now)).encode()),
            ]
        return headers

    async def _rate_limited(
        self,
        send: Send,
        now: float,
        plan: _Plan,
        wait_requests: float,
        wait_tokens: float,
        cost: int,
    ) -> None:
        config = self.config
        if wait_requests >= wait_tokens and wait_requests > 0:
            assert self.requests is not None
            limit = config.rpm
            message = (
                f"Rate limit reached for {plan.model} (fanout simulator) on requests per min "
                f"(RPM): Limit {limit}, Used {self.requests.used}, Requested 1, over a "
                f"{config.rate_window:g} s window. Please try again in "
                f"{format_duration(wait_requests)}."
            )
            await self._too_many(send, now, wait_requests, message, "requests")
            return
        assert self.tokens is not None
        if math.isinf(wait_tokens):
            message = (
                f"Request too large for {plan.model} (fanout simulator) on tokens per min (TPM): "
                f"Limit {config.tpm}, Requested {cost} over a {config.rate_window:g} s window "
                f"that allows {math.floor(self.tokens.allowance)}."
            )
            await self._too_many(send, now, config.rate_window, message, "tokens")
            return
        message = (
            f"Rate limit reached for {plan.model} (fanout simulator) on tokens per min (TPM): "
            f"Limit {config.tpm}, Used {self.tokens.used}, Requested {cost}, over a "
            f"{config.rate_window:g} s window. Please try again in {format_duration(wait_tokens)}."
        )
        await self._too_many(send, now, wait_tokens, message, "tokens")

    async def _too_many(self, send: Send, now: float, wait: float, message: str, kind: str) -> None:
        wait = max(wait, 0.001)
        headers = [
            _JSON,
            _SERVER,
            (b"retry-after", str(max(1, math.ceil(wait))).encode()),
            (b"retry-after-ms", str(math.ceil(wait * 1000)).encode()),
            *self._rate_headers(now),
        ]
        await _respond(send, 429, headers, _error_body(message, kind, "rate_limit_exceeded"))

    def _timing_headers(
        self, request_id: int, seconds: float, fault: str | None
    ) -> list[tuple[bytes, bytes]]:
        millis = str(round(seconds * 1000)).encode()
        headers = [
            (b"x-request-id", f"req_fanout{request_id:012x}".encode()),
            (b"x-fanout-latency-ms", millis),
            (b"openai-processing-ms", millis),
        ]
        if fault is not None:
            headers.append((b"x-fanout-fault", fault.encode()))
        return headers


def create_app(config: ServerConfig | None = None) -> SimulatorApp:
    """The simulator's ASGI application for ``config`` (defaults: ``ServerConfig()``)."""
    return SimulatorApp(config if config is not None else ServerConfig())


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _chosen_function(tools: list[dict[str, Any]], choice: Any, param: str) -> dict[str, Any]:
    wanted = None
    if isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict):
            wanted = function.get("name")
    functions = [t.get("function") for t in tools]
    if not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in functions):
        raise _BadRequest("each tool needs a 'function' object with a 'name'.", param)
    for function in functions:
        assert isinstance(function, dict)
        if wanted is None or function["name"] == wanted:
            return function
    raise _BadRequest(
        f"'tool_choice' names {wanted!r}, which is not among the tools.", "tool_choice"
    )


def _parameters(function: dict[str, Any], param: str) -> tuple[dict[str, Any], str]:
    schema = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(schema, dict):
        raise _BadRequest(
            f"the parameters of {function['name']!r} must be a JSON schema object.", param
        )
    return schema, json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def _plain_answer(text: str, messages: list[Any]) -> str:
    if not text:
        for message in reversed(messages):
            text = message_text(message.get("content"))
            if text:
                break
    text = " ".join(text.split())
    if len(text) > 500:
        text = text[:500] + "..."
    return f"(fanout local simulator, not a language model) You said: {text}"


def _break_json(payload: str) -> str:
    """Cut a JSON text so that it no longer parses."""
    cut = payload[: max(1, len(payload) // 2)]
    try:
        json.loads(cut)
    except ValueError:
        return cut
    return cut + '{"'


_SMALL = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """``34`` -> ``"thirty-four"`` (0-999; "many" beyond)."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _SMALL[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _TENS[tens - 2] + (f"-{_SMALL[unit]}" if unit else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_SMALL[hundreds]} hundred" + (f" and {number_words(rest)}" if rest else "")
    return "many"


def _corrupt(value: Any) -> Any:
    """Well-formed JSON with the wrong types: numbers as words, booleans as text.

    When the value holds no number or boolean, strings become arrays of words
    (and a bare non-object value becomes a list), so validation still fails.
    """
    changed = False

    def numbers(v: Any) -> Any:
        nonlocal changed
        if isinstance(v, bool):
            changed = True
            return "yes" if v else "no"
        if isinstance(v, int):
            changed = True
            return number_words(v)
        if isinstance(v, float):
            changed = True
            return f"about {number_words(round(v))}"
        if isinstance(v, dict):
            return {k: numbers(x) for k, x in v.items()}
        if isinstance(v, list):
            return [numbers(x) for x in v]
        return v

    result = numbers(value)
    if changed:
        return result

    def strings(v: Any) -> Any:
        if isinstance(v, str):
            return v.split() or ["?"]
        if isinstance(v, dict):
            return {k: strings(x) for k, x in v.items()}
        if isinstance(v, list):
            return [strings(x) for x in v]
        return v

    result = strings(value)
    return result if isinstance(result, dict) else [result]


def _stream_body(
    plan: _Plan, payload: str, request_id: int, created: int, completion_tokens: int
) -> bytes:
    base = {
        "id": f"chatcmpl-fanout{request_id:012x}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": plan.model,
        "system_fingerprint": "fanout-sim",
    }
    step = max(16, len(payload) // 4)
    pieces = [payload[i : i + step] for i in range(0, len(payload), step)] or [""]
    deltas: list[dict[str, Any]]
    if plan.kind == "tools":
        call = {
            "index": 0,
            "id": f"call_{request_id:012x}",
            "type": "function",
            "function": {"name": plan.name, "arguments": ""},
        }
        deltas = [{"role": "assistant", "content": None, "tool_calls": [call]}]
        deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in pieces]
        finish = "tool_calls"
    elif plan.kind == "function":
        call = {"name": plan.name, "arguments": ""}
        deltas = [{"role": "assistant", "content": None, "function_call": call}]
        deltas += [{"function_call": {"arguments": p}} for p in pieces]
        finish = "function_call"
    else:
        deltas = [{"role": "assistant", "content": ""}]
        deltas += [{"content": p} for p in pieces]
        finish = "stop"
    choices: list[dict[str, Any]] = [
        {"index": 0, "delta": d, "logprobs": None, "finish_reason": None} for d in deltas
    ]
    choices.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish})
    lines = [json.dumps({**base, "choices": [c]}, ensure_ascii=False) for c in choices]
    if plan.include_usage:
        usage = {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": plan.prompt_tokens + completion_tokens,
        }
        lines.append(json.dumps({**base, "choices": [], "usage": usage}))
    lines.append("[DONE]")
    return "".join(f"data: {line}\n\n" for line in lines).encode()


_TOO_LARGE = b"<too large>"


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; ``_TOO_LARGE`` past the size limit; None on disconnect."""
    message = await receive()
    if message["type"] != "http.request":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= MAX_BODY_BYTES else _TOO_LARGE
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size <= MAX_BODY_BYTES else _TOO_LARGE


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _hang(seconds: float, receive: Receive) -> bool:
    """Wait ``seconds``; True if the client disconnected first."""
    waiter = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        done, _ = await asyncio.wait({waiter}, timeout=seconds)
        return bool(done)
    finally:
        waiter.cancel()


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _try_send(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    try:
        await _respond(send, status, headers, body)
    except Exception:  # the response had already started, or the client is gone
        return
