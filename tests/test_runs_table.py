"""``fanout runs``: accuracy and correct rows/s beside each run (``—`` without gold labels),
and a table that fits the terminal it is printed on. Real runs, through the real client
and the simulator, as a user types them; the widths are rendered by rich at that width."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from core.runs_table import COLUMNS, DROP_ORDER, run_cells, runs_table
from core.store import Store
from tests.test_cli import fanout
from tests.test_quality_cli import TEXTS, TRUTH


@pytest.fixture
def two_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> dict[str, str]:
    """A run with gold labels (sim-fast: some rows wrong) and one of the same texts without."""
    gold, plain = tmp_path / "people40.csv", tmp_path / "plain.csv"
    with gold.open("w", newline="") as g, plain.open("w", newline="") as p:
        with_labels, without = csv.writer(g), csv.writer(p)
        with_labels.writerow(["id", "text", "expected.name", "expected.age"])
        without.writerow(["id", "text"])
        for row_id, text in TEXTS.items():
            with_labels.writerow([row_id, text, TRUTH[row_id]["name"], TRUTH[row_id]["age"]])
            without.writerow([row_id, text])
    runs = {}
    for name, path in (("gold", gold), ("plain", plain)):
        code, _, err = fanout(
            capsys, "run", str(path), "--model", "sim-fast", "--latency", "0", "-q",
            "--out", str(tmp_path / f"out-{name}.csv"),
        )  # fmt: skip
        assert code == 0, err
        code, out, _ = fanout(capsys, "runs", "--json", "--limit", "1")
        runs[name] = json.loads(out)[0]["id"]
    return runs


def boxed_cells(out: str, marker: str) -> list[str]:
    (line,) = [text for text in out.splitlines() if marker in text]
    return [cell.strip() for cell in line.strip("┃│ ").replace("┃", "│").split("│")]


def test_runs_shows_the_stored_accuracy_and_a_dash_without_gold(
    capsys: pytest.CaptureFixture[str], two_runs: dict[str, str]
) -> None:
    code, out, _ = fanout(capsys, "runs", "--json")
    stored = {item["id"]: item for item in json.loads(out)}
    quality = stored[two_runs["gold"]]["stats"]["quality"]
    assert 0 < quality["accuracy"] < 1  # sim-fast gets some wrong: a figure, not 100 %
    assert "quality" not in (stored[two_runs["plain"]]["stats"] or {})

    code, out, err = fanout(capsys, "runs")  # piped: every column, boxed
    assert code == 0, err
    names = boxed_cells(out, "┃ id ")
    assert names == [column.name for column in COLUMNS]
    assert names[3:6] == ["model", "accuracy", "correct/s"]  # as the dashboard leads
    scored = dict(zip(names, boxed_cells(out, two_runs["gold"]), strict=True))
    plain = dict(zip(names, boxed_cells(out, two_runs["plain"]), strict=True))
    assert scored["accuracy"] == f"{quality['accuracy']:.1%}"
    assert scored["correct/s"] == f"{quality['goodput_rps']:.1f}"
    assert scored["model"] == plain["model"] == "sim-fast"
    assert (plain["accuracy"], plain["correct/s"]) == ("—", "—")
    assert scored["ok"] == plain["ok"] == "40"


@pytest.mark.parametrize("width", [60, 80, 100, 120, 160, 240])
def test_the_table_fits_the_terminal_and_names_what_it_leaves_out(
    two_runs: dict[str, str], width: int
) -> None:
    with Store(Path(os.environ["FANOUT_STORE"]), create=False) as store:
        lines = [run_cells(info) for info in store.list_runs(10)]
    console = Console(width=width, file=io.StringIO(), color_system=None)
    table, left_out = runs_table("fanout runs", lines, console)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    assert sorted(left_out, key=DROP_ORDER.index) == list(DROP_ORDER[: len(left_out)])  # in order
    by_id = {line["id"]: line for line in lines}
    for run_id in two_runs.values():
        (row,) = [line for line in text.splitlines() if run_id in line]  # never cut or folded
        assert by_id[run_id]["accuracy"] in row
        if width >= 80:  # below that, the other cells shorten with an ellipsis
            assert all(by_id[run_id][name] in row for name in ("dataset", "cost", "status"))
    if width >= 240:
        assert left_out == [] and "┃ accuracy ┃ correct/s ┃" in text
    else:
        assert "┃" not in text  # packed: no rules between columns
        if left_out:
            assert f"left out at {width} columns: {', '.join(left_out)}" in " ".join(text.split())
    if width == 80:  # the run, how right it was, how it ended, what it cost
        header = text.splitlines()[1].split()
        assert header == ["id", "dataset", "acc", "ok", "failed", "cost", "status"]
    if width == 120:
        assert "model" in text.splitlines()[1] and "strategy" in text.splitlines()[1]
