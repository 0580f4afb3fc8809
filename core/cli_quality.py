"""The headless commands' side of quality: ``--gold``, the per-field table, bench columns."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import BaseModel

from core.dataset import Dataset
from core.errors import FanoutError
from core.quality.gold import Gold, gold_for
from core.quality.report import QualitySummary, field_table, summarize
from core.quality.tally import QualityTally
from core.results import Row
from core.stats import RunStats
from core.store import Store


def add_gold_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gold",
        metavar="FILE",
        help="gold labels keyed by row id (.jsonl, .json or .csv), scored per field; a "
        "dataset's own expected.<field> columns or expected object are used without it",
    )


def gold_from_args(
    args: argparse.Namespace, dataset: Dataset, schema: type[BaseModel]
) -> Gold | None:
    """The run's gold labels, checked against the schema (GoldError: one clear line)."""
    return gold_for(
        schema,
        dataset.gold,
        (record.id for record in dataset.records),
        gold_file=args.gold,
        id_column=dataset.id_column,
    )


def report_quality(
    gold: Gold | None, rows: Sequence[Row], stats: RunStats
) -> QualitySummary | None:
    """Print the per-field table on stderr; the run's quality figures, or None without gold."""
    if gold is None:
        return None
    tally = QualityTally(gold).add_all(rows)
    print(field_table(tally), file=sys.stderr)
    return summarize(tally, stats)


def keep_quality(store: Store, run_id: str, summary: QualitySummary) -> None:
    """The run's quality figures into its stored stats (``fanout runs``, the dashboard's
    past runs); a store that cannot take them is a warning, the run is done."""
    try:
        store.set_quality(run_id, summary.to_dict())
    except FanoutError as exc:
        print(f"fanout: warning: {exc}", file=sys.stderr)


def quality_of(gold: Gold | None, rows: Sequence[Row], stats: RunStats) -> QualitySummary | None:
    if gold is None:
        return None
    return summarize(QualityTally(gold).add_all(rows), stats)


# -- fanout diff --------------------------------------------------------------------


def diff_parser(prog: str = "fanout diff") -> argparse.ArgumentParser:
    from core.usage import OneLineParser

    parser = OneLineParser(
        prog=prog,
        description="Compare two recorded runs of the same data field by field: the rows "
        "where they disagree (values compared as the quality scoring does).",
    )
    parser.add_argument("left", metavar="RUN_A", help="a run id, a unique prefix, or 'last'")
    parser.add_argument("right", metavar="RUN_B", help="another run")
    parser.add_argument(
        "--store",
        metavar="PATH",
        help="the run store (default: $FANOUT_STORE, else runs.sqlite3 in the user data folder)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per difference")
    return parser


def diff_main(argv: Sequence[str]) -> int:
    import json

    from core.cli import EXIT_OK, fail, warn
    from core.cli_store import export_schema
    from core.errors import FanoutError
    from core.quality.diff import diff_runs, rows_that_differ
    from core.store import Store, resolve_store_path

    args = diff_parser().parse_args(argv)
    try:
        with Store(resolve_store_path(args.store), create=False) as store:
            left, right = store.get_run(args.left), store.get_run(args.right)
            left_rows, right_rows = store.load_rows(left.id), store.load_rows(right.id)
        schema = export_schema(left, left_rows, warn)
    except FanoutError as exc:
        return fail(str(exc))
    differences = diff_runs(left_rows, right_rows, schema)
    shared = len({r.id for r in left_rows} & {r.id for r in right_rows})
    if args.json:
        for d in differences:
            item = {"id": d.row_id, "field": d.field, "a": d.left, "b": d.right}
            print(json.dumps(item, ensure_ascii=False))
    else:
        for d in differences:
            print(f"{d.row_id}\t{d.field}\t{_cell(d.left)}\t{_cell(d.right)}")
    rows = rows_that_differ(differences)
    print(
        f"fanout: {left.id} vs {right.id}: {len(rows)} of {shared} shared rows differ "
        f"({len(differences)} fields)",
        file=sys.stderr,
    )
    return EXIT_OK


def _cell(value: object) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("\t", " ").replace("\n", " ")
