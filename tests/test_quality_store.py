"""Gold labels kept in the run store: ``fanout export`` and ``fanout resume`` score a run
without ``--gold`` again, byte for byte as the run's own ``--out``; an old store without
them still opens. Real client and simulator, as a user types it."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from tests.test_cli import fanout
from tests.test_quality_cli import TEXTS, TRUTH, table
from tests.test_user_schema import SCHEMA


@pytest.fixture
def people(tmp_path: Path) -> Path:
    """40 people, gold as ``expected.*`` columns, and an input column called ``status``."""
    path = tmp_path / "people40.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "status", "expected.name", "expected.age"])
        for row_id, text in TEXTS.items():
            writer.writerow([row_id, text, "new", TRUTH[row_id]["name"], TRUTH[row_id]["age"]])
    return path


def run_ids(capsys: pytest.CaptureFixture[str]) -> list[str]:
    code, out, _ = fanout(capsys, "runs", "--json")
    assert code == 0
    return [item["id"] for item in json.loads(out)]


def test_export_from_the_store_writes_the_runs_own_quality_columns(
    capsys: pytest.CaptureFixture[str], people: Path, tmp_path: Path
) -> None:
    for name in ("out.csv", "out.jsonl"):
        code, _, err = fanout(
            capsys, "run", str(people), "--model", "sim-fast", "--latency", "0", "-q",
            "--out", str(tmp_path / name),
        )  # fmt: skip
        assert code == 0, err
    jsonl_run, csv_run = run_ids(capsys)  # newest first
    code, out, _ = fanout(capsys, "runs", "--json")
    stored = json.loads(out)[0]["stats"]["quality"]  # kept for the lists of runs
    assert stored["scored_rows"] == 40 and 0 < stored["accuracy"] < 1
    for run_id, name in ((csv_run, "out.csv"), (jsonl_run, "out.jsonl")):
        again = tmp_path / f"again-{name}"
        code, _, err = fanout(capsys, "export", run_id, str(again))  # no --gold
        assert code == 0, err
        assert again.read_bytes() == (tmp_path / name).read_bytes()
    lines = [json.loads(x) for x in (tmp_path / "again-out.jsonl").read_text().splitlines()]
    assert all(line["expected"] == TRUTH[line["id"]] for line in lines)
    flags = [line["correct"] for line in lines]
    assert any(flags) and not all(flags)  # sim-fast: some rows right, some wrong, and they say so


def test_a_users_schema_with_an_expected_object_round_trips(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An ``Invoice`` (fields ``id``, ``status``, an enum, a date, a nested model, lists)
    with one ``expected`` JSON column holding part of each label."""
    schema = tmp_path / "invoices.py"
    schema.write_text(SCHEMA, encoding="utf-8")
    data = tmp_path / "invoices.csv"
    labels = [
        {"id": "INV-1", "status": "paid", "due": "2026-01-31", "tags": ["q1", "urgent"]},
        {"status": "overdue", "customer": {"name": "Bob Stone"}, "due": None},
        {"id": "INV-3", "status": "paid"},  # the text says unpaid: a wrong answer
    ]
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["invoice_no", "body", "expected"])
        writer.writerow(
            [
                "INV-1",
                "Invoice id: INV-1; name: Jane Doe (jane@example.com); "
                "status: paid; due 2026-01-31; tags: urgent, q1",
                json.dumps(labels[0]),
            ]
        )
        writer.writerow(
            ["INV-2", "Invoice id: INV-2; name: Bob Stone; status: overdue.", json.dumps(labels[1])]
        )
        writer.writerow(["INV-3", "Invoice id: INV-3; name: Ann Lee; status: unpaid.",
                         json.dumps(labels[2])])  # fmt: skip
    out = tmp_path / "out.csv"
    code, _, err = fanout(
        capsys, "run", str(data), "--schema", f"{schema}:Invoice", "--text-column", "body",
        "--id-column", "invoice_no", "--latency", "0", "-q", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    again = tmp_path / "again.csv"
    assert fanout(capsys, "export", "last", str(again))[0] == 0
    assert again.read_bytes() == out.read_bytes()
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [r["correct_fields.status"] for r in rows] == ["true", "true", "false"]
    assert rows[0]["expected.due"] == "2026-01-31" and rows[1]["expected.customer.name"]


def test_an_old_store_without_gold_opens_and_exports_unscored(
    capsys: pytest.CaptureFixture[str], people: Path, tmp_path: Path
) -> None:
    code, _, err = fanout(capsys, "run", str(people), "--latency", "0", "-q", "--out",
                          str(tmp_path / "run.csv"))  # fmt: skip
    assert code == 0, err
    store = Path(__import__("os").environ["FANOUT_STORE"])
    conn = sqlite3.connect(store)
    conn.execute("ALTER TABLE rows DROP COLUMN gold_json")  # as main's fanout wrote it
    conn.commit()
    conn.close()
    out = tmp_path / "old.csv"
    code, _, err = fanout(capsys, "export", "last", str(out))
    assert code == 0, err
    header = next(csv.reader(out.open(encoding="utf-8")))
    assert "data.name" in header and "correct" not in header
    columns = [r[1] for r in sqlite3.connect(store).execute("PRAGMA table_info(rows)")]
    assert columns.count("gold_json") == 1  # added back, empty, when it was opened
    # a gold file still scores it, as before
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"id": k, **v}) + "\n" for k, v in TRUTH.items()))
    code, _, err = fanout(capsys, "export", "last", str(out), "--gold", str(gold))
    assert code == 0, err
    assert {r["correct"] for r in csv.DictReader(out.open(encoding="utf-8"))} == {"true"}


def test_a_resumed_run_keeps_its_scoring(
    capsys: pytest.CaptureFixture[str], people: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first.jsonl"
    code, _, err = fanout(capsys, "run", str(people), "--model", "sim-fast", "--latency", "0",
                          "-q", "--out", str(first))  # fmt: skip
    assert code == 0, err
    (printed, scored), _ = table(err)
    store = Path(__import__("os").environ["FANOUT_STORE"])
    conn = sqlite3.connect(store)  # as if killed after 25 rows: the rest never answered
    conn.execute("UPDATE rows SET status = 'pending', data_json = NULL WHERE idx >= 25")
    conn.execute("UPDATE runs SET status = 'interrupted'")
    conn.commit()
    conn.close()
    out = tmp_path / "resumed.jsonl"
    code, _, err = fanout(capsys, "resume", "last", "-q", "--out", str(out))
    assert code == 0, err
    assert table(err)[0] == (printed, scored) == (printed, 40)  # sim-fast is deterministic
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["correct"] for x in lines] == [
        json.loads(x)["correct"] for x in first.read_text().splitlines()
    ]
