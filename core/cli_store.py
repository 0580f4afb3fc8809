"""Commands on the run store: ``fanout runs``, ``fanout export``, ``fanout resume``.

    fanout runs [--json] [--limit N] [--store PATH]
    fanout export RUN_ID out.csv|out.jsonl [--store PATH]
    fanout resume RUN_ID [--skip-failed] [--out PATH] [endpoint / strategy overrides]

A run id may be given by any unique prefix, or as ``last``. Errors (unknown
id, unreadable store, a store from a newer fanout) end in one line on stderr
and exit code 2, like every headless command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, create_model
from rich.console import Console

from core.batch.cli import (
    add_batch_options,
    batch_server,
    bind,
    online_over_batches,
    open_run,
    report,
    resume_note,
    runs_cells,
    waiting_rows,
)
from core.cli import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_STORE_INCOMPLETE,
    _execute_with_progress,
    fail,
    via_label,
    warn,
)
from core.cli_quality import keep_quality, quality_of, report_quality
from core.client import OPENAI_URL, EndpointChoice, choose_endpoint
from core.engine import Engine
from core.errors import ConfigError, FanoutError, SchemaError, StoreError
from core.export import export_results, results_jsonl
from core.models import load_schema
from core.options import (
    add_endpoint_options,
    add_simulator_options,
    add_strategy_options,
    client_options_from_args,
    positive_int,
    server_config_from_args,
)
from core.quality.gold import Gold
from core.quality.stored import stored_gold
from core.recorder import RunRecorder, combined_stats, merge_rows
from core.report import format_stats_line
from core.results import Row, Status
from core.runs_table import run_cells, runs_table
from core.stats import RunStats, compute_stats
from core.store import STORE_ENV, RunInfo, Store, resolve_store_path
from core.targets import check_target
from core.usage import OneLineParser

STORE_HELP = "the run store (default: $FANOUT_STORE, else runs.sqlite3 in the user data folder)"


def _add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH", help=STORE_HELP)


def _check_out(value: str | None, store: Path | None = None) -> Path | None:
    """The output file, checked before anything runs (``core.targets``)."""
    if value is None:
        return None
    return check_target(value, {"run store": store})


# -- fanout runs -------------------------------------------------------------------------


def runs_parser(prog: str = "fanout runs") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="List the recorded runs, newest first. A run whose process died before "
        "it ended shows as 'interrupted': `fanout resume ID` finishes it.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object a run")
    parser.add_argument(
        "--limit", "-n", type=positive_int, default=20, metavar="N", help="at most N runs (20)"
    )
    _add_store_option(parser)
    return parser


def _named_store(option: str | None) -> bool:
    """Whether the user named the store (--store or $FANOUT_STORE), not fanout's default."""
    return bool(option) or bool(os.environ.get(STORE_ENV, "").strip())


def runs_main(argv: Sequence[str]) -> int:
    args = runs_parser().parse_args(argv)
    path = resolve_store_path(args.store)
    if not path.exists() and not _named_store(args.store):
        # fanout's own store appears with the first run: nothing recorded yet is no error.
        # A store the user named must exist, like any file given to a read command.
        if args.json:
            print("[]")
        else:
            print(f"fanout: no runs recorded yet (store: {path})", file=sys.stderr)
        return EXIT_OK
    try:
        with Store(path, create=False) as store:
            recover(store)
            runs = store.list_runs(args.limit)
    except FanoutError as exc:
        return fail(str(exc))
    batches = runs_cells(path, runs)
    if args.json:
        print(
            json.dumps([{**info.to_dict(), **batches.get(info.id, {})} for info in runs], indent=2)
        )
        return EXIT_OK
    if not runs:
        print(f"fanout: no runs recorded yet (store: {path})", file=sys.stderr)
        return EXIT_OK
    console = Console()
    if not console.is_terminal:
        console = Console(width=240)  # piped: every column, one line per run
    lines = [run_cells(info, batches.get(info.id)) for info in runs]
    table, _ = runs_table(f"fanout runs ({path})", lines, console)
    console.print(table)
    return EXIT_OK


# -- fanout export -----------------------------------------------------------------------


def export_parser(prog: str = "fanout export") -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description="Export a recorded run's rows to .csv or .jsonl.")
    parser.add_argument("run_id", metavar="RUN_ID", help="a run id, a unique prefix, or 'last'")
    parser.add_argument("out", metavar="OUT", help="the file to write (.csv or .jsonl)")
    parser.add_argument(
        "--gold",
        metavar="FILE",
        help="score the rows against these gold labels, keyed by row id (.jsonl, .json or "
        ".csv; the dataset itself when it has expected.<field> columns), over the labels "
        "stored with the run: adds the expected and correct columns",
    )
    _add_store_option(parser)
    return parser


def export_main(argv: Sequence[str]) -> int:
    args = export_parser().parse_args(argv)
    try:
        out = _check_out(args.out, resolve_store_path(args.store))
        assert out is not None
        with Store(resolve_store_path(args.store), create=False) as store:
            recover(store)
            info = store.get_run(args.run_id)
            rows = store.load_rows(info.id)
            if info.is_live:
                warn(f"run {info.id} is still running; exporting the rows recorded so far")
            schema = export_schema(info, rows, warn)
            gold = stored_gold(
                store,
                info,
                schema,
                row_ids=(row.id for row in rows),
                gold_file=args.gold,
                on_warning=warn,
            )
        export_results(rows, schema, out, gold=gold)
    except FanoutError as exc:
        return fail(str(exc))
    print(f"fanout: run {info.id}: {_counts(rows)} -> {out}", file=sys.stderr)
    return EXIT_OK


def recover(store: Store) -> None:
    """Put back rows an earlier run could not store (its recovery files), saying so."""
    for message in store.import_recoveries():
        warn(message)


def _counts(rows: Sequence[Row]) -> str:
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row.status.value] = by_status.get(row.status.value, 0) + 1
    parts = [f"{len(rows)} rows", f"{by_status.get('ok', 0)} ok"]
    parts += [f"{by_status[s]} {s}" for s in ("failed", "cancelled", "pending") if by_status.get(s)]
    return ", ".join(parts)


def export_schema(
    info: RunInfo, rows: Sequence[Row], on_warning: Callable[[str], None]
) -> type[BaseModel]:
    """The run's response model; if it cannot be loaded any more, one rebuilt from what is stored.

    Never fails: from the stored JSON schema (nested objects kept as nested
    columns), else from the keys of the stored data.
    """
    try:
        return load_schema(info.schema_spec)
    except SchemaError as exc:
        problem = str(exc)
    model = None
    if info.schema_json:
        try:
            model = model_from_json_schema(json.loads(info.schema_json))
        except (ValueError, TypeError):
            model = None
    if model is not None:
        on_warning(f"{problem}; exporting with the columns of the stored JSON schema")
        return model
    keys: dict[str, bool] = {}
    for row in rows:
        for key, value in (row.data or {}).items():
            scalar = value is None or isinstance(value, (str, int, float, bool))
            keys[key] = keys.get(key, True) and scalar
    on_warning(f"{problem}; exporting with the columns found in the stored data")
    return _model(
        "StoredData", {key: (_SCALAR if scalar else Any, None) for key, scalar in keys.items()}
    )


_SCALAR: Any = str | int | float | bool | None
"""A field rebuilt from what is stored, known to hold one plain value (one CSV cell)."""
_JSON_SCALARS = {"string", "integer", "number", "boolean", "null"}


def _is_scalar_schema(node: Any, resolve: Callable[[Any], Any]) -> bool:
    node = resolve(node)
    if not isinstance(node, dict):
        return False
    if "enum" in node or "const" in node:
        return all(not isinstance(v, (dict, list)) for v in node.get("enum", [node.get("const")]))
    kind = node.get("type")
    if isinstance(kind, str):
        return kind in _JSON_SCALARS
    if isinstance(kind, list):
        return bool(kind) and all(k in _JSON_SCALARS for k in kind)
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            return all(_is_scalar_schema(b, resolve) for b in branches)
    return False


def model_from_json_schema(schema: dict[str, Any], depth: int = 0) -> type[BaseModel] | None:
    """A model with the schema's properties (types loosened to Any), nested objects nested."""
    defs = schema.get("$defs") or schema.get("definitions") or {}

    def resolve(node: Any) -> Any:
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            return defs.get(node["$ref"].rsplit("/", 1)[-1], {})
        return node

    def build(node: Any, name: str, level: int) -> type[BaseModel] | None:
        node = resolve(node)
        if not isinstance(node, dict) or level > 6:
            return None
        properties = node.get("properties")
        if not isinstance(properties, dict) or not properties:
            return None
        fields: dict[str, Any] = {}
        for key, sub in properties.items():
            nested = build(_single_object(resolve(sub), resolve), f"{name}_{key}", level + 1)
            if nested is not None:
                fields[str(key)] = (nested | None, None)
            else:
                fields[str(key)] = (_SCALAR if _is_scalar_schema(sub, resolve) else Any, None)
        title = node.get("title")
        return _model(title if isinstance(title, str) and title.isidentifier() else name, fields)

    return build(schema, "Stored", depth)


def _single_object(node: Any, resolve: Callable[[Any], Any]) -> Any:
    """``X | None`` written as anyOf/oneOf: the one object branch, if there is exactly one."""
    if isinstance(node, dict):
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list):
                objects = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
                if len(objects) == 1:
                    return resolve(objects[0])
    return node


def _model(name: str, fields: dict[str, Any]) -> type[BaseModel]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model: type[BaseModel] = create_model(name, **fields)
        except Exception:  # odd names (leading _, model_*): keep the ones pydantic accepts
            usable = {
                k: v
                for k, v in fields.items()
                if k.isidentifier() and not k.startswith(("_", "model_"))
            }
            model = create_model(name, **usable)
    return model


# -- fanout resume -----------------------------------------------------------------------


def resume_parser(prog: str = "fanout resume") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Finish a recorded run: send requests only for the rows not stored ok "
        "(pending, cancelled, and failed unless --skip-failed), record them into the same "
        "run, and write the whole run to --out (or JSONL to stdout). The strategy, "
        "concurrency, workers (and Ray cluster), schema, endpoint, model, mode, timeout and "
        "retries are the run's own "
        "unless given here (the defaults shown below apply only to runs that lack them).",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="a run id, a unique prefix, or 'last'")
    parser.add_argument("--out", "-o", metavar="PATH", help="write the whole run here")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument(
        "--skip-failed", action="store_true", help="do not retry rows that failed; only the rest"
    )
    parser.add_argument("--schema", metavar="SPEC", help="response model (default: the run's)")
    _add_store_option(parser)
    add_strategy_options(parser, default=None)
    add_endpoint_options(parser)
    add_simulator_options(parser)
    add_batch_options(parser, resume=True)
    parser.set_defaults(**dict.fromkeys(_STORED_SETTINGS, None))
    return parser


_STORED_SETTINGS = (
    "concurrency",
    "mode",
    "timeout",
    "max_retries",
    "validation_retries",
    "workers",
)
"""Options whose default, on resume, is the run's stored value."""


def _fallback_defaults() -> dict[str, Any]:
    parser = argparse.ArgumentParser(add_help=False)
    add_strategy_options(parser, default=None)
    add_endpoint_options(parser)
    return vars(parser.parse_args([]))


def resume_settings(args: argparse.Namespace, info: RunInfo) -> argparse.Namespace:
    """``args`` with every unset option taken from the stored run, else the usual default."""
    stored: dict[str, Any] = dict(info.options)
    stored.update(strategy=info.strategy, concurrency=info.concurrency, mode=info.mode)
    defaults = _fallback_defaults()
    filled = argparse.Namespace(**vars(args))
    for name in (*_STORED_SETTINGS, "strategy", "system_prompt", "max_error_rate"):
        if getattr(filled, name, None) is None:
            value = stored.get(name)
            setattr(filled, name, value if value is not None else defaults.get(name))
    if getattr(args, "ray", None) is None and getattr(args, "workers", None) is None:
        filled.ray = stored.get("ray")  # where the run was made, unless --workers says here
    if getattr(filled, "via", None) is None:
        filled.via = stored.get("via") or "online"
    if getattr(filled, "finish_online", None) is None:
        filled.finish_online = bool(stored.get("finish_online"))
    return filled


def resume_endpoint(args: argparse.Namespace, info: RunInfo) -> EndpointChoice:
    """The run's own endpoint and model, unless --base-url / --local / --model say otherwise."""
    if args.base_url or args.local:
        return choose_endpoint(args.base_url, args.model, local=args.local)
    model = args.model or info.model
    if info.endpoint_kind == "local":
        return choose_endpoint("local", model)
    if info.endpoint_kind == "openai":
        return choose_endpoint(info.base_url or OPENAI_URL, model)
    if not info.base_url:
        raise ConfigError(f"run {info.id} has no stored endpoint URL; pass --base-url URL")
    return choose_endpoint(info.base_url, model)


def resume_main(argv: Sequence[str]) -> int:
    args = resume_parser().parse_args(argv)
    try:
        out = _check_out(args.out, resolve_store_path(args.store))
        with Store(resolve_store_path(args.store), create=False) as store:
            recover(store)
            info = store.get_run(args.run_id)
            if info.is_live:
                where = f"pid {info.pid}" + (f" on {info.host}" if info.host else "")
                raise StoreError(f"run {info.id} is still running ({where}); wait for it first")
            settings = resume_settings(args, info)
            records = store.records_to_resume(info.id, include_failed=not args.skip_failed)
            stored_rows = store.load_rows(info.id)
            if not records:
                return _nothing_to_resume(store, info, stored_rows, out)
            spec = args.schema or info.schema_spec
            try:
                schema = load_schema(spec)
            except SchemaError as exc:
                raise SchemaError(
                    f"{exc}; pass --schema SPEC to resume with another model"
                ) from None
            gold = stored_gold(store, info, schema, on_warning=warn)
            choice = resume_endpoint(settings, info)
            note = online_over_batches(store.path, info, settings.via)
            if note:
                warn(note)
            return asyncio.run(
                _resume(settings, store, info, schema, records, stored_rows, choice, out, gold)
            )
    except FanoutError as exc:
        return fail(str(exc))


async def _resume(
    args: argparse.Namespace,
    store: Store,
    info: RunInfo,
    schema: type[BaseModel],
    records: Sequence[Any],
    stored_rows: list[Row],
    choice: EndpointChoice,
    out: Path | None,
    gold: Gold | None = None,
) -> int:
    options = client_options_from_args(args)
    server = batch_server(server_config_from_args(args), args)
    async with Engine(choice, server=server, options=options) as engine:
        for message in await engine.preflight(schema):
            warn(message)
        opened = open_run(engine, records, schema, args, store_path=store.path, quiet=args.quiet)
        async with opened as run:
            recorder = RunRecorder(
                store.path,
                run,
                run_id=info.id,
                on_warning=warn,
                finalize=lambda stats: combined_stats(stored_rows, run, stats, info.stats),
            )
            await recorder.start()
            bind(run, recorder, waiting_rows(stored_rows))
            print(
                f"fanout: resuming run {info.id}: sending {len(records)} of {info.records} rows "
                f"(store: {store.path})" + resume_note(run),
                file=sys.stderr,
            )
            try:
                interrupted = await _execute_with_progress(
                    run, f"{info.dataset_name} · {via_label(args)} · resume", quiet=args.quiet
                )
            finally:
                await recorder.close()
    report(run)
    assert run.stats is not None
    rows = merge_rows(stored_rows, run)  # from memory: right even if the store failed
    _write_rows(rows, schema, out, gold)
    print(format_stats_line(run.stats, out), file=sys.stderr)
    report_quality(gold, rows, run.stats)
    if gold is not None and recorder.complete:  # the whole run's figures, not this session's
        whole = combined_stats(stored_rows, run, run.stats, info.stats)
        summary = quality_of(gold, rows, whole)
        if summary is not None:
            keep_quality(store, info.id, summary)
    print(f"fanout: run {info.id}: {_counts(rows)}", file=sys.stderr)
    if run.stats.stopped_reason and not interrupted:
        warn(run.stats.stopped_reason)
    unstored = recorder.problem()
    if unstored:
        print(f"fanout: error: {unstored}", file=sys.stderr)
        return EXIT_STORE_INCOMPLETE
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(row.status is Status.OK for row in rows) else EXIT_ROWS_FAILED


def _nothing_to_resume(store: Store, info: RunInfo, rows: list[Row], out: Path | None) -> int:
    if info.stored_status != "finished":
        store.begin_resume(info.id)
        try:
            store.write_rows(end=(info.id, "finished", _stored_stats(info, rows).to_dict()))
        except Exception as exc:  # the rows are fine; only the status could not be updated
            warn(f"store {store.path}: cannot mark run {info.id} finished ({exc})")
    schema = export_schema(info, rows, warn)
    _write_rows(rows, schema, out, stored_gold(store, info, schema, on_warning=warn))
    print(f"fanout: run {info.id}: nothing left to send; {_counts(rows)}", file=sys.stderr)
    return EXIT_OK if all(row.status is Status.OK for row in rows) else EXIT_ROWS_FAILED


def _stored_stats(info: RunInfo, rows: Sequence[Row]) -> RunStats:
    before = info.stats or {}
    elapsed = before.get("elapsed_s")
    if not isinstance(elapsed, (int, float)):
        elapsed = max((row.finished_s or 0.0 for row in rows), default=0.0)
    return compute_stats(
        rows,
        strategy=info.strategy,
        concurrency=info.semaphore,
        elapsed_s=float(elapsed),
        max_in_flight=int(before.get("max_in_flight") or 0),
        rate_limited=int(before.get("rate_limited") or 0),
        stopped_reason=None,
    )


def _write_rows(
    rows: Sequence[Row], schema: type[BaseModel], out: Path | None, gold: Gold | None = None
) -> None:
    if out is not None:
        export_results(rows, schema, out, gold=gold)
    else:
        sys.stdout.write(results_jsonl(rows, gold))
        sys.stdout.flush()
