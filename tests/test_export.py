"""Export: CSV round-trips, nested fields flatten, formulas are neutralised, writes are atomic."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from core.errors import ExportError
from core.export import TIMELINE_COLUMNS, export_results, export_runs, safe_cell
from core.models import Address, Contact, Person, field_columns
from core.results import ErrorKind, Phases, Row, Status
from core.stats import compute_stats


def make_rows() -> list[Row]:
    ok = Row(index=0, id="1", text="My name is John and I am 20 years old", status=Status.OK)
    ok.data = Person(name="John", age=20).model_dump(mode="json")
    ok.queued_s, ok.started_s, ok.finished_s, ok.delivered_s = 0.0, 0.0, 0.2, 0.25
    ok.attempts, ok.prompt_tokens, ok.completion_tokens = 1, 40, 8
    failed = Row(index=1, id="2", text='=HYPERLINK("http://x")', status=Status.FAILED)
    failed.error, failed.error_kind, failed.attempts = (
        "429 rate limited: slow down",
        ErrorKind.RATE_LIMIT,
        4,
    )
    return [ok, failed]


def test_csv_round_trip(tmp_path: Path) -> None:
    path = export_results(make_rows(), Person, tmp_path / "out.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:4] == ["id", "text", "name", "age"]
    assert rows[0]["name"] == "John" and rows[0]["age"] == "20"
    assert rows[0]["status"] == "ok" and rows[0]["latency_s"] == "0.2"
    assert rows[0]["delivered_s"] == "0.25" and rows[0]["total_tokens"] == "48"
    assert rows[1]["status"] == "failed" and rows[1]["error_kind"] == "429"
    assert rows[1]["name"] == "" and rows[1]["attempts"] == "4"


def test_formula_cells_are_neutralised(tmp_path: Path) -> None:
    path = export_results(make_rows(), Person, tmp_path / "out.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1]["text"].startswith("'=")
    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("plain") == "plain" and safe_cell(-1) == -1


def test_nested_fields_flatten_with_dots(tmp_path: Path) -> None:
    row = Row(index=0, id="1", text="t", status=Status.OK)
    row.data = Contact(name="Ann", address=Address(city="Oslo", country="Norway")).model_dump(
        mode="json"
    )
    path = export_results([row], Contact, tmp_path / "c.csv")
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert field_columns(Contact) == header[2 : 2 + len(field_columns(Contact))]
    with path.open(encoding="utf-8", newline="") as handle:
        first = next(csv.DictReader(handle))
    assert first["address.city"] == "Oslo" and first["address.country"] == "Norway"


def test_jsonl_keeps_nested_data(tmp_path: Path) -> None:
    path = export_results(make_rows(), Person, tmp_path / "out.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["data"] == {"name": "John", "age": 20}
    assert lines[1]["data"] is None and lines[1]["error_kind"] == "429"


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    export_results(make_rows(), Person, target)
    assert target.read_text(encoding="utf-8").startswith("id,text,name,age")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_bad_targets_raise_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"\.csv or \.jsonl"):
        export_results(make_rows(), Person, tmp_path / "out.xlsx")
    with pytest.raises(ExportError, match="does not exist"):
        export_results(make_rows(), Person, tmp_path / "nope" / "out.csv")


def test_runs_table_export(tmp_path: Path) -> None:
    stats = compute_stats(
        make_rows(),
        strategy="gather",
        concurrency=None,
        elapsed_s=0.3,
        max_in_flight=2,
        rate_limited=1,
    )
    path = export_runs([stats], tmp_path / "runs.csv", extra=[{"run": 1}])
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["run"] == "1" and rows[0]["strategy"] == "gather"
    assert rows[0]["ok"] == "1" and rows[0]["failed"] == "1"
    assert json.loads(rows[0]["errors_by_kind"]) == {"429": 1}
    assert rows[0]["p50_wait_limiter_s"] == ""  # these rows recorded no phases


def test_runs_table_export_has_the_wait_figures(tmp_path: Path) -> None:
    rows = make_rows()
    rows[0].phases = Phases(wait_sem_s=0.5, wait_limiter_s=3.1, wire_s=0.2, backoff_s=1.0)
    rows[0].phases.retries_5xx = 1
    stats = compute_stats(
        rows, strategy="gather", concurrency=None, elapsed_s=0.3, max_in_flight=1, rate_limited=0
    )
    path = export_runs([stats], tmp_path / "runs.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        (exported,) = list(csv.DictReader(handle))
    assert exported["p50_wait_limiter_s"] == "3.1" and exported["p50_wait_sem_s"] == "0.5"
    assert exported["backoff_s"] == "1" and json.loads(exported["retries_by_kind"]) == {"5xx": 1}


def test_the_time_line_columns_carry_each_rows_phases(tmp_path: Path) -> None:
    rows = make_rows()
    rows[1].phases = Phases(wait_sem_s=0.5, wait_limiter_s=3.1, wire_s=0.8, retries_429=3)
    path = export_results(rows, Person, tmp_path / "out.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert list(exported[0])[-len(TIMELINE_COLUMNS) :] == list(TIMELINE_COLUMNS)
    assert exported[0]["wire_s"] == "" and exported[0]["retries_429"] == ""  # not recorded
    assert exported[1]["wait_limiter_s"] == "3.1" and exported[1]["wire_s"] == "0.8"
    assert exported[1]["retries_429"] == "3" and exported[1]["backoff_s"] == "0"
    lines = export_results(rows, Person, tmp_path / "out.jsonl").read_text().splitlines()
    second = json.loads(lines[1])
    assert second["wait_sem_s"] == 0.5 and second["retries_429"] == 3
    assert json.loads(lines[0])["wire_s"] is None
