"""A replay server for the compatibility suite: the answer shapes real providers send.

Independent of the simulator and of ``hostile_server``: a stdlib ``http.server`` on a
loopback port, in a thread of its own. Every answer to ``/chat/completions`` follows
one named shape and is written for the mode the request is in (a tool call when the
request has ``tools``, JSON in ``content`` otherwise, fenced when it asked for
neither tools nor ``response_format``, i.e. MD_JSON). Every answer carries an
``x-request-id`` (``req-1``, ``req-2`` ...) and, unless the shape says otherwise,
``usage`` of 50 + 12 = 62 tokens.

Shapes: ``ok``, ``think`` (a ``<think>…</think>`` preface), ``fence`` (a ```json
fence in every mode), ``numeric_string`` (``"age": "30"``), ``length`` (cut JSON,
``finish_reason: length``), ``refusal``, ``content_filter``, ``text_not_tool`` (text
where a tool call was asked), ``not_json``, ``empty_choices``, ``error_body`` (a 200
whose body is an error, with usage), ``no_usage``, ``partial_usage``, ``extras``
(unknown fields, ``prompt_tokens_details``, ``system_fingerprint``),
``parallel_tools``, ``text_and_tool``, ``reject_json_schema`` (400 to
``response_format: json_schema``), ``llamacpp`` (500 "unsupported json_schema", as
llama-cpp-python), ``reject_tool_choice`` (400 to ``tool_choice``), ``slow_models``
(``/models`` answers after ``delay`` seconds), ``busy`` (503 to everything),
``reject_all`` (500 to every completion).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PERSON: dict[str, Any] = {"name": "Ann", "age": 30}
USAGE: dict[str, int] = {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}


@dataclass
class Replay:
    shape: str
    delay: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, body: dict[str, Any]) -> int:
        with self._lock:
            self.bodies.append(body)
            return len(self.bodies)


def _mode_of(body: dict[str, Any]) -> str:
    if "tools" in body:
        return "tools"
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        return str(response_format.get("type"))  # json_object / json_schema
    return "md_json"


def _completion(
    message: dict[str, Any], finish: str = "stop", usage: Any = USAGE, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-replay",
        "object": "chat.completion",
        "created": 0,
        "model": "replay",
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        **extra,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def _tool(arguments: str, name: str, call: str = "call_1") -> dict[str, Any]:
    return {"id": call, "type": "function", "function": {"name": name, "arguments": arguments}}


def answer(shape: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for one request in one shape."""
    mode = _mode_of(body)
    if shape == "busy":
        return 503, {"error": {"message": "server busy, try later", "type": "overloaded"}}
    if shape in ("reject_json_schema", "llamacpp") and mode == "json_schema":
        if shape == "llamacpp":
            return 500, {"error": {"message": "unsupported json_schema", "type": "server_error"}}
        return 400, {"error": {"message": "response_format json_schema is not supported"}}
    if shape == "reject_all":
        return 500, {"error": {"message": "internal error", "type": "server_error"}}
    if shape == "reject_tool_choice" and "tool_choice" in body:
        return 400, {"error": {"message": "tool_choice is not supported", "type": "invalid"}}
    name = body["tools"][0]["function"]["name"] if mode == "tools" else "Person"
    data = json.dumps(PERSON)
    if shape == "numeric_string":
        data = json.dumps({**PERSON, "age": str(PERSON["age"])})
    elif shape == "think":
        data = f"<think>The user wants a person. Ann, 30.</think>\n{data}"
    elif shape == "fence" or mode == "md_json":
        data = f"Here it is:\n```json\n{data}\n```"
    if shape == "length":
        cut = json.dumps(PERSON)[:9]
        if mode == "tools":
            return 200, _completion(_tool_message(cut, name), "length")
        return 200, _completion({"role": "assistant", "content": cut}, "length")
    if shape == "refusal":
        message = {"role": "assistant", "content": None, "refusal": "I cannot help with that."}
        return 200, _completion(message)
    if shape == "content_filter":
        return 200, _completion({"role": "assistant", "content": None}, "content_filter")
    if shape in ("text_not_tool", "not_json"):
        return 200, _completion({"role": "assistant", "content": "Ann is 30 years old."})
    if shape == "empty_choices":
        return 200, {**_completion({}), "choices": []}
    if shape == "error_body":
        return 200, {"error": {"message": "model overloaded mid-answer"}, "usage": USAGE}
    usage: Any = USAGE
    extra: dict[str, Any] = {}
    if shape == "no_usage":
        usage = None
    elif shape == "partial_usage":
        usage = {"prompt_tokens": 50}
    elif shape == "extras":
        usage = {
            **USAGE,
            "prompt_tokens_details": {"cached_tokens": 20, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 4},
        }
        extra = {"system_fingerprint": "fp_replay", "service_tier": "default", "x_vendor": [1]}
    if mode == "tools":
        message = _tool_message(data, name)
        if shape == "parallel_tools":
            other = json.dumps({"name": "Bob", "age": 41})
            message["tool_calls"].append(_tool(other, name, "call_2"))
        if shape == "text_and_tool":
            message["content"] = "Sure, calling the tool."
        return 200, _completion(message, "tool_calls", usage, **extra)
    return 200, _completion({"role": "assistant", "content": data}, "stop", usage, **extra)


def _tool_message(arguments: str, name: str) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [_tool(arguments, name)]}


def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, status: int, payload: dict[str, Any], request_id: str) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-request-id", request_id)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if replay.shape == "busy":
                self._send(503, {"error": {"message": "server busy"}}, "req-models")
                return
            if replay.shape == "slow_models":
                time.sleep(replay.delay)
            self._send(200, {"object": "list", "data": [{"id": "replay"}]}, "req-models")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length))
            number = replay.record(body)
            status, payload = answer(replay.shape, body)
            self._send(status, payload, f"req-{number}")

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the busy tests' timeouts) is no error here


@contextmanager
def replaying(shape: str, *, delay: float = 0.0) -> Iterator[Replay]:
    replay = Replay(shape, delay)
    server = _Server(("127.0.0.1", 0), _handler(replay))
    replay.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
