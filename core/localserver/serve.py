"""Run the simulator with uvicorn on a socket of our own, and say where it listens.

We bind the socket ourselves (port 0 picks a free port) so that the address
is known before uvicorn starts, then print one line once uvicorn accepts
connections::

    fanout local endpoint listening on http://127.0.0.1:PORT/v1 (simulator)

A parent process reads that line to learn the URL (see ``process.py``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.localserver.app import ASGIApp, create_app
from core.localserver.config import ServerConfig, is_loopback

BACKLOG = 4096
GRACEFUL_SHUTDOWN_SECONDS = 2
PARENT_GONE_EXIT_SECONDS = 5.0
"""After the parent's pipe closes, exit for good even if shutdown hangs this long."""

if TYPE_CHECKING:
    import uvicorn

_ANNOUNCE_RE = re.compile(r"^fanout local endpoint listening on (http://\S+/v1) \(simulator\)$")


def base_url(host: str, port: int) -> str:
    """The OpenAI-style base URL (ending in ``/v1``) of a server on ``host:port``."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def announce_line(url: str) -> str:
    """The one line printed on stdout once the server listens."""
    return f"fanout local endpoint listening on {url} (simulator)"


def parse_announce(line: str) -> str | None:
    """The base URL in an announce line, or None if ``line`` is not one."""
    m = _ANNOUNCE_RE.match(line.strip())
    return m.group(1) if m else None


def bind_socket(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening TCP socket on ``(host, port)``; raises OSError if that is impossible."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def uvicorn_config(app: ASGIApp, *, backlog: int = BACKLOG) -> uvicorn.Config:
    """uvicorn settings for the simulator: uvloop and httptools when installed, quiet."""
    import uvicorn

    return uvicorn.Config(
        app,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,  # nothing proxies the simulator; the middleware cost ~5 % a request
        backlog=backlog,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def _print_announce(url: str) -> None:
    print(announce_line(url), flush=True)


def _watch_parent(on_gone: Callable[[], None]) -> None:
    """Call ``on_gone`` when stdin reaches end of file (the parent closed it or died)."""

    def watch() -> None:
        stream = sys.stdin.buffer if sys.stdin is not None else None
        try:
            while stream is not None and os.read(stream.fileno(), 65536):
                pass
        except (OSError, ValueError):
            pass
        on_gone()

    threading.Thread(target=watch, name="fanout-parent-watch", daemon=True).start()


def _force_exit_later(seconds: float) -> None:
    timer = threading.Timer(seconds, os._exit, args=(0,))
    timer.daemon = True
    timer.start()


def serve(
    config: ServerConfig,
    *,
    announce: Callable[[str], None] | None = None,
    parent_watch: bool = False,
    backlog: int = BACKLOG,
) -> None:
    """Serve ``config`` until interrupted (or, with ``parent_watch``, until stdin closes).

    ``announce`` receives the base URL once the server accepts connections;
    by default the announce line is printed on stdout. Raises OSError when the
    address cannot be bound. Ctrl-C shuts down gracefully and then raises
    KeyboardInterrupt, as uvicorn re-raises the signal it captured.
    """
    import uvicorn  # imported here: importing this package stays light

    sock = bind_socket(config.host, config.port, backlog)
    host, port = sock.getsockname()[:2]
    url = base_url(config.host if config.host not in ("0.0.0.0", "::") else host, port)
    if not is_loopback(config.host):
        print(
            f"warning: listening on {config.host}: the simulator is reachable from other machines",
            file=sys.stderr,
            flush=True,
        )
    uv_config = uvicorn_config(create_app(config), backlog=backlog)
    say = announce if announce is not None else _print_announce

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.started:
                return
            say(url)
            if parent_watch:
                running = asyncio.get_running_loop()

                def parent_gone() -> None:
                    running.call_soon_threadsafe(setattr, self, "should_exit", True)
                    _force_exit_later(PARENT_GONE_EXIT_SECONDS)

                _watch_parent(parent_gone)

    server = Server(uv_config)

    try:
        with asyncio.Runner(loop_factory=uv_config.get_loop_factory()) as runner:
            runner.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
