"""Headless commands: ``fanout run``, ``fanout bench`` (and ``serve``, delegated).

Every error a user can cause ends in one line on stderr and exit code 2.
Exit codes: 0 all rows ok; 1 some rows failed or were cancelled; 2 bad usage
or input; 3 the run store could not take every answered row (the message names
the recovery file that holds them); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.batch.cli import add_batch_options, batch_server, bind, open_run, report, with_via
from core.cli_quality import (
    add_gold_option,
    gold_from_args,
    keep_quality,
    quality_of,
    report_quality,
)
from core.dataset import Dataset, load_dataset
from core.engine import ClientOptions, Engine
from core.errors import ExportError, FanoutError
from core.export import export_results, results_jsonl
from core.gctune import quiet_gc
from core.localserver import ServerConfig
from core.localserver.profiles import latency_factor
from core.models import load_schema
from core.options import (
    DEFAULT_STRATEGY,
    add_dataset_options,
    add_endpoint_options,
    add_simulator_options,
    add_strategy_options,
    client_options_from_args,
    endpoint_from_args,
    non_negative_float,
    positive_int,
    resolve_dataset,
    server_config_from_args,
)
from core.quality.gold import Gold
from core.recorder import recording, run_meta
from core.report import format_stats_line, progress_display, stats_table
from core.results import Row
from core.runner import Run
from core.stats import RunStats, ideal_elapsed
from core.store import Store, resolve_store_path
from core.strategies import STRATEGIES
from core.targets import check_target
from core.usage import OneLineParser
from core.workers import check_workers, with_scale

EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
TERMINATING = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals that end a run gracefully, like the first Ctrl-C."""
EXIT_STORE_INCOMPLETE = 3
"""The run store could not take every answered row; the error names the recovery file."""


def fail(message: str) -> int:
    print(f"fanout: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def warn(message: str) -> None:
    print(f"fanout: warning: {message}", file=sys.stderr)


# -- fanout run ---------------------------------------------------------------


def run_parser(prog: str = "fanout run") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Run one strategy over a dataset, headless, with a progress bar on "
        "stderr. Results go to --out (.csv or .jsonl), or as JSONL to stdout.",
    )
    parser.add_argument(
        "dataset", nargs="?", help="CSV, JSONL, JSON or text file (default: the bundled people.csv)"
    )
    parser.add_argument("--out", "-o", metavar="PATH", help="write results here (.csv or .jsonl)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_dataset_options(parser)
    add_gold_option(parser)
    add_strategy_options(parser, default=DEFAULT_STRATEGY)
    add_endpoint_options(parser)
    add_simulator_options(parser)
    add_batch_options(parser)
    group = parser.add_argument_group("run store", "Every run is recorded, so it can be resumed.")
    group.add_argument(
        "--store",
        metavar="PATH",
        help="record the run in this SQLite file (default: $FANOUT_STORE, else runs.sqlite3 "
        "in the user data folder)",
    )
    group.add_argument("--no-store", action="store_true", help="do not record this run")
    return parser


def load_inputs(args: argparse.Namespace) -> tuple[Dataset, type[BaseModel]]:
    dataset = load_dataset(
        resolve_dataset(args.dataset), text_column=args.text_column, id_column=args.id_column
    )
    for message in dataset.warnings:
        warn(message)
    return dataset, load_schema(args.schema)


def run_main(argv: Sequence[str]) -> int:
    args = run_parser().parse_args(argv)
    try:
        check_workers(args.workers, args.strategy, args.ray)
        dataset, schema = load_inputs(args)
        gold = gold_from_args(args, dataset, schema)
        store_path = None if args.no_store else resolve_store_path(args.store)
        out = None
        if args.out:  # checked now, not after the run has been paid for
            out = check_target(args.out, {"dataset": dataset.path, "run store": store_path})
        store = None if store_path is None else Store(store_path)
        if store is not None:
            for message in store.import_recoveries():
                warn(message)
        try:
            return asyncio.run(_run(args, dataset, schema, out, store, gold))
        finally:
            if store is not None:
                store.close()
    except FanoutError as exc:
        return fail(str(exc))


async def _run(
    args: argparse.Namespace,
    dataset: Dataset,
    schema: type[BaseModel],
    out: Path | None,
    store: Store | None = None,
    gold: Gold | None = None,
) -> int:
    choice = endpoint_from_args(args)
    server = batch_server(server_config_from_args(args), args)
    async with Engine(choice, server=server, options=client_options_from_args(args)) as engine:
        for message in await engine.preflight(schema):
            warn(message)
        store_path = store.path if store is not None else None
        if args.via == "batch" and store is None:
            warn("--no-store: this batch run cannot be resumed if fanout stops before it ends")
        opened = open_run(
            engine, dataset.records, schema, args, store_path=store_path, quiet=args.quiet
        )
        async with opened as run:
            meta = run_meta(
                dataset=dataset,
                schema_spec=args.schema,
                schema=schema,
                strategy=args.strategy,
                concurrency=args.concurrency,
                endpoint=engine.endpoint,
                options=engine.options,
                max_error_rate=args.max_error_rate,
                gold=gold,
            )
            meta = with_scale(with_via(meta, args), run)
            async with recording(store, run, meta, on_warning=warn) as recorder:
                bind(run, recorder)
                if recorder is not None:
                    where = f"(store: {recorder.path})"
                    print(f"fanout: run {recorder.run_id} {where}", file=sys.stderr)
                interrupted = await _execute_with_progress(
                    run, f"{dataset.name} · {via_label(args)}", quiet=args.quiet
                )
    report(run)
    assert run.stats is not None
    unstored = recorder.problem() if recorder is not None else None
    if out is not None:
        try:
            export_results(run.rows, schema, out, dataset.columns, gold)
        except ExportError as exc:
            if recorder is None:
                raise
            if unstored:
                raise ExportError(f"{exc}; and the {unstored}") from None
            raise ExportError(
                f"{exc}; the results are in the run store: fanout export {recorder.run_id} "
                "OTHER.csv" + (f" --store {recorder.path}" if args.store else "")
            ) from None
    else:
        sys.stdout.write(results_jsonl(run.rows, gold))
        sys.stdout.flush()
    print(format_stats_line(run.stats, out), file=sys.stderr)
    summary = report_quality(gold, run.rows, run.stats)
    if summary is not None and store is not None and recorder is not None and recorder.complete:
        keep_quality(store, recorder.run_id, summary)
    note = guessed_note(run.rows)
    if note:
        print(f"fanout: note: {note}", file=sys.stderr)
    if run.stats.stopped_reason and not interrupted:
        warn(run.stats.stopped_reason)
    if unstored:
        print(f"fanout: error: {unstored}", file=sys.stderr)
        return EXIT_STORE_INCOMPLETE
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if run.stats.ok == run.stats.records else EXIT_ROWS_FAILED


def via_label(args: argparse.Namespace) -> str:
    return "batch" if getattr(args, "via", None) == "batch" else args.strategy


def guessed_note(rows: Sequence[Row]) -> str | None:
    """One line when the endpoint made values up (the simulator on a schema it has no
    rules for), naming the fields, so a placeholder is never taken for an answer."""
    marked = [row for row in rows if row.guessed]
    if not marked:
        return None
    fields = list(dict.fromkeys(path for row in marked for path in row.guessed))
    shown = ", ".join(fields[:6]) + (f" and {len(fields) - 6} more" if len(fields) > 6 else "")
    return (
        f"the simulator has no rule for some fields and filled placeholders on {len(marked)} "
        f"of {len(rows)} rows ({shown}); they are listed per row in guessed_fields"
    )


async def _execute_with_progress(run: Run, title: str, *, quiet: bool) -> bool:
    """Execute with a live progress bar; Ctrl-C stops gracefully, a second one aborts."""
    interrupts = 0

    def on_sigint() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print(
                "\nfanout: stopping: no new requests, cancelling those in flight "
                "(Ctrl-C again to quit at once)",
                file=sys.stderr,
            )
            run.stop("cancelled (Ctrl-C)")
        else:
            run.abort()

    def on_terminate(name: str) -> None:
        # A closed terminal (SIGHUP) or a container stop (SIGTERM): stop like the first
        # Ctrl-C, so every answered row is stored and --out is written before exiting.
        nonlocal interrupts
        interrupts += 1
        print(f"\nfanout: {name}: stopping, keeping every finished row", file=sys.stderr)
        detach = getattr(run, "detach", None)
        if callable(detach):  # a batch run: its batches keep going, `fanout resume` collects
            detach()
        run.stop(f"cancelled ({name})")

    loop = asyncio.get_running_loop()
    with suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    for signum in TERMINATING:
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, on_terminate, signal.Signals(signum).name)
    try:
        with (
            quiet_gc(),
            progress_display(run, title, enabled=not quiet and sys.stderr.isatty()) as tick,
        ):
            task = asyncio.create_task(run.execute())
            while not task.done():
                await asyncio.wait({task}, timeout=0.1)
                tick()
            with suppress(asyncio.CancelledError):
                await task
    finally:
        # Not removed: a Ctrl-C while the results are written must not become a
        # KeyboardInterrupt traceback and a lost --out file. The run is over, so it
        # is ignored; closing the loop (asyncio.run) removes the handler.
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, lambda: None)
            for signum in TERMINATING:
                loop.add_signal_handler(signum, lambda: None)
    return interrupts > 0


# -- fanout bench -------------------------------------------------------------


def bench_parser(prog: str = "fanout bench") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Run strategies one after another against the same endpoint and print "
        "the article's table: elapsed, time to first result, errors, throughput, latency.",
    )
    parser.add_argument("dataset", nargs="?", help="dataset file (default: the bundled people.csv)")
    parser.add_argument(
        "--strategies",
        default="all",
        metavar="LIST",
        help=f"'all' or a comma-separated list of: {', '.join(STRATEGIES)}",
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=1, metavar="K", help="run each strategy K times"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per run")
    parser.add_argument(
        "--models",
        metavar="LIST",
        help="a comma-separated list of models to run each strategy on (e.g. "
        "sim-fast,sim-careful); default: --model",
    )
    parser.add_argument(
        "--cooldown",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="wait between strategies so a rate-limited endpoint's window drains (e.g. 60); "
        "the built-in simulator is restarted instead when it has limits",
    )
    add_dataset_options(parser)
    add_gold_option(parser)
    add_strategy_options(parser, default=None, choose=False)
    add_endpoint_options(parser)
    add_simulator_options(parser)
    return parser


def parse_strategies(text: str) -> list[str]:
    if text.strip().lower() == "all":
        return list(STRATEGIES)
    names = [part.strip().lower().replace("-", "_") for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown or not names:
        raise FanoutError(
            f"unknown strategy {', '.join(unknown) or text!r}; use 'all' or a comma-separated "
            f"list of: {', '.join(STRATEGIES)}"
        )
    return names


def bench_main(argv: Sequence[str]) -> int:
    args = bench_parser().parse_args(argv)
    try:
        strategies = parse_strategies(args.strategies)
        dataset, schema = load_inputs(args)
        gold = gold_from_args(args, dataset, schema)
        results = asyncio.run(_bench(args, dataset, schema, strategies, gold))
    except FanoutError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps([entry for entry, _ in results], indent=2))
    else:
        stats_table(
            [stats for _, stats in results],
            ideal=[e.get("ideal_s") for e, _ in results],
            quality=[e.get("quality") for e, _ in results] if gold is not None else None,
            models=[e["model"] for e, _ in results] if args.models else None,
        )
    return (
        EXIT_OK if all(s.failed == 0 and s.cancelled == 0 for _, s in results) else EXIT_ROWS_FAILED
    )


async def _bench(
    args: argparse.Namespace,
    dataset: Dataset,
    schema: type[BaseModel],
    strategies: list[str],
    gold: Gold | None = None,
) -> list[tuple[dict[str, Any], RunStats]]:
    server = server_config_from_args(args)
    choice = endpoint_from_args(args)
    options = client_options_from_args(args)
    # Strategies must not inherit each other's rate-limit window: a limited
    # simulator starts fresh for each; another endpoint gets --cooldown.
    fresh = choice.kind == "local" and bool(server.rpm or server.tpm)
    models = [m.strip() for m in (args.models or "").split(",") if m.strip()] or [None]
    plan = [
        (repeat, strategy, model)
        for repeat in range(args.repeat)
        for model in models
        for strategy in strategies
    ]
    results: list[tuple[dict[str, Any], RunStats]] = []
    engine = Engine(choice, server=server, options=options)
    try:
        await engine.start()
        for message in await engine.preflight(schema):
            warn(message)
        for position, (repeat, strategy, model) in enumerate(plan):
            if position and fresh:
                await engine.close()
                engine = Engine(choice, server=server, options=options)
                await engine.start()
            elif position and args.cooldown:
                print(f"fanout: cooling down {args.cooldown:g} s", file=sys.stderr)
                await asyncio.sleep(args.cooldown)
            async with engine.run(
                dataset.records,
                schema,
                strategy=strategy,
                concurrency=args.concurrency,
                max_error_rate=args.max_error_rate,
                model=model,
                workers=args.workers,
                ray=args.ray,
            ) as run:
                with quiet_gc():
                    stats = await run.execute()
            entry = bench_entry(stats, repeat, dataset, engine, server, model)
            summary = quality_of(gold, run.rows, stats)
            if summary is not None:
                entry["quality"] = summary.to_dict()
            results.append((entry, stats))
            print(format_stats_line(stats, None), file=sys.stderr)
    finally:
        await engine.close()
    return results


def bench_entry(
    stats: RunStats,
    repeat: int,
    dataset: Dataset,
    engine: Engine,
    server: ServerConfig,
    model: str | None = None,
) -> dict[str, Any]:
    model = model or engine.endpoint.model
    entry = stats.to_dict()
    entry["model"] = model
    entry["concurrency"] = stats.concurrency
    entry["repeat"] = repeat + 1
    entry["dataset"] = dataset.name
    entry["endpoint"] = engine.endpoint.label
    ideal = None
    if engine.endpoint.is_simulator and server.jitter == 0 and server.latency > 0:
        k = {"sequential": 1}.get(stats.strategy, stats.concurrency or stats.records)
        latency = server.latency * latency_factor(model)  # a named profile's
        ideal = ideal_elapsed(stats.records, k, latency)
    entry["ideal_s"] = ideal
    entry["vs_ideal"] = stats.elapsed_s / ideal if ideal else None
    return entry


# -- fanout probe -------------------------------------------------------------


def probe_parser(prog: str = "fanout probe") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Send one small request per instructor mode (tools, json, json_schema, "
        "md_json) and print which the endpoint accepts, which answer validly for the "
        "schema, and how long each took.",
    )
    parser.add_argument(
        "--schema",
        default="Person",
        metavar="SPEC",
        help="response model: Person, Contact, Review, path/to/file.py:Class (default: Person)",
    )
    parser.add_argument("--text", metavar="TEXT", help="the text sent (default: a short sample)")
    add_endpoint_options(parser)
    return parser


def probe_main(argv: Sequence[str]) -> int:
    from core.probe import SAMPLE_TEXT, probe_modes, probe_table, working

    args = probe_parser().parse_args(argv)
    try:
        schema = load_schema(args.schema)

        async def probe() -> str:
            options = ClientOptions(
                timeout=args.timeout,
                system_prompt=args.system_prompt,
                max_answer_bytes=int(args.max_answer_mb * 1_000_000),
                max_tokens=args.max_tokens,
                lenient=args.lenient,
            )
            async with Engine(endpoint_from_args(args), options=options) as engine:
                results = await probe_modes(engine, schema, text=args.text or SAMPLE_TEXT)
                label = engine.endpoint.label
            names = ", ".join(working(results)) or "none"
            return f"{label} · {args.schema}\n{probe_table(results)}\nmodes that work: {names}"

        print(asyncio.run(probe()))
    except FanoutError as exc:
        return fail(str(exc))
    return EXIT_OK


# -- dispatch -------------------------------------------------------------------


def serve_main(argv: Sequence[str]) -> int:
    from core.localserver.cli import main

    code: int = main(list(argv))
    return code


def runs_main(argv: Sequence[str]) -> int:
    from core.cli_store import runs_main as main

    return main(argv)


def export_main(argv: Sequence[str]) -> int:
    from core.cli_store import export_main as main

    return main(argv)


def diff_main(argv: Sequence[str]) -> int:
    from core.cli_quality import diff_main as main

    return main(argv)


def resume_main(argv: Sequence[str]) -> int:
    from core.cli_store import resume_main as main

    return main(argv)


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "run": (run_main, "run one strategy headless, results to a file or stdout"),
    "bench": (bench_main, "compare strategies on one endpoint: the article's table"),
    "serve": (serve_main, "run the built-in OpenAI-compatible simulator alone"),
    "runs": (runs_main, "list the recorded runs, newest first"),
    "export": (export_main, "export a recorded run's results to .csv or .jsonl"),
    "resume": (resume_main, "finish a recorded run: send only the rows not yet ok"),
    "probe": (probe_main, "which modes an endpoint accepts and answers validly"),
    "diff": (diff_main, "compare two recorded runs field by field: where they disagree"),
}


def main(argv: Sequence[str]) -> int:
    command, *rest = argv
    handler, _ = COMMANDS[command]
    try:
        return handler(rest)
    except KeyboardInterrupt:  # Ctrl-C before a run's own handler is installed (start-up)
        print("\nfanout: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
