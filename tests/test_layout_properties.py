"""For any schema and any reasonable dataset, every value survives the run and the export.

Hypothesis builds pydantic models fanout was never written for (``schema_gen``)
and a small CSV dataset whose own columns are named like fanout's columns and
the schema's fields. Each pair runs through the real engine (instructor +
openai over HTTP) against the simulator; the results are exported to CSV and
JSONL and read back:

- the simulator's answer validates on every row (its placeholders are
  schema-valid), so every row is ``ok``;
- no CSV header appears twice; fanout's, the input's and the schema's columns
  are all there;
- every leaf of ``model_dump(mode="json")`` is in the CSV, in its own column or
  inside a JSON cell, and reads back equal; JSONL holds ``model_dump`` as is;
- every input column is there under ``input.<name>`` with its value, and the
  ids are the dataset's.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from core.client import choose_endpoint
from core.dataset import Dataset, load_dataset
from core.engine import Engine
from core.export import GUESSED_COLUMN, OWN_AFTER, OWN_BEFORE, export_results
from core.layout import field_columns
from core.localserver import LocalServer, ServerConfig
from core.results import Row, Status
from tests.schema_gen import INPUT_COLUMNS, models

EXAMPLES = int(os.environ.get("FANOUT_SCHEMA_EXAMPLES", "300"))
"""Set FANOUT_SCHEMA_EXAMPLES=2000 FANOUT_SCHEMA_RANDOM=1 to explore beyond CI's fixed set."""
TEXTS = (
    "Invoice INV-7 from ACME Corp for Jane Doe (jane@example.com), status: paid, due "
    "2026-01-31. 3 bolts at 2.50 each.",
    "=SUM(1+1) is not a formula here; id: 42; the source is email, rating 4/5.",
    "Nobody attending. Event on 2025-12-24T18:00:00 in Oslo, Norway. yes",
    "- a line that starts with a dash; value = -3.5; code 1e3",
)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0)) as running:
        yield running


def write_dataset(folder: Path, inputs: list[dict[str, str]]) -> Dataset:
    path = folder / "data.csv"
    names = ["id", "body", *INPUT_COLUMNS]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for i, extra in enumerate(inputs):
            writer.writerow([f"r{i}", TEXTS[i % len(TEXTS)], *(extra[n] for n in INPUT_COLUMNS)])
    return load_dataset(path, text_column="body")


def csv_text(value: Any) -> str:
    """How a plain value of model_dump(mode="json") reads in a CSV cell (the README's rules)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return str(value)


def unquote(cell: str) -> str:
    """A reader undoes the formula guard: exactly one leading apostrophe."""
    return cell[1:] if cell.startswith("'") else cell


def leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) of a dump, stopping at anything that is not a dict."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    else:
        yield path, value


def check_csv_row(cells: dict[str, str], data: dict[str, Any], json_cells: set[str]) -> None:
    columns = {tuple(name[len("data.") :].split(".")) for name in cells if name.startswith("data.")}
    for path, value in leaves(data):
        # the leaf's own column, or the JSON cell of the nearest column above it
        cut = next((n for n in range(len(path), 0, -1) if path[:n] in columns), 0)
        if not cut:  # a nested model left out (None): its columns are all empty
            below = [c for c in columns if c[: len(path)] == path]
            assert below and value in (None, {}), f"no column holds data.{'.'.join(path)}"
            assert all(cells["data." + ".".join(c)] == "" for c in below), path
            continue
        column = "data." + ".".join(path[:cut])
        cell = unquote(cells[column])
        holder: Any = data
        for key in path[:cut]:
            holder = holder[key]
        if column in json_cells:
            assert cell == "" if holder is None else json.loads(cell) == holder, (column, cell)
        else:
            assert cut == len(path), f"{column} is not a JSON cell but holds {holder!r}"
            assert cell == csv_text(value), (column, cell, value)


def check_exports(folder: Path, dataset: Dataset, schema: type[BaseModel], rows: list[Row]) -> None:
    path = export_results(rows, schema, folder / "out.csv", dataset.columns)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        lines = list(reader)
    assert len(header) == len(set(header)), f"a header appears twice: {header}"
    own = header[:-1] if header[-1] == GUESSED_COLUMN else header
    assert header[:2] == list(OWN_BEFORE) and own[-len(OWN_AFTER) :] == list(OWN_AFTER)
    assert [h for h in header if h.startswith("input.")] == [f"input.{n}" for n in INPUT_COLUMNS]
    by_id = {record.id: record for record in dataset.records}
    json_cells = {c.name for c in field_columns(schema) if c.json_cell}
    for line, row in zip(lines, rows, strict=True):
        cells = dict(zip(header, line, strict=True))
        record = by_id[cells["id"]]
        assert unquote(cells["text"]) == record.text
        for name in INPUT_COLUMNS:
            assert unquote(cells[f"input.{name}"]) == record.extra[name]
        assert cells["status"] == "ok"
        assert row.data is not None
        check_csv_row(cells, row.data, json_cells)

    jsonl = export_results(rows, schema, folder / "out.jsonl")
    items = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    for item, row in zip(items, rows, strict=True):
        assert item["id"] == row.id and item["input"] == dict(by_id[row.id].extra)
        assert item["data"] == row.value.model_dump(mode="json")
        assert schema.model_validate(item["data"]).model_dump(mode="json") == item["data"]


input_values = st.text(
    alphabet=st.sampled_from("ab =+-@'\",;\n\t1é"), min_size=0, max_size=8
).filter(lambda s: s == s.strip() or not s.strip())


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="FANOUT_SCHEMA_RANDOM" not in os.environ,  # CI: the same schemas every run
    database=None,
    # shrinking a failure re-runs the engine hundreds of times; report the first as found
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    schema=models(),
    inputs=st.lists(
        st.fixed_dictionaries(dict.fromkeys(INPUT_COLUMNS, input_values)),
        min_size=1,
        max_size=3,
    ),
)
def test_any_schema_survives_the_run_and_the_export(
    server: LocalServer, schema: type[BaseModel], inputs: list[dict[str, str]]
) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        dataset = write_dataset(folder, inputs)
        rows = asyncio.run(run_keeping_values(server.base_url, dataset, schema))
        failed = [(r.id, r.error) for r in rows if r.status is not Status.OK]
        assert not failed, f"the simulator's answers must validate: {failed}"
        check_exports(folder, dataset, schema, rows)


async def run_keeping_values(base_url: str, dataset: Dataset, schema: type[BaseModel]) -> list[Row]:
    endpoint = choose_endpoint(base_url=base_url, env={})
    async with (
        Engine(endpoint) as engine,
        engine.run(
            dataset.records, schema, strategy="gather", concurrency=4, keep_values=True
        ) as run,
    ):
        await run.execute()
    return run.rows
