"""The local endpoint: instructor end to end, rate limits, concurrency cap, faults, bad input, CLI.

Most tests run the ASGI app under uvicorn inside the test's own event loop
(fast to start, and the app's counters are visible); the end-to-end and
process tests start the real child process with ``LocalServer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import instructor
import openai
import pytest
import uvicorn
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from instructor.v2.core.errors import InstructorRetryException

from core.errors import ConfigError, EndpointError
from core.localserver import LocalServer, ServerConfig, create_app
from core.localserver.app import SimulatorApp, SlidingWindow, format_duration, number_words
from core.localserver.cli import build_parser, main
from core.localserver.serve import base_url, bind_socket, parse_announce, uvicorn_config
from core.models import Contact, Person, Review

ARTICLE = [
    ("My name is John and I am 20 years old", "John", 20),
    ("My name is Mary and I am 21 years old", "Mary", 21),
    ("My name is Bob and I am 22 years old", "Bob", 22),
    ("My name is Alice and I am 23 years old", "Alice", 23),
    ("My name is Jane and I am 24 years old", "Jane", 24),
    ("My name is Joe and I am 25 years old", "Joe", 25),
    ("My name is Jill and I am 26 years old", "Jill", 26),
]
MODES = [
    instructor.Mode.TOOLS,
    instructor.Mode.JSON,
    instructor.Mode.JSON_SCHEMA,
    instructor.Mode.MD_JSON,
]
USER = [{"role": "user", "content": "My name is John and I am 20 years old"}]


@contextlib.asynccontextmanager
async def running(config: ServerConfig) -> AsyncIterator[tuple[str, SimulatorApp]]:
    """The app under uvicorn on a free loopback port, in this event loop."""
    app = create_app(config)
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(app))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield base_url("127.0.0.1", sock.getsockname()[1]), app
    finally:
        server.should_exit = True
        await task
        sock.close()


async def call(
    app: SimulatorApp, method: str, path: str, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request straight through the ASGI interface (no sockets)."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    await app(scope, receive, send)
    start, body_message = sent
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, body_message["body"]


def person_tools_body(text: str = USER[0]["content"], **extra: Any) -> bytes:
    schema = Person.model_json_schema()
    return json.dumps(
        {
            "model": "fanout-sim",
            "messages": [{"role": "user", "content": text}],
            "tools": [{"type": "function", "function": {"name": "Person", "parameters": schema}}],
            "tool_choice": {"type": "function", "function": {"name": "Person"}},
            **extra,
        }
    ).encode()


def client(url: str, mode: instructor.Mode = instructor.Mode.TOOLS, **kw: Any) -> Any:
    raw = openai.AsyncOpenAI(
        base_url=url, api_key="sk-local", max_retries=kw.pop("max_retries", 0), **kw
    )
    return instructor.from_openai(raw, mode=mode)


# ---------------------------------------------------------------------------
# End to end with the real child process and the real instructor stack
# ---------------------------------------------------------------------------


async def test_instructor_gets_the_article_right_in_every_mode() -> None:
    async with LocalServer(ServerConfig(latency=0)) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
        for mode in MODES:
            extractor = client(server.base_url, mode)
            people = await asyncio.gather(
                *(
                    extractor.chat.completions.create(
                        model="fanout-sim",
                        response_model=Person,
                        messages=[{"role": "user", "content": text}],
                        max_retries=1,
                    )
                    for text, _, _ in ARTICLE
                )
            )
            assert [(p.name, p.age) for p in people] == [(n, a) for _, n, a in ARTICLE], mode
            contact, completion = await extractor.chat.completions.create_with_completion(
                model="my-model",
                response_model=Contact,
                messages=[
                    {"role": "user", "content": "Hi, I'm Wei Chen from Globex. wei@globex.com"}
                ],
            )
            assert (contact.name, contact.company, contact.email) == (
                "Wei Chen",
                "Globex",
                "wei@globex.com",
            )
            assert completion.model == "my-model"
            assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
            assert completion.usage.total_tokens == (
                completion.usage.prompt_tokens + completion.usage.completion_tokens
            )
            review = await extractor.chat.completions.create(
                model="fanout-sim",
                response_model=Review,
                messages=[{"role": "user", "content": "The Zephyr X2 is great. 5/5"}],
            )
            assert (review.product, review.rating, review.sentiment) == ("Zephyr X2", 5, "positive")
    assert not server.running


def test_local_server_sync_stop_and_parent_watch() -> None:
    server = LocalServer(ServerConfig(latency=0))
    with server:
        models = httpx.get(server.base_url + "/models").json()
        assert "fanout-sim" in [m["id"] for m in models["data"]]
        assert httpx.get(server.base_url.removesuffix("/v1") + "/health").json()["simulator"]
    assert not server.running
    with pytest.raises(EndpointError):
        _ = server.base_url
    # a child whose parent goes away (its stdin pipe closes) exits by itself
    server.start()
    process = server._process
    assert process is not None and process.stdin is not None
    process.stdin.close()
    process.wait(timeout=10)
    server.stop()


def test_local_server_reports_a_child_that_cannot_start() -> None:
    with contextlib.closing(bind_socket("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = LocalServer(ServerConfig(port=port), startup_timeout=15)
        with pytest.raises(EndpointError, match="(?s)did not start.*cannot listen"):
            server.start()
    assert not server.running


# ---------------------------------------------------------------------------
# Responses, headers, streaming
# ---------------------------------------------------------------------------


async def test_completion_shape_and_headers() -> None:
    app = create_app(ServerConfig(latency=0))
    status, headers, body = await call(app, "POST", "/v1/chat/completions", person_tools_body())
    assert status == 200
    doc = json.loads(body)
    assert doc["object"] == "chat.completion" and doc["model"] == "fanout-sim"
    assert doc["id"] and isinstance(doc["created"], int)
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call_ = choice["message"]["tool_calls"][0]
    assert call_["function"]["name"] == "Person"
    assert json.loads(call_["function"]["arguments"]) == {"name": "John", "age": 20}
    assert (
        doc["usage"]["total_tokens"]
        == doc["usage"]["prompt_tokens"] + doc["usage"]["completion_tokens"]
    )
    for name in ("x-request-id", "x-fanout-latency-ms", "openai-processing-ms"):
        assert name in headers
    assert "x-ratelimit-limit-requests" not in headers  # no limit configured

    # plain chat: no schema, a sensible echo
    plain = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).encode()
    status, _, body = await call(app, "POST", "/v1/chat/completions", plain)
    assert status == 200
    assert "hello" in json.loads(body)["choices"][0]["message"]["content"]


async def test_latency_is_simulated_and_reported() -> None:
    app = create_app(ServerConfig(latency=0.05, jitter=0))
    started = time.perf_counter()
    status, headers, _ = await call(app, "POST", "/v1/chat/completions", person_tools_body())
    assert status == 200 and time.perf_counter() - started >= 0.045
    assert headers["x-fanout-latency-ms"] == "50"


async def test_latency_counts_from_arrival_for_every_request_of_a_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A burst of 20 arrives at once; the simulator's one core then spends 10 ms
    on each (a clock advanced by ``_plan``). Every answer is still due at
    arrival + L, as from a many-core API: the simulator's own queue adds nothing."""
    app = create_app(ServerConfig(latency=0.2, jitter=0))
    now = [0.0]
    app.clock = lambda: now[0]
    plan = app._plan

    def busy_plan(raw: bytes) -> Any:
        now[0] += 0.005
        return plan(raw)

    monkeypatch.setattr(app, "_plan", busy_plan)
    due: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        if delay > 0:
            due.append(now[0] + delay)  # when this request's answer goes out
        await real_sleep(0)
        return result

    monkeypatch.setattr(asyncio, "sleep", sleep)
    try:
        answers = await asyncio.gather(
            *(call(app, "POST", "/v1/chat/completions", person_tools_body()) for _ in range(20))
        )
    finally:
        monkeypatch.setattr(asyncio, "sleep", real_sleep)
    assert [status for status, _, _ in answers] == [200] * 20
    assert all(headers["x-fanout-latency-ms"] == "200" for _, headers, _ in answers)
    assert due == pytest.approx([0.2] * 20)


async def test_streaming_tool_call_reassembles() -> None:
    async with running(ServerConfig(latency=0)) as (url, _):
        raw = openai.AsyncOpenAI(base_url=url, api_key="sk-local", max_retries=0)
        stream = await raw.chat.completions.create(
            model="fanout-sim",
            messages=USER,
            tools=[
                {
                    "type": "function",
                    "function": {"name": "Person", "parameters": Person.model_json_schema()},
                }
            ],
            tool_choice={"type": "function", "function": {"name": "Person"}},
            stream=True,
            stream_options={"include_usage": True},
        )
        arguments = ""
        usage = None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                for tool_call in choice.delta.tool_calls or []:
                    arguments += tool_call.function.arguments or ""
        assert json.loads(arguments) == {"name": "John", "age": 20}
        assert usage is not None and usage.completion_tokens > 0
        await raw.close()


# ---------------------------------------------------------------------------
# Rate limits
# ---------------------------------------------------------------------------


async def test_rpm_sliding_window_429_headers_and_retry_after() -> None:
    config = ServerConfig(latency=0, rpm=240, rate_window=0.5)  # 2 requests per 0.5 s window
    async with running(config) as (url, app), httpx.AsyncClient() as http:
        answers = [
            await http.post(url + "/chat/completions", content=person_tools_body())
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 429]
        first, second, refused = answers
        assert first.headers["x-ratelimit-limit-requests"] == "240"  # per minute, like OpenAI
        assert first.headers["x-fanout-rate-window-seconds"] == "0.5"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert second.headers["x-ratelimit-remaining-requests"] == "0"
        assert first.headers["x-ratelimit-reset-requests"].endswith("s")
        error = refused.json()["error"]
        assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
        wait_ms = int(refused.headers["retry-after-ms"])
        assert 0 < wait_ms <= 500
        assert refused.headers["retry-after"] == str(math.ceil(wait_ms / 1000))
        assert app.requests is not None and app.requests.used == 2  # the 429 consumed nothing

        await asyncio.sleep(wait_ms / 1000)
        again = await http.post(url + "/chat/completions", content=person_tools_body())
        assert again.status_code == 200

        # a client that honours retry-after (the SDK's own retries) only sees successes
        await asyncio.sleep(0.5)
        app.counts["rate_limited"] = 0
        extractor = client(url, max_retries=5)
        people = [
            await extractor.chat.completions.create(
                model="fanout-sim", response_model=Person, messages=[{"role": "user", "content": t}]
            )
            for t, _, _ in ARTICLE[:4]
        ]
        assert [p.name for p in people] == ["John", "Mary", "Bob", "Alice"]
        assert app.counts["rate_limited"] >= 1  # it was refused, waited, and got through


async def test_tpm_limit_and_request_too_large() -> None:
    app = create_app(ServerConfig(latency=0, tpm=12_000, rate_window=1.0))  # 200 tokens per window
    status, headers, _ = await call(app, "POST", "/v1/chat/completions", person_tools_body())
    assert status == 200
    cost = 200 - int(headers["x-ratelimit-remaining-tokens"])
    assert headers["x-ratelimit-limit-tokens"] == "12000" and cost > 0
    statuses = [
        (await call(app, "POST", "/v1/chat/completions", person_tools_body()))[0] for _ in range(4)
    ]
    assert statuses.count(200) == 200 // cost - 1 and statuses[-1] == 429
    status, headers, body = await call(app, "POST", "/v1/chat/completions", person_tools_body())
    assert status == 429 and json.loads(body)["error"]["type"] == "tokens"
    assert int(headers["retry-after"]) >= 1
    huge = person_tools_body("word " * 2000)
    status, _, body = await call(app, "POST", "/v1/chat/completions", huge)
    assert status == 429 and "too large" in json.loads(body)["error"]["message"]


@settings(max_examples=60, deadline=None)
@example(gaps=[0.10245566357009316, 0.5, 0.5], costs=[1] * 60, allowance=1)  # a float edge
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=0.6), min_size=1, max_size=60),
    costs=st.lists(st.integers(min_value=1, max_value=5), min_size=60, max_size=60),
    allowance=st.integers(min_value=1, max_value=8),
)
def test_sliding_window_is_exact(gaps: list[float], costs: list[int], allowance: int) -> None:
    """Admitted work never exceeds the allowance in any window; refusals happen only when full."""
    window = SlidingWindow(allowance, 1.0)
    admitted: list[tuple[float, int]] = []
    now = 0.0
    for gap, cost in zip(gaps, costs, strict=False):
        now += gap
        in_window = sum(c for t, c in admitted if t > now - 1.0)
        wait = window.wait(now, cost)
        if wait == 0:
            assert in_window + cost <= allowance
            window.consume(now, cost)
            admitted.append((now, cost))
        else:
            assert in_window + cost > allowance
            if cost <= allowance:  # after waiting, it fits
                assert copy.deepcopy(window).wait(now + wait, cost) == 0


def test_format_duration() -> None:
    assert format_duration(0) == "0s"
    assert format_duration(0.12) == "120ms"
    assert format_duration(1) == "1s"
    assert format_duration(1.5) == "1.5s"
    assert format_duration(360) == "6m0s"
    assert format_duration(3725) == "1h2m5s"


# ---------------------------------------------------------------------------
# Concurrency cap
# ---------------------------------------------------------------------------


async def test_max_concurrency_answers_429() -> None:
    app = create_app(ServerConfig(latency=0.2, jitter=0, max_concurrency=2))
    results = await asyncio.gather(
        *(call(app, "POST", "/v1/chat/completions", person_tools_body()) for _ in range(4))
    )
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200, 200, 429, 429]
    refused = next(r for r in results if r[0] == 429)
    assert refused[1]["retry-after"] == "1"
    assert json.loads(refused[2])["error"]["type"] == "concurrency"
    assert app.in_flight == 0


async def test_health_reports_the_most_requests_seen_at_once_refused_ones_too() -> None:
    app = create_app(ServerConfig(latency=0.2, jitter=0, max_concurrency=2))
    await asyncio.gather(
        *(call(app, "POST", "/v1/chat/completions", person_tools_body()) for _ in range(3))
    )
    await call(app, "POST", "/v1/chat/completions", person_tools_body())  # alone: no new peak
    status, _, body = await call(app, "GET", "/health")
    health = json.loads(body)
    assert status == 200
    assert health["max_open_requests"] == 3
    assert health["open_requests"] == 0


# ---------------------------------------------------------------------------
# Faults at rate 1.0
# ---------------------------------------------------------------------------


async def test_error_fault() -> None:
    app = create_app(ServerConfig(latency=0, error_rate=1.0, seed=3))
    for _ in range(5):
        status, headers, body = await call(app, "POST", "/v1/chat/completions", person_tools_body())
        assert status in (500, 503)
        assert headers["x-fanout-fault"] == "error"
        assert json.loads(body)["error"]["type"] == "server_error"


async def test_timeout_fault_hangs_then_504_and_ends_on_disconnect() -> None:
    app = create_app(ServerConfig(latency=0, timeout_rate=1.0, timeout_seconds=0.2))
    started = time.perf_counter()
    status, _, body = await call(app, "POST", "/v1/chat/completions", person_tools_body())
    assert status == 504 and time.perf_counter() - started >= 0.19
    assert json.loads(body)["error"]["type"] == "timeout"
    async with running(ServerConfig(latency=0, timeout_rate=1.0, timeout_seconds=30)) as (url, app):
        raw = openai.AsyncOpenAI(base_url=url, api_key="sk-local", max_retries=0, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            await raw.chat.completions.create(model="m", messages=USER)
        await raw.close()
        for _ in range(100):  # the server stops hanging once the client hangs up
            if app.in_flight == 0:
                break
            await asyncio.sleep(0.02)
        assert app.in_flight == 0


async def test_malformed_and_invalid_faults_make_instructor_fail_and_reask() -> None:
    async with running(ServerConfig(latency=0, malformed_rate=1.0)) as (url, app):
        status, _, body = await call(app, "POST", "/v1/chat/completions", person_tools_body())
        arguments = json.loads(body)["choices"][0]["message"]["tool_calls"][0]["function"][
            "arguments"
        ]
        with pytest.raises(ValueError):
            json.loads(arguments)
        with pytest.raises(InstructorRetryException):
            await client(url).chat.completions.create(
                model="m", response_model=Person, messages=USER, max_retries=2
            )
    async with running(ServerConfig(latency=0, invalid_rate=1.0)) as (url, app):
        for mode in MODES:
            with pytest.raises(InstructorRetryException):
                await client(url, mode).chat.completions.create(
                    model="m", response_model=Person, messages=USER, max_retries=2
                )
        assert app.counts["invalid"] == 3 * len(MODES)  # max_retries=2: 3 attempts each
        status, _, body = await call(app, "POST", "/v1/chat/completions", person_tools_body())
        arguments = json.loads(body)["choices"][0]["message"]["tool_calls"][0]["function"][
            "arguments"
        ]
        assert json.loads(arguments) == {"name": "John", "age": "twenty"}


async def test_repeated_texts_get_the_same_answer_from_the_cache_untouched_by_faults() -> None:
    """A bench sends the same rows again: the second answer comes from the cache (the
    filler is not called again) and is the same; a corrupted answer in between (the
    invalid fault builds a new value) leaves the cached one as it was."""
    app = create_app(ServerConfig(latency=0, seed=7))
    texts = ["My name is Zoe and I am 31 years old", "Ravi Shankar, age 47, joined in 2019"]

    async def arguments(text: str, **extra: Any) -> Any:
        status, _, body = await call(
            app, "POST", "/v1/chat/completions", person_tools_body(text, **extra)
        )
        assert status == 200
        tool = json.loads(body)["choices"][0]["message"]["tool_calls"][0]
        return json.loads(tool["function"]["arguments"])

    first = [await arguments(t) for t in texts]
    assert len(app._answers) == 2
    filled = app._answers.copy()
    app._faults = [(1.0, "invalid")]  # every answer corrupted, as --invalid-rate 1
    app._any_fault = True
    corrupted = await arguments(texts[0])
    assert corrupted != first[0] and isinstance(corrupted["age"], str)
    app._any_fault = False
    assert [await arguments(t) for t in texts] == first
    assert app._answers == filled  # none changed in place ...
    assert all(app._answers[key] is filled[key] for key in filled)  # ... nor filled again
    other = await arguments(texts[0], model="sim-fast")  # another model is another answer
    assert len(app._answers) == 3 and set(other) == set(first[0])
    schemas = {id(key[0]) for key in app._answers}
    assert len(schemas) == 1  # every answer shares one copy of the schema's text


def test_number_words() -> None:
    assert [number_words(n) for n in (0, 7, 20, 34, 90, 115)] == [
        "zero",
        "seven",
        "twenty",
        "thirty-four",
        "ninety",
        "one hundred and fifteen",
    ]


async def test_faults_follow_their_rates_with_a_seed() -> None:
    config = ServerConfig(latency=0, error_rate=0.25, invalid_rate=0.25, seed=42)
    faults = []
    for _ in range(2):
        app = create_app(config)
        seen = []
        for _ in range(200):
            _, headers, _ = await call(app, "POST", "/v1/chat/completions", person_tools_body())
            seen.append(headers.get("x-fanout-fault"))
        faults.append(seen)
    assert faults[0] == faults[1]  # same seed, same draws
    assert 25 < faults[0].count("error") < 75 and 25 < faults[0].count("invalid") < 75


# ---------------------------------------------------------------------------
# Bad input never crashes the server
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "could not parse"),
        (b"[1, 2]", "JSON object"),
        (b"{}", "messages"),
        (b'{"messages": "hi"}', "messages"),
        (b'{"messages": []}', "messages"),
        (b'{"messages": [1]}', "messages[0]"),
        (b'{"messages": [{"role": "user", "content": 5}]}', "content"),
        (b'{"model": 3, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"messages": [{"role": "user", "content": "x"}], "tools": {}}', "tools"),
        (b'{"messages": [{"role": "user", "content": "x"}], "tools": [{"function": 1}]}', "tool"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "response_format": "json"}',
            "response_format",
        ),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}',
            "response_format",
        ),
        (b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
        (b"\xff\xfe", "could not parse"),
    ],
)
async def test_bad_requests_get_400(body: bytes, fragment: str) -> None:
    app = create_app(ServerConfig(latency=0, rpm=60))
    status, headers, answer = await call(app, "POST", "/v1/chat/completions", body)
    assert status == 400
    error = json.loads(answer)["error"]
    assert error["type"] == "invalid_request_error" and fragment in error["message"] + str(
        error["param"]
    )
    assert "x-ratelimit-remaining-requests" in headers
    assert app.requests is not None and app.requests.used == 0


async def test_unknown_paths_methods_and_huge_bodies() -> None:
    app = create_app(ServerConfig(latency=0))
    assert (await call(app, "GET", "/v1/nope"))[0] == 404
    assert (
        json.loads((await call(app, "POST", "/v1/embeddings", b"{}"))[2])["error"]["code"]
        == "unknown_url"
    )
    assert (await call(app, "GET", "/v1/chat/completions"))[0] == 405
    assert (await call(app, "GET", "/v1/models/anything"))[0] == 200
    assert (await call(app, "POST", "/v1/chat/completions", b"x" * (9 * 1024 * 1024)))[0] == 413
    assert (await call(app, "GET", "/health"))[0] == 200


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "x"])},
    optional={"content": st.one_of(st.text(max_size=80), _json)},
)
_request = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.text(max_size=10), _json),
        "messages": st.one_of(st.lists(_message, max_size=3), _json),
        "tools": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.just("function")},
                    optional={
                        "function": st.fixed_dictionaries(
                            {"name": st.text(max_size=5)}, optional={"parameters": _json}
                        )
                    },
                ),
                max_size=2,
            ),
            _json,
        ),
        "tool_choice": _json,
        "response_format": st.one_of(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["json_object", "json_schema", "text"])},
                optional={"json_schema": _json},
            ),
            _json,
        ),
        "stream": st.one_of(st.booleans(), _json),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=_request)
async def test_fuzzed_requests_never_crash(request: dict[str, Any]) -> None:
    app = create_app(ServerConfig(latency=0))
    status, _, body = await call(app, "POST", "/v1/chat/completions", json.dumps(request).encode())
    assert status in (200, 400), body
    if not (status == 200 and request.get("stream") is True):
        assert isinstance(json.loads(body), dict)


# ---------------------------------------------------------------------------
# Configuration and the command line
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 1.5},
        {"latency": -1},
        {"jitter": 2},
        {"rpm": 0},
        {"rpm": 30, "rate_window": 1},
        {"max_concurrency": 0},
        {"port": 70000},
        {"error_rate": 0.6, "invalid_rate": 0.6},
        {"host": "bad host"},
        {"latency": float("nan")},
    ],
)
def test_config_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ServerConfig(**kwargs)


def test_config_to_argv_round_trips() -> None:
    config = ServerConfig(latency=0.1, rpm=600, error_rate=0.05, seed=7, model="m")
    args = build_parser().parse_args(config.to_argv())
    assert (args.latency, args.rpm, args.error_rate, args.seed, args.model) == (
        0.1,
        600,
        0.05,
        7,
        "m",
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--error-rate", "1.5"],
        ["--latency", "-2"],
        ["--latency", "soon"],
        ["--rpm", "0"],
        ["--port", "99999"],
        ["--rpm", "10", "--rate-window", "1"],
        ["--error-rate", "0.7", "--timeout-rate", "0.7"],
        ["--no-such-option"],
    ],
)
def test_cli_bad_values_exit_2_with_one_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--latency",
        "--rpm",
        "--tpm",
        "--max-concurrency",
        "--error-rate",
        "--parent-watch",
    ):
        assert option in out
    assert "default" in out


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_cli_announces_and_ctrl_c_stops_cleanly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "core.localserver", "--port", "0", "--latency", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        url = parse_announce(line)
        assert url is not None, line
        assert line.startswith("fanout local endpoint listening on http://127.0.0.1:")
        assert httpx.get(url.removesuffix("/v1") + "/health").status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert b"Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
