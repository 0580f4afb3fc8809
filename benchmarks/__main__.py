"""``python -m benchmarks [all|p1|p2|p3|p4|p5|article|profile|scale-out ...] [--quick] [--json]``.

Runs the chosen goals one after the other (never two at once: the machine is
small), prints each goal's tables as it finishes, then one summary table. With
``--json``, prints one JSON object with every raw number instead. Progress
goes to stderr. Exit status: 0 when every judged goal is met, 1 when one is
not (or a goal could not be measured), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks.common import (
    BenchError,
    GoalResult,
    Options,
    Verdict,
    machine_info,
    machine_line,
    progress,
    table,
)

GOALS: dict[str, tuple[str, str]] = {
    "p1": ("benchmarks.throughput", "P1 throughput"),
    "p2": ("benchmarks.fidelity", "P2 fidelity"),
    "p3": ("benchmarks.dashboard", "P3 dashboard overhead"),
    "p4": ("benchmarks.scale", "P4 scale"),
    "p5": ("benchmarks.endpoint", "P5 the endpoint"),
    "article": ("benchmarks.article", "the article's code"),
    "profile": ("benchmarks.profiling", "profile of the engine path"),
    "ratelimits": ("benchmarks.ratelimits", "rate limits in real time"),
    "herd": ("benchmarks.herd", "the release after a pause: herd vs paced"),
    "realmodel": ("benchmarks.realmodel", "the real model (llama.cpp + Gemma 3 270M)"),
    "scale-out": ("benchmarks.scaleout", "scale-out: worker processes and Ray actors"),
    "adaptive-workers": ("benchmarks.adaptiveworkers", "adaptive: one process vs --workers 2"),
}
ALL = ("p1", "p2", "p3", "p4", "p5", "article")
"""What ``all`` runs (``profile``, ``ratelimits``, ``herd``, ``realmodel``, ``scale-out`` and
``adaptive-workers`` are on demand)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="fanout's performance goals P1-P5 and the article's code, on loopback.",
    )
    parser.add_argument(
        "goals",
        nargs="*",
        default=["all"],
        metavar="GOAL",
        help=f"all (default), or any of: {', '.join(GOALS)}",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repetition")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        metavar="N",
        help="repetitions per measurement, medians reported (default: 3; --quick: 1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    chosen: list[str] = []
    for goal in args.goals:
        names = ALL if goal == "all" else (goal,)
        for name in names:
            if name not in GOALS:
                parser.error(f"unknown goal {name!r}; choose from all, {', '.join(GOALS)}")
            if name not in chosen:
                chosen.append(name)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.chosen = chosen
    return args


def run_goal(name: str, options: Options) -> GoalResult:
    module_name, title = GOALS[name]
    start = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        runner: Callable[[Options], GoalResult] = module.run
        result = runner(options)
    except (BenchError, Exception) as exc:  # one goal failing must not lose the others
        detail = "".join(traceback.format_exception_only(exc)).strip()
        if not isinstance(exc, BenchError):
            detail = traceback.format_exc()
        result = GoalResult(
            name,
            title,
            {"error": detail},
            f"could not measure: {detail}",
            [Verdict(title, "—", "error", "—", False, detail.splitlines()[-1][:80])],
        )
    result.seconds = time.perf_counter() - start
    return result


def summary_table(results: list[GoalResult]) -> str:
    rows = []
    for result in results:
        for v in result.verdicts:
            met = "yes" if v.met else ("NO" if v.met is False else "—")
            rows.append([v.goal, v.target, v.measured, v.ratio, met, v.note])
    return table(["goal", "target", "measured", "ratio", "met?", "note"], rows)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    options = Options(
        quick=args.quick,
        repeat=1 if args.quick else args.repeat,
        progress=not args.no_progress,
    )
    machine = machine_info()
    started = time.perf_counter()
    if not args.json:
        mode = "quick (smoke sizes, 1 repetition)" if options.quick else "full"
        print(f"fanout benchmarks: {', '.join(args.chosen)} — {mode}, {options.repeat} rep.")
        print(machine_line(machine))
        print(flush=True)
    results = []
    for name in args.chosen:
        progress(options, f"{name}: start")
        result = run_goal(name, options)
        results.append(result)
        progress(options, f"{name}: done in {result.seconds:.1f} s")
        if not args.json:
            print(f"== {result.title} ({result.seconds:.0f} s) ==")
            print(result.text)
            print(flush=True)
    total = time.perf_counter() - started
    verdicts = [v for r in results for v in r.verdicts]
    judged = [v for v in verdicts if v.met is not None]
    ok = all(v.met for v in judged)
    if args.json:
        payload = {
            "machine": machine,
            "options": {"goals": args.chosen, "quick": options.quick, "repeat": options.repeat},
            "goals": {
                r.name: {
                    "title": r.title,
                    "seconds": r.seconds,
                    "raw": r.raw,
                    "verdicts": [v.as_dict() for v in r.verdicts],
                }
                for r in results
            },
            "summary": [v.as_dict() for v in verdicts],
            "all_met": ok,
            "total_s": total,
        }
        print(json.dumps(_json_safe(payload), indent=2, ensure_ascii=False))
    else:
        print("== summary ==")
        print(summary_table(results))
        met = sum(1 for v in judged if v.met)
        print(f"\n{met} of {len(judged)} judged goals met; suite took {total:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
