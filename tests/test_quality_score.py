"""core.quality: match kinds, list F1, nested paths, missing / wrong / extra, gold checks.

The schemas here are not fanout's own: odd field names (``id``, ``status``), enums,
dates, decimals, lists of models, unions and a recursive model.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from typing import Literal

import pytest
from pydantic import BaseModel

from core.quality.gold import Gold, GoldError, read_gold_file, split_gold
from core.quality.kinds import LIST, MODEL, OTHER, kind_of, model_kind
from core.quality.score import (
    CORRECT,
    EXTRA,
    FAILED,
    MISSING,
    WRONG,
    Tolerance,
    score_field,
)
from core.quality.tally import QualityTally, cost_per_correct, goodput
from core.results import Row, Status


class Status_(enum.Enum):
    OPEN = "open"
    PAID = "paid"


class Item(BaseModel):
    sku: str
    qty: int


class Party(BaseModel):
    name: str
    city: str | None = None


class Invoice(BaseModel):
    id: str
    status: Status_
    total: decimal.Decimal
    due: dt.date | None = None
    stamped: dt.datetime | None = None
    paid: bool = False
    tier: Literal["gold", "silver"] = "silver"
    customer: Party | None = None
    items: list[Item] = []
    tags: list[str] = []
    note: str | int | None = None


class Node(BaseModel):
    label: str
    children: list[Node] = []


def kind(name: str):  # the kind of one Invoice field
    return model_kind(Invoice).fields[name]


@pytest.mark.parametrize(
    ("field", "expected", "got", "outcome", "exact"),
    [
        ("id", "INV-1", "INV-1", CORRECT, True),
        ("id", "Ada  Lovelace", " ada lovelace ", CORRECT, False),  # case / whitespace
        ("id", "Ada Lovelace", "Ada Byron", WRONG, False),
        ("total", "10.50", "10.5", CORRECT, False),  # Decimal dumps as text: numeric compare
        ("total", "10.50", "10.6", WRONG, False),
        ("due", "2026-01-05", "2026-01-05", CORRECT, True),
        ("due", "2026-01-05", "2026-01-06", WRONG, False),
        ("stamped", "2026-01-05T00:00:00", "2026-01-05", CORRECT, False),  # parsed
        ("stamped", "2026-01-05T10:00:00Z", "2026-01-05T10:00:00+00:00", CORRECT, False),
        ("status", "paid", "paid", CORRECT, True),  # enums by value
        ("status", "paid", "open", WRONG, False),
        ("tier", "gold", "GOLD", CORRECT, False),
        ("paid", True, True, CORRECT, True),
        ("paid", True, False, WRONG, False),
        ("due", None, None, CORRECT, True),  # both empty
        ("due", "2026-01-05", None, MISSING, False),
        ("due", None, "2026-01-05", EXTRA, False),
        ("note", 3, "3", WRONG, False),  # a union: structural, types kept apart
        ("note", "x  Y", "X y", CORRECT, False),
    ],
)
def test_scalar_match_kinds(field, expected, got, outcome, exact) -> None:
    score = score_field(expected, got, kind(field))
    assert (score.outcome, score.exact) == (outcome, exact)
    assert score.correct is (outcome == CORRECT)


def test_number_tolerance_is_a_parameter() -> None:
    number = kind_of(float)
    assert score_field(100.0, 100.00001, number).outcome == CORRECT  # within 1e-6 relative
    assert score_field(100.0, 100.5, number).outcome == WRONG
    assert score_field(100.0, 100.5, number, Tolerance(relative=0.01)).outcome == CORRECT
    assert score_field(0.0, 1e-12, number).outcome == CORRECT  # absolute floor
    assert score_field(1, True, number).outcome == WRONG  # a bool is not a number


def test_kinds_follow_the_schema() -> None:
    assert kind("items").tag == LIST and kind("items").item.tag == MODEL
    assert kind("customer").tag == MODEL
    assert kind("note").tag == OTHER
    recursive = model_kind(Node)  # ends, however deep
    assert recursive.fields["children"].tag == LIST


def test_list_item_sets_precision_recall_f1() -> None:
    tags = kind("tags")
    full = score_field(["a", "b"], ["B", "a"], tags)  # order does not matter, text normalised
    assert (full.outcome, full.f1, full.exact) == (CORRECT, 1.0, False)
    part = score_field(["a", "b", "c", "d"], ["a", "b", "x"], tags)
    assert part.outcome == WRONG
    assert part.precision == pytest.approx(2 / 3) and part.recall == pytest.approx(2 / 4)
    assert part.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    dup = score_field(["a", "a"], ["a"], tags)  # duplicates are counted
    assert (dup.outcome, dup.paired, dup.recall) == (WRONG, 1, 0.5)
    assert score_field(["a"], [], tags).outcome == MISSING
    assert score_field([], ["a"], tags).outcome == EXTRA
    assert score_field(None, [], tags).outcome == CORRECT  # null and [] are both empty
    assert score_field([], [], tags).f1 == 1.0


def test_list_of_models_matched_field_by_field() -> None:
    items = kind("items")
    want = [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}]
    same = score_field(want, [{"sku": "b-2 ", "qty": 1}, {"sku": "A-1", "qty": 2}], items)
    assert (same.outcome, same.f1) == (CORRECT, 1.0)
    one_off = score_field(want, [{"sku": "A-1", "qty": 3}, {"sku": "B-2", "qty": 1}], items)
    assert (one_off.outcome, one_off.paired, one_off.precision) == (WRONG, 1, 0.5)


def test_nested_paths_missing_wrong_extra_and_the_row() -> None:
    gold = Gold(
        Invoice,
        {
            "1": {
                "id": "A",
                "status": "paid",
                "total": 3,
                "customer": {"name": "Ada", "city": None},
            },
            "2": {"id": "B", "items": [{"sku": "x", "qty": 1}]},
        },
    )
    # only the fields some label gives are scored, in the layout's order and names
    assert gold.labels_of_fields == [
        "id",
        "status",
        "total",
        "customer.name",
        "customer.city",
        "items",
    ]
    got = {"id": "a", "status": "paid", "total": "3.0", "customer": {"name": "Bob", "city": "Rome"}}
    score = gold.score("1", got, ok=True)
    assert score is not None
    assert {k: v.outcome for k, v in score.fields.items()} == {
        "id": CORRECT,
        "status": CORRECT,
        "total": CORRECT,
        "customer.name": WRONG,
        "customer.city": EXTRA,
    }
    assert not score.correct and score.wrong_fields == ["customer.name", "customer.city"]
    no_customer = gold.score("1", {**got, "customer": None}, ok=True)
    assert no_customer is not None
    assert no_customer.fields["customer.name"].outcome == MISSING
    assert no_customer.fields["customer.city"].outcome == CORRECT  # both null
    right = gold.score("2", {"id": "B", "items": [{"sku": "X", "qty": 1}]}, ok=True)
    assert right is not None and right.correct and set(right.fields) == {"id", "items"}
    failed = gold.score("2", None, ok=False)
    assert failed is not None and {s.outcome for s in failed.fields.values()} == {FAILED}
    assert gold.score("3", got, ok=True) is None  # no label, not scored


def test_gold_that_does_not_fit_the_schema_is_one_clear_error() -> None:
    with pytest.raises(GoldError, match=r"row 7: expected.total = \"lots\" does not fit"):
        Gold(Invoice, {"7": {"total": "lots"}})
    with pytest.raises(GoldError, match=r"expected.customer.nmae: Party has no field 'nmae'"):
        Gold(Invoice, {"1": {"customer": {"nmae": "x"}}})
    with pytest.raises(GoldError, match=r"expected.items.0.qty"):
        Gold(Invoice, {"1": {"items": [{"sku": "a", "qty": "many"}]}})
    with pytest.raises(GoldError, match="not an object"):
        Gold(Invoice, {"1": ["a"]})  # type: ignore[dict-item]
    # values are coerced to the schema's JSON form: "3" for an int, a date as ISO text
    gold = Gold(Invoice, {"1": {"status": "open", "due": "2026-02-01", "items": []}})
    assert gold.labels["1"] == {"status": "open", "due": "2026-02-01", "items": []}


def test_split_gold_conventions() -> None:
    rest, label = split_gold({"source": "web", "expected.id": "A", "expected.customer.name": ""})
    assert rest == {"source": "web"} and label == {"id": "A", "customer": {"name": None}}
    rest, label = split_gold({"expected": '{"id": "A", "tags": ["x"]}', "k": 1})
    assert rest == {"k": 1} and label == {"id": "A", "tags": ["x"]}
    rest, label = split_gold({"expected": {"id": "A"}})  # JSONL: an object
    assert label == {"id": "A"}
    rest, label = split_gold({"expected": "next Tuesday"})  # not gold: an ordinary column
    assert rest == {"expected": "next Tuesday"} and label is None
    rest, label = split_gold({"expected.items": '[{"sku":"a","qty":1}]'})  # JSON cell
    assert label == {"items": [{"sku": "a", "qty": 1}]}


def test_gold_file_keyed_by_row_id(tmp_path) -> None:
    jsonl = tmp_path / "gold.jsonl"
    jsonl.write_text('{"id": 1, "status": "paid"}\n{"id": "b", "expected": {"id": "B"}}\n')
    assert read_gold_file(jsonl) == {"1": {"status": "paid"}, "b": {"id": "B"}}
    csv = tmp_path / "gold.csv"
    csv.write_text("key,expected.status,expected.customer.name\nr1,open,Ada\n")
    assert read_gold_file(csv, "key") == {"r1": {"status": "open", "customer": {"name": "Ada"}}}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"status": "paid"}\n')
    with pytest.raises(GoldError, match="line 1: each label needs the row id under 'id'"):
        read_gold_file(bad)
    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"id": 1}\n{"id": 1}\n')
    with pytest.raises(GoldError, match="two labels"):
        read_gold_file(twice)


def _row(row_id: str, data, status=Status.OK) -> Row:
    return Row(index=0, id=row_id, text="", status=status, data=data)


def test_tally_counts_live_and_worst_first() -> None:
    gold = Gold(Invoice, {str(i): {"id": f"R{i}", "status": "paid"} for i in range(4)})
    tally = QualityTally(gold)
    tally.add(_row("0", {"id": "R0", "status": "paid"}))
    tally.add(_row("1", {"id": "R1", "status": "open"}))
    tally.add(_row("2", None, Status.FAILED))
    tally.add(_row("3", None, Status.CANCELLED))  # not counted
    assert (tally.rows, tally.correct_rows) == (3, 1)
    assert tally.fields["id"].accuracy == pytest.approx(2 / 3)
    assert tally.fields["status"].outcomes[WRONG] == 1
    assert tally.fields["status"].outcomes[FAILED] == 1
    assert [t.label for t in tally.worst_first()] == ["status", "id"]
    tally.add(_row("1", {"id": "R1", "status": "paid"}))  # the same row again: replaced
    assert (tally.rows, tally.correct_rows) == (3, 2)
    assert goodput(2, 4.0) == 0.5 and goodput(2, 0) is None
    assert cost_per_correct(0.3, 2) == pytest.approx(0.15) and cost_per_correct(1.0, 0) is None


def test_diff_runs_normalised_and_by_status() -> None:
    from core.quality.diff import diff_runs, rows_that_differ

    left = [
        _row("1", {"id": "A", "status": "paid", "total": "3", "tags": ["x", "y"]}),
        _row("2", {"id": "B", "status": "open", "total": "1"}),
        _row("3", None, Status.FAILED),
        _row("4", {"id": "D", "status": "open", "total": "1"}),
    ]
    right = [
        _row("1", {"id": " a", "status": "paid", "total": "3.0", "tags": ["Y", "x"]}),
        _row("2", {"id": "B", "status": "paid", "total": "1", "customer": {"name": "Z"}}),
        _row("3", {"id": "C", "status": "open", "total": "1"}),
    ]
    found = diff_runs(left, right, Invoice)
    assert [(d.row_id, d.field, d.left, d.right) for d in found] == [
        ("2", "status", "open", "paid"),
        ("2", "customer.name", None, "Z"),
        ("3", "status", "failed", "ok"),
    ]
    assert rows_that_differ(found) == ["2", "3"]
