"""``fanout run`` / ``bench`` with gold labels, through the real client and simulator.

The accuracy ``fanout run`` prints is checked against a count made here by hand, from
the generator's truth and the exported values, without core.quality; and the two
simulated models differ as their profiles say (core/localserver/profiles.py).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import statistics
from pathlib import Path

import pytest

from tests.test_cli import assert_one_error, fanout, read_csv

DATASETS = Path(__file__).resolve().parent.parent / "datasets"


def _generator():
    spec = importlib.util.spec_from_file_location("fanout_generate_q", DATASETS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRUTH = {str(i): expected for i, (_, expected) in enumerate(_generator().people(40, 11), 1)}
TEXTS = {str(i): text for i, (text, _) in enumerate(_generator().people(40, 11), 1)}


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 people with ``expected.name`` / ``expected.age`` columns and an input column."""
    path = tmp_path_factory.mktemp("gold") / "people40.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "status", "expected.name", "expected.age"])
        for row_id, text in TEXTS.items():
            truth = TRUTH[row_id]
            writer.writerow([row_id, text, "new", truth["name"], truth["age"]])
    return path


def hand_count(lines: list[dict]) -> tuple[dict[str, int], int]:
    """Correct values per field and correct rows, counted from the exported data."""
    right = {"name": 0, "age": 0}
    rows = 0
    for line in lines:
        truth, data = TRUTH[line["id"]], line["data"] or {}
        name = " ".join(str(data.get("name", "")).split()).casefold() == truth["name"].casefold()
        age = data.get("age") == truth["age"]
        right["name"] += name
        right["age"] += age
        rows += name and age
    return right, rows


def table(err: str) -> tuple[tuple[int, int], dict[str, float]]:
    """(correct rows, scored rows) and accuracy per field from the printed table."""
    head = re.search(r"quality \(.*\): (\d+) of (\d+) scored rows correct", err)
    assert head, err
    fields = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(name|age)\s+([\d.]+)%", err, flags=re.MULTILINE)
    }
    return (int(head.group(1)), int(head.group(2))), fields


def run_model(capsys, dataset: Path, out: Path, model: str, *extra: str):
    code, _, err = fanout(
        capsys,
        "run",
        str(dataset),
        "--model",
        model,
        "--latency",
        "0",
        "--no-store",
        "-q",
        "--out",
        str(out),
        *extra,
    )
    assert code == 0, err
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    return err, lines


def test_printed_accuracy_matches_a_hand_count_and_the_profiles_differ(
    capsys: pytest.CaptureFixture[str], people: Path, tmp_path: Path
) -> None:
    accuracy = {}
    for model in ("sim-fast", "sim-careful"):
        err, lines = run_model(capsys, people, tmp_path / f"{model}.jsonl", model)
        right, correct_rows = hand_count(lines)
        (printed_rows, scored), fields = table(err)
        assert scored == 40 and printed_rows == correct_rows
        for name in ("name", "age"):
            assert fields[name] == pytest.approx(100 * right[name] / 40, abs=0.05)
        # the export's flags agree with the count, row by row
        for line in lines:
            truth = TRUTH[line["id"]]
            assert line["expected"] == truth
            assert line["correct"] == (
                line["data"]["age"] == truth["age"] and line["correct_fields"]["name"]
            )
            assert "expected.name" not in line["input"] and line["input"] == {"status": "new"}
        accuracy[model] = correct_rows / 40
    assert accuracy["sim-careful"] == 1.0
    assert 0.5 <= accuracy["sim-fast"] < 0.95  # one error in ~30 % of answers


def test_sim_fast_errors_are_deterministic_and_the_csv_has_the_flags(
    capsys: pytest.CaptureFixture[str], people: Path, tmp_path: Path
) -> None:
    _, first = run_model(capsys, people, tmp_path / "a.jsonl", "sim-fast")
    _, again = run_model(capsys, people, tmp_path / "b.jsonl", "sim-fast", "-s", "sequential")
    assert {x["id"]: x["data"] for x in first} == {x["id"]: x["data"] for x in again}
    out = tmp_path / "fast.csv"
    code, _, err = fanout(
        capsys, "run", str(people), "--model", "sim-fast", "--latency", "0", "--no-store",
        "-q", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    rows = read_csv(out)
    header = list(rows[0])
    assert not any(name.startswith("input.expected") for name in header)
    at = header.index
    assert (
        at("data.age")
        < at("expected.name")
        < at("correct")
        < at("correct_fields.name")
        < at("status")
    )
    by_id = {x["id"]: x for x in first}
    for row in rows:
        line = by_id[row["id"]]
        assert row["correct"] == ("true" if line["correct"] else "false")
        assert row["expected.age"] == str(TRUTH[row["id"]]["age"])
        assert row["correct_fields.age"] == ("true" if line["correct_fields"]["age"] else "false")


def test_profiles_latency_and_cost(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bundled = str(DATASETS / "people.csv")
    figures = {}
    for model in ("sim-fast", "sim-careful"):
        out = tmp_path / f"{model}.jsonl"
        code, _, err = fanout(
            capsys, "run", bundled, "--model", model, "--latency", "0.1", "--jitter", "0",
            "-s", "gather", "--no-store", "-q", "--out", str(out),
        )  # fmt: skip
        assert code == 0, err
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        figures[model] = (
            statistics.median(x["latency_s"] for x in lines),
            sum(x["cost_usd"] for x in lines) / len(lines),
        )
    fast, careful = figures["sim-fast"], figures["sim-careful"]
    assert fast[0] < 0.09 < 0.2 < careful[0]  # 0.4 x and 2.5 x the 0.1 s latency
    assert fast[1] > 0 and careful[1] > 10 * fast[1]


def test_gold_file_keyed_by_row_id_and_a_bad_label(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "plain.jsonl"
    data.write_text("".join(json.dumps({"id": k, "text": t}) + "\n" for k, t in TEXTS.items()))
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"id": k, **v}) + "\n" for k, v in TRUTH.items()))
    err, lines = run_model(capsys, data, tmp_path / "out.jsonl", "sim-careful", "--gold", str(gold))
    assert table(err)[0] == (40, 40)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "3", "name": "X", "age": "old"}) + "\n")
    code, _, err = fanout(
        capsys, "run", str(data), "--gold", str(bad), "--no-store", "--latency", "0"
    )
    assert_one_error(code, err, "row 3", "expected.age", "does not fit the schema")
    stranger = tmp_path / "stranger.jsonl"
    stranger.write_text(json.dumps({"id": "99", "name": "X"}) + "\n")
    code, _, err = fanout(capsys, "run", str(data), "--gold", str(stranger), "--no-store")
    assert_one_error(code, err, "'99'", "does not have")


def test_bench_reports_accuracy_and_goodput(
    capsys: pytest.CaptureFixture[str], people: Path
) -> None:
    code, out, err = fanout(
        capsys, "bench", str(people), "--strategies", "gather", "--model", "sim-fast",
        "--latency", "0", "--json",
    )  # fmt: skip
    assert code == 0, err
    (entry,) = json.loads(out)
    quality = entry["quality"]
    assert quality["scored_rows"] == 40
    assert 0.5 <= quality["accuracy"] < 0.95
    assert quality["goodput_rps"] == pytest.approx(quality["correct_rows"] / entry["elapsed_s"])
    assert quality["cost_per_correct_usd"] == pytest.approx(
        entry["cost_usd"] / quality["correct_rows"]
    )
    code, out, err = fanout(
        capsys, "bench", str(people), "--strategies", "gather", "--model", "sim-careful",
        "--latency", "0",
    )  # fmt: skip
    assert code == 0, err
    assert "accuracy" in out and "100.0%" in out and "correct/s" in out


def test_export_from_the_store_scores_against_a_gold_file(
    capsys: pytest.CaptureFixture[str], people: Path, tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite3"
    code, _, err = fanout(
        capsys, "run", str(people), "--model", "sim-fast", "--latency", "0", "-q",
        "--store", str(store), "--out", str(tmp_path / "run.csv"),
    )  # fmt: skip
    assert code == 0, err
    out = tmp_path / "again.csv"
    # the dataset itself is a gold file: its expected.<field> columns, keyed by id
    code, _, err = fanout(
        capsys, "export", "last", str(out), "--store", str(store), "--gold", str(people)
    )
    assert code == 0, err
    assert read_csv(out) == read_csv(tmp_path / "run.csv")


def test_diff_two_stored_runs_field_by_field(
    capsys: pytest.CaptureFixture[str], people: Path, tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite3"
    lines = {}
    for model in ("sim-fast", "sim-careful"):
        out = tmp_path / f"{model}.jsonl"
        code, _, err = fanout(
            capsys, "run", str(people), "--model", model, "--latency", "0", "-q",
            "--store", str(store), "--out", str(out),
        )  # fmt: skip
        assert code == 0, err
        lines[model] = {x["id"]: x for x in map(json.loads, out.read_text().splitlines())}
    code, listing, _ = fanout(capsys, "runs", "--store", str(store), "--json")
    ids = [run["id"] for run in json.loads(listing)]  # newest first: careful, fast
    code, out, err = fanout(capsys, "diff", ids[1], ids[0], "--store", str(store), "--json")
    assert code == 0, err
    found = [json.loads(x) for x in out.splitlines()]
    # sim-careful is right on every row, so the two disagree exactly where sim-fast is wrong
    wrong = {
        (row_id, field)
        for row_id, line in lines["sim-fast"].items()
        for field, right in line["correct_fields"].items()
        if not right
    }
    assert {(d["id"], d["field"]) for d in found} == wrong and wrong
    for d in found:
        assert d["a"] == lines["sim-fast"][d["id"]]["data"][d["field"]]
        assert d["b"] == lines["sim-careful"][d["id"]]["data"][d["field"]]
    assert f"{len({r for r, _ in wrong})} of 40 shared rows differ" in err


def test_bench_sweeps_models_side_by_side(capsys: pytest.CaptureFixture[str], people: Path) -> None:
    code, out, err = fanout(
        capsys, "bench", str(people), "--strategies", "gather,sequential",
        "--models", "sim-fast,sim-careful", "--latency", "0", "--json",
    )  # fmt: skip
    assert code == 0, err
    entries = json.loads(out)
    assert [(e["model"], e["strategy"]) for e in entries] == [
        ("sim-fast", "gather"),
        ("sim-fast", "sequential"),
        ("sim-careful", "gather"),
        ("sim-careful", "sequential"),
    ]
    accuracy = {(e["model"], e["strategy"]): e["quality"]["accuracy"] for e in entries}
    # the answers depend on the model and the text only, not on the strategy
    assert accuracy["sim-fast", "gather"] == accuracy["sim-fast", "sequential"] < 1.0
    assert accuracy["sim-careful", "gather"] == 1.0
    assert entries[2]["cost_usd"] > 10 * entries[0]["cost_usd"] > 0
