"""What every goal shares: options, results, tables, the machine, child processes, probes."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from core.client import choose_endpoint
from core.dataset import Record
from core.engine import Engine
from core.localserver import ServerConfig
from core.options import bundled_datasets_dir

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "FANOUT-BENCH-RESULT "
"""A child process prints its result as one line: this prefix, then JSON."""


# -- options and results ------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    quick: bool = False
    """The smoke version: smaller sizes, one repetition."""
    repeat: int = 3
    """Repetitions of each measurement; medians are reported."""
    progress: bool = True
    """Progress lines on stderr."""


@dataclass(frozen=True)
class Verdict:
    """One line of the summary table."""

    goal: str
    target: str
    measured: str
    ratio: str
    met: bool | None
    """None: measured but not judged (e.g. the run did not complete)."""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "target": self.target,
            "measured": self.measured,
            "ratio": self.ratio,
            "met": self.met,
            "note": self.note,
        }


@dataclass
class GoalResult:
    name: str
    title: str
    raw: dict[str, Any]
    """Every number measured, JSON-ready."""
    text: str
    """The goal's tables, for people."""
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0
    """How long the goal took to measure."""


class BenchError(Exception):
    """A benchmark could not be carried out (a child failed, a server did not start)."""


# -- numbers and tables ---------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(numerator: float, denominator: float) -> float:
    if denominator == 0 or math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    return numerator / denominator


def fmt_rate(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f}/s"


def fmt_s(value: float, digits: int = 3) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f} s"


def fmt_ms(value: float, digits: int = 1) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f} ms"


def fmt_x(value: float, digits: int = 2) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}×"


def fmt_runs(values: Sequence[float], unit: str = "", digits: int = 2) -> str:
    """The raw repetitions, e.g. ``[1.23, 1.31, 1.27]``."""
    return "[" + ", ".join(f"{v:.{digits}f}{unit}" for v in values) + "]"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table; columns whose cells look numeric are right-aligned."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_looks_numeric(row[i]) for row in cells[1:]) and len(cells) > 1
        for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _looks_numeric(cell: str) -> bool:
    stripped = cell.replace(",", "").replace("×", "").replace("/s", "").replace("%", "")
    stripped = stripped.replace(" ms", "").replace(" s", "").replace(" MB", "").strip()
    if stripped in ("—", ""):
        return True
    try:
        float(stripped)
    except ValueError:
        return False
    return True


# -- progress -----------------------------------------------------------------------

_START = time.perf_counter()


def progress(options: Options, message: str) -> None:
    if options.progress:
        print(f"[{time.perf_counter() - _START:7.1f} s] {message}", file=sys.stderr, flush=True)


# -- the machine and processes ------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    try:
        for text_line in Path("/proc/cpuinfo").read_text().splitlines():
            if text_line.startswith("model name"):
                cpu_model = text_line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    versions: dict[str, str | None] = {}
    for package in ("instructor", "openai", "httpx2", "aiohttp", "pydantic", "textual", "uvicorn"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "commit": _git_head(),
        "packages": versions,
    }


def _git_head() -> str | None:
    """The checked-out commit (read-only; the work tree may hold uncommitted edits)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def machine_line(info: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)
    load = info.get("load_average")
    load_text = f"; load avg {load[0]:.2f}" if load else ""
    return (
        f"machine: {info['cpus_usable']} usable CPUs of {info['cpu_count']} "
        f"({info['cpu_model'] or 'unknown CPU'}); {info['implementation']} {info['python']} "
        f"on {info['platform']}; commit {info['commit'] or '?'}{load_text}\n"
        f"packages: {packages}"
    )


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (Linux /proc); NaN if unreadable."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB (10^6 bytes)."""
    try:
        for text_line in Path("/proc/self/status").read_text().splitlines():
            if text_line.startswith("VmHWM:"):
                return int(text_line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    # ru_maxrss is in kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def current_rss_mb() -> float:
    try:
        for text_line in Path("/proc/self/status").read_text().splitlines():
            if text_line.startswith("VmRSS:"):
                return int(text_line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return math.nan


def run_child(module: str, args: Sequence[str], *, timeout: float) -> dict[str, Any]:
    """Run ``python -m module args`` and return the JSON result line it prints.

    Measurements that must not share a process (peak memory, the dashboard's
    garbage-collector settings, a clean event loop) run this way.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{module} {' '.join(args)}: no result within {timeout:g} s") from exc
    for text_line in reversed(done.stdout.splitlines()):
        if text_line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(text_line[len(RESULT_PREFIX) :])
            return result
    tail = "\n".join(done.stderr.strip().splitlines()[-15:])
    raise BenchError(f"{module} {' '.join(args)} exited {done.returncode} with no result:\n{tail}")


def emit_child_result(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# -- the endpoint and the data ---------------------------------------------------------------


def local_engine(latency: float) -> Engine:
    """fanout's engine on its own simulator (started in a child process), fixed latency."""
    return Engine(choose_endpoint(local=True), server=ServerConfig(latency=latency, jitter=0.0))


async def close_instructor(client: Any) -> None:
    """Close the SDK client (and its connection pool) under an instructor client."""
    raw = getattr(client, "client", None)
    if raw is not None:
        await raw.close()


def generator() -> ModuleType:
    """``datasets/generate.py`` (deterministic people, with the expected answers)."""
    path = bundled_datasets_dir() / "generate.py"
    spec = importlib.util.spec_from_file_location("fanout_dataset_generate", path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def people(n: int) -> list[tuple[str, dict[str, Any]]]:
    """``n`` (text, expected Person) pairs from the bundled generator's seed."""
    gen = generator()
    examples: list[tuple[str, dict[str, Any]]] = gen.people(n, gen.PEOPLE_SEED)
    return examples


def records_of(texts: Sequence[str]) -> list[Record]:
    return [Record(index=i, id=str(i + 1), text=text) for i, text in enumerate(texts)]


def write_people_csv(path: Path, n: int) -> Path:
    """A CSV (``id,text``) of ``n`` generated people."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i, (text, _) in enumerate(people(n), start=1):
            writer.writerow([i, text])
    return path


PERSON_TOOLS_BODY: dict[str, Any] = {
    "model": "fanout-sim",
    "messages": [{"role": "user", "content": "My name is John and I am 20 years old"}],
    "tool_choice": {"type": "function", "function": {"name": "Person"}},
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "Person",
                "description": "Correctly extracted `Person` with all the required parameters",
                "parameters": {
                    "properties": {
                        "name": {"title": "Name", "type": "string"},
                        "age": {"title": "Age", "type": "integer"},
                    },
                    "required": ["age", "name"],
                    "type": "object",
                },
            },
        }
    ],
}
"""The body instructor sends in TOOLS mode for the article's ``Person``."""


def tools_body(text: str) -> bytes:
    body = dict(PERSON_TOOLS_BODY)
    body["messages"] = [{"role": "user", "content": text}]
    return json.dumps(body).encode()


# -- event-loop lag ------------------------------------------------------------------------


class LagProbe:
    """A task that sleeps ``interval`` in a loop and records how late it wakes up.

    Lateness is what any other callback on the loop (a key press, a timer, a
    response) waits on top of its own work.
    """

    def __init__(self, interval: float = 0.010) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        clock = time.perf_counter
        while True:
            due = clock() + self.interval
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, clock() - due))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def summary(self) -> dict[str, float]:
        ms = [lag * 1000 for lag in self.lags]
        return {
            "samples": float(len(ms)),
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "max_ms": max(ms) if ms else math.nan,
            "over_100ms": float(sum(1 for v in ms if v > 100)),
        }


def simulator_pid() -> int | None:
    """The pid of this process's child running the simulator (``core.localserver``)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = stat.rsplit(")", 1)[1].split()[1]
            if parent != me:
                continue
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if b"core.localserver" in cmdline:
            return int(entry.name)
    return None
