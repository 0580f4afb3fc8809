"""Export: the result layout (fanout's / input / data columns), JSON cells, formulas, atomic
writes that honour the umask."""

from __future__ import annotations

import csv
import enum
import json
import os
from datetime import date
from pathlib import Path

import pytest
from pydantic import BaseModel

from core.errors import ExportError
from core.export import (
    OWN_AFTER,
    TIMELINE_COLUMNS,
    data_cell,
    export_results,
    export_runs,
    safe_cell,
)
from core.layout import field_columns
from core.models import Address, Contact, Person
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


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_csv_round_trip(tmp_path: Path) -> None:
    header, rows = read(export_results(make_rows(), Person, tmp_path / "out.csv"))
    assert header[:4] == ["id", "text", "data.name", "data.age"]
    assert header[4:] == list(OWN_AFTER)
    assert rows[0]["data.name"] == "John" and rows[0]["data.age"] == "20"
    assert rows[0]["status"] == "ok" and rows[0]["latency_s"] == "0.2"
    assert rows[0]["delivered_s"] == "0.25" and rows[0]["total_tokens"] == "48"
    assert rows[1]["status"] == "failed" and rows[1]["error_kind"] == "429"
    assert rows[1]["data.name"] == "" and rows[1]["attempts"] == "4"


def test_formula_cells_are_neutralised(tmp_path: Path) -> None:
    _, rows = read(export_results(make_rows(), Person, tmp_path / "out.csv"))
    assert rows[1]["text"].startswith("'=")
    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'quoted"):
        assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("plain") == "plain" and safe_cell(-1) == -1


def test_data_cells_lose_nothing() -> None:
    assert data_cell(0.1 + 0.2) == "0.30000000000000004"
    assert data_cell(10**30) == str(10**30)
    assert data_cell(True) == "true" and data_cell(None) == ""
    assert data_cell([{"a": 1}]) == '[{"a":1}]'
    assert data_cell("x", as_json=True) == '"x"'


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Item(BaseModel):
    description: str
    quantity: int


class Customer(BaseModel):
    name: str
    id: int | None = None


class Invoice(BaseModel):
    """Field names that are fanout's own column names, a list of models, a date."""

    id: str
    status: str
    text: str | None = None
    customer: Customer
    items: list[Item]
    tags: list[str]
    level: Level
    due: date | None = None
    meta: dict[str, int] = {}


def invoice_row() -> Row:
    row = Row(
        index=0,
        id="row-7",
        text="Invoice INV-1 from ACME",
        status=Status.OK,
        extra={"invoice_no": "INV-1", "status": "archived", "=cmd": "x"},
    )
    row.data = Invoice(
        id="INV-1",
        status="paid",
        customer=Customer(name="Ann", id=3),
        items=[Item(description="bolts", quantity=2), Item(description="nuts", quantity=5)],
        tags=["a", "b"],
        level=Level.HIGH,
        due=date(2026, 1, 31),
        meta={"x": 1},
    ).model_dump(mode="json")
    return row


def test_schema_fields_named_like_fanout_columns_do_not_collide(tmp_path: Path) -> None:
    header, rows = read(export_results([invoice_row()], Invoice, tmp_path / "inv.csv"))
    assert len(header) == len(set(header))
    row = rows[0]
    assert row["id"] == "row-7" and row["data.id"] == "INV-1"
    assert row["status"] == "ok" and row["data.status"] == "paid"
    assert row["input.status"] == "archived" and row["input.invoice_no"] == "INV-1"
    assert row["text"] == "Invoice INV-1 from ACME" and row["data.text"] == ""
    assert row["data.customer.name"] == "Ann" and row["data.customer.id"] == "3"
    assert json.loads(row["data.items"]) == [
        {"description": "bolts", "quantity": 2},
        {"description": "nuts", "quantity": 5},
    ]
    assert json.loads(row["data.tags"]) == ["a", "b"]
    assert row["data.level"] == "high" and row["data.due"] == "2026-01-31"
    assert json.loads(row["data.meta"]) == {"x": 1}
    # no header cell a spreadsheet would run, even for an input column named "=cmd"
    assert "input.=cmd" in header
    assert not any(name.startswith(("=", "+", "-", "@")) for name in header)


def test_jsonl_keeps_the_structure_and_the_input(tmp_path: Path) -> None:
    row = invoice_row()
    path = export_results([row, *make_rows()], Invoice, tmp_path / "inv.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["data"] == row.data and lines[0]["id"] == "row-7"
    assert lines[0]["input"] == {"invoice_no": "INV-1", "status": "archived", "=cmd": "x"}
    assert lines[0]["status"] == "ok"
    assert lines[2]["data"] is None and lines[2]["error_kind"] == "429"
    assert lines[2]["input"] == {}


class Node(BaseModel):
    name: str
    children: list[Node] = []
    parent: Node | None = None


def test_recursive_models_are_json_cells(tmp_path: Path) -> None:
    assert [c.name for c in field_columns(Node)] == ["data.name", "data.children", "data.parent"]
    row = Row(index=0, id="1", text="t", status=Status.OK)
    row.data = Node(name="a", children=[Node(name="b")], parent=Node(name="p")).model_dump(
        mode="json"
    )
    _, rows = read(export_results([row], Node, tmp_path / "n.csv"))
    assert json.loads(rows[0]["data.parent"])["name"] == "p"
    assert json.loads(rows[0]["data.children"])[0]["name"] == "b"


def test_nested_fields_flatten_with_dots(tmp_path: Path) -> None:
    row = Row(index=0, id="1", text="t", status=Status.OK)
    row.data = Contact(name="Ann", address=Address(city="Oslo", country="Norway")).model_dump(
        mode="json"
    )
    header, rows = read(export_results([row], Contact, tmp_path / "c.csv"))
    assert [c.name for c in field_columns(Contact)] == header[2:8]
    assert rows[0]["data.address.city"] == "Oslo" and rows[0]["data.address.country"] == "Norway"


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    export_results(make_rows(), Person, target)
    assert target.read_text(encoding="utf-8").startswith("id,text,data.name,data.age")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_exports_honour_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        for name in ("out.csv", "out.jsonl"):
            path = export_results(make_rows(), Person, tmp_path / name)
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask
        runs = export_runs([], tmp_path / "runs.csv")
        assert runs.stat().st_mode & 0o777 == 0o666 & ~umask
    finally:
        os.umask(old)


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
    _, rows = read(path)
    assert rows[0]["run"] == "1" and rows[0]["strategy"] == "gather"
    assert rows[0]["ok"] == "1" and rows[0]["failed"] == "1"
    assert json.loads(rows[0]["errors_by_kind"]) == {"429": 1}
    assert rows[0]["p50_wait_limiter_s"] == ""  # these rows recorded no phases


def test_unwritable_targets_are_one_export_error(tmp_path: Path) -> None:
    long_name = tmp_path / ("x" * 251 + ".csv")  # 255 bytes: the limit, not over it
    assert export_results(make_rows(), Person, long_name).exists()
    with pytest.raises(ExportError, match="cannot write"):
        export_results(make_rows(), Person, tmp_path / ("y" * 260 + ".csv"))
    target = tmp_path / "folder.csv"
    target.mkdir()
    with pytest.raises(ExportError):
        export_results(make_rows(), Person, target)


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


def test_request_ids_and_lenient_are_fanouts_own_columns(tmp_path: Path) -> None:
    rows = make_rows()
    rows[0].request_ids, rows[0].lenient = ("req-1", "req-2"), True
    _, cells = read(export_results(rows, Person, tmp_path / "out.csv"))
    assert cells[0]["request_ids"] == "req-1;req-2" and cells[0]["lenient"] == "true"
    assert cells[1]["request_ids"] == "" and cells[1]["lenient"] == "false"
    path = export_results(rows, Person, tmp_path / "out.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["request_ids"] == ["req-1", "req-2"] and lines[0]["lenient"] is True
    assert lines[1]["request_ids"] == [] and lines[1]["lenient"] is False
