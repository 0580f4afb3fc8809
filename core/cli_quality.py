"""The headless commands' side of quality: ``--gold``, the per-field table, bench columns."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import BaseModel

from core.dataset import Dataset
from core.quality.gold import Gold, gold_for
from core.quality.report import QualitySummary, field_table, summarize
from core.quality.tally import QualityTally
from core.results import Row
from core.stats import RunStats


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


def quality_of(gold: Gold | None, rows: Sequence[Row], stats: RunStats) -> QualitySummary | None:
    if gold is None:
        return None
    return summarize(QualityTally(gold).add_all(rows), stats)
