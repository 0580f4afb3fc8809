"""A user's own schema and data, end to end through ``fanout run`` and ``fanout export``.

An ``Invoice`` with fields named ``id`` and ``status`` (fanout's own column
names), a nested customer, a list of line items, an enum, an optional date
and a list of strings, over a CSV whose text column is ``body`` and which has
columns of its own (``invoice_no``, ``source``, and one called ``status``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tui.__main__ import main

SCHEMA = """
from datetime import date
from enum import Enum
from pydantic import BaseModel


class Status(str, Enum):
    paid = "paid"
    unpaid = "unpaid"
    overdue = "overdue"


class Customer(BaseModel):
    name: str
    email: str | None = None


class LineItem(BaseModel):
    description: str
    quantity: int


class Invoice(BaseModel):
    id: str
    status: Status
    customer: Customer
    line_items: list[LineItem]
    due: date | None = None
    tags: list[str]


class Event(BaseModel):
    id: int
    title: str
    attendees: int
"""

ROWS = [
    ("INV-1", "web", "archived",
     "Invoice id: INV-1; name: Jane Doe (jane@example.com); status: paid; due 2026-01-31; "
     "tags: urgent, q1"),
    ("INV-2", "mail", "open", "Invoice id: INV-2; name: Bob Stone; status: overdue."),
    ("INV-3", "=cmd", "", "Invoice id: INV-3; name: Ann Lee; status: unpaid; due 2026-03-01."),
]  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    schema = tmp_path / "invoices.py"
    schema.write_text(SCHEMA, encoding="utf-8")
    data = tmp_path / "invoices.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["invoice_no", "source", "status", "body"])
        writer.writerows(ROWS)
    return schema, data


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_invoice_fields_and_input_columns_survive_run_and_export(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    schema, data = files
    out_csv, out_jsonl = tmp_path / "out.csv", tmp_path / "out.jsonl"
    common = [
        "run", str(data), "--schema", f"{schema}:Invoice", "--text-column", "body",
        "--id-column", "invoice_no", "--latency", "0", "--local", "-q",
    ]  # fmt: skip
    assert main([*common, "--out", str(out_csv)]) == 0
    err = capsys.readouterr().err
    header, rows = read_csv(out_csv)
    assert len(header) == len(set(header))
    assert [r["id"] for r in rows] == ["INV-1", "INV-2", "INV-3"]  # joinable to the input
    assert [r["input.status"] for r in rows] == ["archived", "open", ""]
    assert [r["input.source"] for r in rows] == ["web", "mail", "'=cmd"]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    assert [r["data.status"] for r in rows] == ["paid", "overdue", "unpaid"]
    assert [r["data.id"] for r in rows] == ["INV-1", "INV-2", "INV-3"]
    assert rows[0]["data.customer.email"] == "jane@example.com"
    assert rows[0]["data.due"] == "2026-01-31" and rows[1]["data.due"] == ""
    assert json.loads(rows[0]["data.tags"]) == ["urgent", "q1"]
    items = json.loads(rows[0]["data.line_items"])
    assert isinstance(items, list) and all({"description", "quantity"} <= set(i) for i in items)
    # line items have no rule in the simulator: marked, in the export and on stderr
    assert "line_items[].description" in rows[0]["guessed_fields"].split(";")
    assert "placeholders" in err and "line_items[].description" in err

    assert main([*common, "--out", str(out_jsonl)]) == 0
    lines = [json.loads(x) for x in out_jsonl.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["input"] == {"source": "web", "status": "archived"}
    assert lines[0]["data"]["status"] == "paid" and lines[0]["data"]["customer"]["name"]
    assert lines[0]["data"]["line_items"] == items

    # `fanout export` from the store writes the same files as the run did
    again_csv, again_jsonl = tmp_path / "again.csv", tmp_path / "again.jsonl"
    assert main(["export", "last", str(again_jsonl)]) == 0
    assert again_jsonl.read_bytes() == out_jsonl.read_bytes()
    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)[-1]["id"]
    assert main(["export", first, str(again_csv)]) == 0
    assert again_csv.read_bytes() == out_csv.read_bytes()


def test_without_an_id_column_ids_are_line_numbers(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    schema, data = files
    out = tmp_path / "events.csv"
    args = ["run", str(data), "--schema", f"{schema}:Event", "--text-column", "body"]
    assert main([*args, "--local", "--latency", "0", "-q", "--out", str(out)]) == 0
    header, rows = read_csv(out)
    assert [r["id"] for r in rows] == ["2", "3", "4"]  # the header is line 1
    assert [r["input.invoice_no"] for r in rows] == ["INV-1", "INV-2", "INV-3"]
    assert "data.id" in header and "data.attendees" in header


def test_a_missing_id_column_is_one_clear_error(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, data = files
    code = main(["run", str(data), "--text-column", "body", "--id-column", "nope", "--local"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no id column 'nope'" in err[0]
