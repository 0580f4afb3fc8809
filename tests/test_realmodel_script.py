"""The real-model check's own arithmetic (the check itself is opt-in: it needs a model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.common import ROOT
from benchmarks.realmodel import default_settings, is_right, truth_of
from core.dataset import load_dataset
from core.options import default_dataset
from core.results import Row, Status


def test_every_bundled_person_has_a_truth_in_its_text() -> None:
    records = load_dataset(default_dataset()).records
    truths = [truth_of(r.text) for r in records]
    assert truths[0] == ("John", 20) and None not in truths and len(truths) == 7


@pytest.mark.parametrize(
    ("status", "data", "right"),
    [
        (Status.OK, {"name": "John", "age": 20}, True),
        (Status.OK, {"name": " john ", "age": 20}, True),
        (Status.OK, {"name": "John", "age": 21}, False),
        (Status.OK, {"name": "Johnny", "age": 20}, False),
        (Status.OK, {"name": "John", "age": "20"}, False),  # lenient turns it into 20
        (Status.FAILED, None, False),
    ],
)
def test_a_row_is_right_only_with_the_texts_name_and_age(
    status: Status, data: dict[str, object] | None, right: bool
) -> None:
    row = Row(0, "1", "My name is John and I am 20 years old", status=status, data=data)
    assert is_right(row) is right


def test_the_venv_and_cache_default_inside_the_project_or_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FANOUT_REALMODEL_VENV", raising=False)
    monkeypatch.delenv("FANOUT_REALMODEL_CACHE", raising=False)
    settings = default_settings()
    assert settings.cache == ROOT / ".cache" / "realmodel"
    assert settings.venv == settings.cache / "venv"
    monkeypatch.setenv("FANOUT_REALMODEL_VENV", str(tmp_path / "v"))
    assert default_settings().venv == tmp_path / "v"
