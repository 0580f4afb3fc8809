"""Start the simulator in a child process and know its URL.

``LocalServer`` runs ``python -m core.localserver --parent-watch ...`` with a
pipe on the child's stdin that we never write to: when this process exits,
however it exits (even SIGKILL), the pipe closes and the child stops itself.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from core.errors import EndpointError
from core.localserver.config import API_KEY_ENV, ServerConfig
from core.localserver.serve import parse_announce

STARTUP_TIMEOUT = 20.0
STOP_GRACE = 3.0

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


class LocalServer:
    """The simulator in a child process.

    Use it as a context manager, sync or async::

        with LocalServer(ServerConfig(latency=0.1)) as server:
            client = AsyncOpenAI(base_url=server.base_url, api_key="sk-local")

        async with LocalServer() as server:   # starts without blocking the loop
            ...

    or call :meth:`start` / :meth:`stop`. It is also stopped when the
    interpreter exits.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        startup_timeout: float = STARTUP_TIMEOUT,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self.config = config if config is not None else ServerConfig()
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._base_url: str | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state
    @property
    def base_url(self) -> str:
        """The base URL for an OpenAI client, ending in ``/v1``."""
        if self._base_url is None:
            raise EndpointError("the local endpoint is not running; start it first")
        return self._base_url

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        """The child's command line."""
        return [sys.executable, "-m", "core.localserver", *self.config.to_argv(), "--parent-watch"]

    # -------------------------------------------------------------- lifecycle
    def start(self) -> str:
        """Start the child and wait for its announce line; returns :attr:`base_url`.

        Raises EndpointError (with the child's stderr) if it does not announce
        itself within ``startup_timeout`` seconds.
        """
        with self._lock:
            if self._process is not None:
                return self.base_url
            env = dict(os.environ)
            path = env.get("PYTHONPATH")
            env["PYTHONPATH"] = _PROJECT_ROOT + (os.pathsep + path if path else "")
            env["PYTHONUNBUFFERED"] = "1"
            env.pop(API_KEY_ENV, None)
            if self.config.api_key is not None:
                env[API_KEY_ENV] = self.config.api_key  # not on the command line: ps shows that
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
            try:
                process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=self._stderr,
                    env=env,
                    close_fds=True,
                )
            except OSError as exc:
                self._close_stderr()
                raise EndpointError(f"cannot start the local endpoint: {exc}") from exc
            self._process = process
            atexit.register(self.stop)
            lines: queue.Queue[bytes] = queue.Queue()
            threading.Thread(
                target=_drain,
                args=(process.stdout, lines),
                name="fanout-server-stdout",
                daemon=True,
            ).start()
            deadline = time.monotonic() + self.startup_timeout
            url = None
            while url is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    line = lines.get(timeout=min(remaining, 0.25))
                except queue.Empty:
                    if process.poll() is not None:
                        break
                    continue
                if not line:  # stdout closed: the child is exiting
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=5)
                    break
                url = parse_announce(line.decode("utf-8", "replace"))
            if url is None:
                detail = self._failure_detail()
                self._stop_locked()
                raise EndpointError(f"the local endpoint did not start: {detail}")
            self._base_url = url
            return url

    def stop(self) -> None:
        """Stop the child: terminate, then kill after ``stop_grace`` seconds."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        process = self._process
        self._process = None
        self._base_url = None
        atexit.unregister(self.stop)
        if process is not None:
            if process.poll() is None:
                try:
                    process.terminate()
                    process.wait(self.stop_grace)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                except OSError:
                    pass
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        self._close_stderr()

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _failure_detail(self) -> str:
        process = self._process
        status = process.poll() if process is not None else None
        text = ""
        if self._stderr is not None:
            try:
                self._stderr.flush()
                self._stderr.seek(0)
                text = self._stderr.read().decode("utf-8", "replace").strip()
            except (OSError, ValueError):
                text = ""
        if text:
            lines = text.splitlines()
            text = "\n".join(lines[-20:])
        if status is None:
            return f"no announce line within {self.startup_timeout:g} s" + (
                f"; stderr:\n{text}" if text else ""
            )
        return f"it exited with status {status}" + (f":\n{text}" if text else " (no output)")

    # ------------------------------------------------------ context managers
    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        state = self._base_url if self._base_url else "stopped"
        return f"LocalServer({state})"


def _drain(stream: IO[bytes] | None, lines: queue.Queue[bytes]) -> None:
    """Hand the first line to ``lines``; read the rest so the child never blocks on stdout."""
    if stream is None:
        lines.put(b"")
        return
    try:
        first = stream.readline()
        lines.put(first)
        while stream.read(65536):
            pass
    except (OSError, ValueError):
        lines.put(b"")
