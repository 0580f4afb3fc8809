"""Output files are checked before anything is sent: no file destroys another."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import ExportError
from core.targets import check_target
from tui.__main__ import main


def test_a_plain_new_or_existing_file_is_fine(tmp_path: Path) -> None:
    assert check_target(tmp_path / "out.csv") == tmp_path / "out.csv"
    (tmp_path / "old.jsonl").write_text("x", encoding="utf-8")
    assert check_target(tmp_path / "old.jsonl").name == "old.jsonl"
    assert list(tmp_path.iterdir()) == [tmp_path / "old.jsonl"]  # the probe is gone


@pytest.mark.parametrize("kind", ["symlink", "fifo", "device", "folder", "read-only"])
def test_targets_fanout_will_not_replace(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "out.csv"
    if kind == "symlink":
        (tmp_path / "real.csv").write_text("keep", encoding="utf-8")
        target.symlink_to(tmp_path / "real.csv")
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target = Path("/dev/null")
    elif kind == "folder":
        target.mkdir()
    else:
        target.write_text("keep", encoding="utf-8")
        target.chmod(0o444)
    with pytest.raises(ExportError, match="choose another name"):
        check_target(target)


def test_the_dataset_and_the_store_are_protected(tmp_path: Path) -> None:
    data, store = tmp_path / "in.csv", tmp_path / "runs.csv"
    with pytest.raises(ExportError, match="is the dataset"):
        check_target(tmp_path / "." / "in.csv", {"dataset": data})
    with pytest.raises(ExportError, match="is the run store"):
        check_target(store, {"run store": store})
    wal = tmp_path / "s.csv"
    with pytest.raises(ExportError, match="is the run store"):
        check_target(Path(f"{wal}-wal.csv").with_name("s.csv"), {"run store": wal})


def test_names_too_long_and_folders_that_cannot_be_written(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="too long"):
        check_target(tmp_path / ("x" * 300 + ".csv"))
    with pytest.raises(ExportError, match="does not exist"):
        check_target(tmp_path / "no" / "out.csv")
    # a folder nobody may write: a read-only mount for root, else a folder without write bits
    folder = Path("/proc/self")
    if os.access(folder, os.W_OK):
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    with pytest.raises(ExportError, match="cannot write"):
        check_target(folder / "out.csv")


def test_run_refuses_an_out_that_is_its_store_or_dataset_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "people.csv"
    data.write_text("text\nMy name is A and I am 3 years old\n", encoding="utf-8")
    db = tmp_path / "x.csv"
    for out, store in ((db, db), (data, tmp_path / "s.sqlite3")):
        code = main(["run", str(data), "--local", "--store", str(store), "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "would destroy it" in err[0], err
    assert data.read_text(encoding="utf-8").startswith("text\n")
    assert not db.exists()
    code = main(["export", "last", str(tmp_path / "s.jsonl"), "--store", str(tmp_path / "s.jsonl")])
    assert code == 2 and "would destroy it" in capsys.readouterr().err
