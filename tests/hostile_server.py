"""A raw-socket HTTP server that misbehaves on purpose, for the reliability tests.

It is not the simulator: it answers every request in one chosen way, at the
byte level, on a loopback port, in a thread of its own. Behaviours:

- ``drip``: a valid completion, one byte every ``delay`` seconds;
- ``broken_chunked``: ``Transfer-Encoding: chunked`` with a chunk that never ends;
- ``close_before_headers``: reads the request and closes the connection;
- ``huge``: a 200 whose body is ``size`` bytes of JSON-ish junk;
- ``echo_auth``: a 500 whose error message quotes the request's Authorization
  header near the 240-character message limit;
- ``escapes``: a 500 whose message holds terminal escape sequences;
- ``html``: a 200 with an HTML page;
- ``empty_choices`` / ``null_body``: a 200 with ``choices: []`` / ``null``;
- ``long_retry_after``: a 429 asking to wait ``delay`` seconds;
- ``huge_chunked``: the same without a length, in 1 MB chunks;
- ``echo_key_in_answer``: a valid answer whose ``name`` is the Authorization header;
- ``ok``: a valid completion for ``Person``;
- ``bare_429``: LiteLLM's own limit: within every ``delay``-second window (fixed
  windows from the first request) the first ``size`` requests get a valid completion
  and the rest a 429 with no retry-after and no ``x-ratelimit-*`` header;
- ``quota``: OpenAI's ``insufficient_quota`` 429.

Every connection is answered once and closed. ``requests`` counts them, ``arrivals``
holds when each came (``time.monotonic()``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

PERSON = {"name": "Ann", "age": 30}


def completion(arguments: dict[str, object] | None = None) -> bytes:
    body = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 0,
        "model": "hostile",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "Person",
                                "arguments": json.dumps(arguments or PERSON),
                            },
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return json.dumps(body).encode()


def _response(
    status: str, body: bytes, content_type: str = "application/json", **extra: str
) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    head += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    head += ["Connection: close", "", ""]
    return "\r\n".join(head).encode() + body


def _header(head: str, name: str) -> str:
    """A request header's value ('' when absent)."""
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return ""


class HostileServer:
    def __init__(self, behaviour: str, *, delay: float = 0.25, size: int = 0) -> None:
        self.behaviour = behaviour
        self.delay = delay
        self.size = size
        self.requests = 0
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"

    def start(self) -> HostileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with suppress(OSError):
            self._sock.close()
        self._thread.join(timeout=2)

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read_request(self, conn: socket.socket) -> tuple[str, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return "", b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head.decode("latin-1"), body

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                head, _ = self._read_request(conn)
                if not head:
                    return
                with self._lock:
                    self.requests += 1
                    self.arrivals.append(time.monotonic())
                self._answer(conn, head)
            except OSError:
                return

    def _answer(self, conn: socket.socket, head: str) -> None:
        kind = self.behaviour
        if kind == "ok":
            conn.sendall(_response("200 OK", completion()))
        elif kind == "drip":
            payload = _response("200 OK", completion())
            split = payload.index(b"\r\n\r\n") + 4
            conn.sendall(payload[:split])
            for byte in payload[split:]:
                if self._stop.wait(self.delay):
                    return
                conn.sendall(bytes([byte]))
        elif kind == "broken_chunked":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n400\r\n" + completion()[:50]
            )
            self._stop.wait(60)
        elif kind == "close_before_headers":
            return
        elif kind == "huge":
            block = b'{"junk": "' + b"x" * 1_000_000 + b'"}'
            total = 0
            conn.sendall(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {self.size}\r\n\r\n".encode()
            )
            while total < self.size:
                piece = block[: self.size - total]
                conn.sendall(piece)
                total += len(piece)
        elif kind == "huge_chunked":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            piece = b"x" * 1_000_000
            for _ in range(self.size // len(piece) + 1):
                conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        elif kind == "echo_key_in_answer":
            auth = _header(head, "authorization")
            conn.sendall(_response("200 OK", completion({"name": auth, "age": 30})))
        elif kind == "echo_auth":
            auth = _header(head, "authorization")
            message = "x" * (232 - len("Incorrect header: ")) + f" Incorrect header: {auth} !"
            body = json.dumps({"error": {"message": message, "type": "server_error"}}).encode()
            conn.sendall(_response("500 Internal Server Error", body))
        elif kind == "escapes":
            message = "bad \x1b[2J\x1b]0;pwned\x07 things"
            body = json.dumps({"error": {"message": message, "type": "server_error"}}).encode()
            conn.sendall(_response("500 Internal Server Error", body))
        elif kind == "html":
            page = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
            conn.sendall(_response("200 OK", page, content_type="text/html"))
        elif kind == "empty_choices":
            body = json.loads(completion())
            body["choices"] = []
            conn.sendall(_response("200 OK", json.dumps(body).encode()))
        elif kind == "null_body":
            conn.sendall(_response("200 OK", b"null"))
        elif kind == "bare_429":
            with self._lock:
                now = self.arrivals[-1]
                window_start = self.arrivals[0] + (now - self.arrivals[0]) // self.delay * (
                    self.delay
                )
                in_window = sum(1 for t in self.arrivals if t >= window_start)
            if in_window > self.size:
                body = json.dumps(
                    {
                        "error": {
                            "message": "No deployments available for selected model.",
                            "type": "rate_limit_error",
                            "code": "429",
                        }
                    }
                ).encode()
                conn.sendall(_response("429 Too Many Requests", body))
            else:
                conn.sendall(_response("200 OK", completion()))
        elif kind == "quota":
            error = {
                "message": "You exceeded your current quota, please check your plan and "
                "billing details.",
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_quota",
            }
            conn.sendall(_response("429 Too Many Requests", json.dumps({"error": error}).encode()))
        elif kind == "long_retry_after":
            body = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
            conn.sendall(_response("429 Too Many Requests", body, retry_after=str(self.delay)))
        else:  # pragma: no cover - a typo in a test
            raise ValueError(kind)


@contextmanager
def hostile(behaviour: str, **options: float | int) -> Iterator[HostileServer]:
    server = HostileServer(behaviour, **options).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
        time.sleep(0)
