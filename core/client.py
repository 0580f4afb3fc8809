"""Build the instructor client for an endpoint: the local simulator, OpenAI, or any URL.

The connection pool is sized from the run's concurrency so that the pool,
not the strategy, is never what limits a run: the SDK's default pool keeps
only 100 connections alive and counts time spent waiting for a connection
against its timeout, which turns a large ``gather`` into spurious timeouts.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import weakref
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import httpx2 as httpx
import instructor
import openai
from openai._base_client import Platform, get_platform

from core.errors import ConfigError
from core.signals import Pacer, connected_hook, event_hooks

OPENAI_URL = "https://api.openai.com/v1"
LOCAL_MODEL = "fanout-sim"
OPENAI_MODEL = "gpt-4o-mini"
LOCAL_KEY = "sk-fanout-local"

MODES: dict[str, instructor.Mode] = {
    "tools": instructor.Mode.TOOLS,
    "json": instructor.Mode.JSON,
    "json_schema": instructor.Mode.JSON_SCHEMA,
    "md_json": instructor.Mode.MD_JSON,
}

EndpointKind = Literal["local", "openai", "url"]


@dataclass(frozen=True)
class Endpoint:
    """Where requests go. ``api_key`` is kept out of ``repr`` and never shown."""

    kind: EndpointKind
    base_url: str
    model: str
    api_key: str = field(repr=False, default=LOCAL_KEY)

    @property
    def label(self) -> str:
        if self.kind == "local":
            return f"local simulator {_host(self.base_url)}"
        if self.kind == "openai":
            return "OpenAI"
        return _host(self.base_url)

    @property
    def is_simulator(self) -> bool:
        return self.kind == "local"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.api_key,) if self.kind != "local" else ()


@dataclass(frozen=True)
class EndpointChoice:
    """What the user asked for, before any local server is started."""

    kind: EndpointKind
    base_url: str | None
    model: str
    api_key: str = field(repr=False, default=LOCAL_KEY)

    def with_url(self, base_url: str) -> Endpoint:
        return Endpoint(self.kind, base_url, self.model, self.api_key)


def choose_endpoint(
    base_url: str | None = None,
    model: str | None = None,
    *,
    local: bool = False,
    env: dict[str, str] | None = None,
) -> EndpointChoice:
    """Decide the endpoint from the options and the environment.

    - ``--base-url local`` (or ``local=True``), or no URL and no
      ``OPENAI_API_KEY``: the built-in simulator, started on a free port.
    - no URL with ``OPENAI_API_KEY`` set: OpenAI.
    - a URL: that server, with ``OPENAI_API_KEY`` if set (many local servers
      need no key).
    """
    environ = os.environ if env is None else env
    key = environ.get("OPENAI_API_KEY", "").strip()
    if local or (base_url or "").strip().lower() == "local" or (not base_url and not key):
        return EndpointChoice("local", None, model or LOCAL_MODEL)
    if not base_url:
        return EndpointChoice("openai", OPENAI_URL, model or OPENAI_MODEL, key)
    url = validate_base_url(base_url)
    kind: EndpointKind = "openai" if url.rstrip("/") == OPENAI_URL else "url"
    if kind == "openai" and not key:
        raise ConfigError("OpenAI needs OPENAI_API_KEY set in the environment")
    return EndpointChoice(
        kind, url, model or (OPENAI_MODEL if kind == "openai" else LOCAL_MODEL), key or "not-needed"
    )


def validate_base_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"bad --base-url {url!r}: expected http(s)://host[:port]/v1, "
            "e.g. http://127.0.0.1:8000/v1"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"bad --base-url {url!r}: the port is not a number in 1-65535") from None
    return url.rstrip("/")


def parse_mode(mode: str) -> instructor.Mode:
    try:
        return MODES[mode.lower()]
    except KeyError:
        raise ConfigError(f"unknown --mode {mode!r}; choose one of: {', '.join(MODES)}") from None


def pool_limits(connections: int) -> httpx.Limits:
    """A pool that holds ``connections`` open at once and keeps them all alive."""
    connections = max(1, connections)
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle takes ~70 ms,
    which every run would otherwise pay (and a dashboard would freeze for)."""
    return httpx.create_ssl_context()


def build_openai(
    endpoint: Endpoint,
    *,
    connections: int,
    timeout: float = 60.0,
    pacer: Pacer | None = None,
    max_answer_bytes: int | None = None,
) -> openai.AsyncOpenAI:
    """The raw SDK client: no SDK retries (fanout retries itself), pool sized to the run.

    Uses the SDK's aiohttp transport: at high concurrency it costs far less
    CPU per request than httpx's pool (see benchmarks/). A run's client takes
    the run's ``pacer`` (its FairShare), which answers then wait on too.
    """
    http_client = openai.DefaultAioHttpClient(
        verify=tls_context(),
        limits=pool_limits(connections),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0), pool=None),
        event_hooks=event_hooks(pacer, max_answer_bytes),
    )
    traced = _trace_connections(http_client)
    client = openai.AsyncOpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        max_retries=0,
        http_client=http_client,
    )
    if traced:
        _TRACED.add(client)
    return client


_TRACED: weakref.WeakSet[openai.AsyncOpenAI] = weakref.WeakSet()


def traces_connections(client: openai.AsyncOpenAI) -> bool:
    """Whether the client reports when each request has its connection (see below)."""
    return client in _TRACED


def connection_trace() -> aiohttp.TraceConfig:
    """aiohttp's pool reports when a request has its connection (``core.signals``):
    an idle one reused at once, or one it waited for or had to set up."""
    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(connected_hook)
    trace.on_connection_create_end.append(connected_hook)
    return trace


def _trace_connections(http_client: httpx.AsyncClient) -> bool:
    """Build the aiohttp session under the SDK's transport with ``connection_trace``.

    The SDK's aiohttp transport makes its session on first use, from a
    factory when ``client`` is one: this factory builds the same connector
    (pool size, keep-alive, TLS context) plus the trace. A transport of
    another shape is left alone (its rows then count connecting as wire).
    """
    transport = getattr(http_client, "_transport", None)
    limits = getattr(transport, "limits", None)
    if transport is None or getattr(transport, "client", True) is not None or limits is None:
        return False
    ssl_context = getattr(transport, "ssl_context", True)

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=100 if limits.max_connections is None else limits.max_connections,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, trace_configs=[connection_trace()])

    transport.client = session
    return True


@functools.cache
def _platform() -> Platform:
    """The SDK's platform header value: 3-4 ms of blocking calls, once per process."""
    return get_platform()


async def prime_client(client: openai.AsyncOpenAI) -> None:
    """Give a new SDK client its platform header before a run's requests start.

    The SDK works that value out on a client's first request, in a worker
    thread, and every request that starts before the thread returns starts
    one too. A run that starts 200 requests at once therefore waits on 200
    threads, and then all 200 resume in one pass of the event loop: a 100 ms
    stall at the start of every run. Done here, it costs one thread per
    process and no stall.
    """
    if getattr(client, "_platform", False) is None:  # the SDK's lazily filled cache
        client._platform = await asyncio.to_thread(_platform)


def display_url(url: str) -> str:
    """A URL fit to print: no user:password, query or fragment (keys hide there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host or display_url(url)


async def close_client(client: openai.AsyncOpenAI) -> None:
    """Close the connection pool under an SDK client."""
    await client.close()
