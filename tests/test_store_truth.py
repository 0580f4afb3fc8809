"""The store is the truth or the command fails: a full disk or a held lock never ends in
exit 0 with answered rows missing, and no answered row is paid for again.

The disk-full case makes every write of rows fail the way SQLite reports a full disk
(``database or disk is full``); the lock case holds a real write lock on the store
from another connection for the whole run.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import core.recorder
import core.store
from core.localserver import LocalServer, ServerConfig
from core.store import Store
from tui.__main__ import main

ROWS = 40


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0)) as running:
        yield running


def completions(server: LocalServer) -> int:
    with urllib.request.urlopen(server.base_url + "/health", timeout=5) as response:
        return int(json.load(response)["counts"]["completions"])


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows(
            (i, f"My name is P{i} and I am {20 + i % 50} years old") for i in range(ROWS)
        )
    return path


@pytest.fixture(autouse=True)
def impatient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give up on a busy store in about a second, not half a minute."""
    monkeypatch.setattr(core.recorder, "END_PATIENCE_S", 1.0)
    monkeypatch.setattr(core.store, "BUSY_TIMEOUT_S", 0.2)


def stored_ok(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        (count,) = conn.execute("SELECT count(*) FROM rows WHERE status = 'ok'").fetchone()
    finally:
        conn.close()
    return int(count)


def run_args(server: LocalServer, dataset: Path, db: Path) -> list[str]:
    return ["run", str(dataset), "--base-url", server.base_url, "--store", str(db), "-q"]


def check_recovered(
    server: LocalServer, db: Path, capsys: pytest.CaptureFixture[str], err: str
) -> None:
    assert ".recovery.jsonl" in err and "could not take" in err
    recovery = next(db.parent.glob("*.recovery.jsonl"))
    assert stored_ok(db) < ROWS  # the store really is behind
    # the next command on the store puts the rows back; nothing is sent again
    sent = completions(server)
    assert main(["runs", "--store", str(db)]) == 0
    assert "put back" in capsys.readouterr().err
    assert not recovery.exists() and stored_ok(db) == ROWS
    assert main(["resume", "last", "--store", str(db), "--base-url", server.base_url]) == 0
    assert completions(server) == sent
    with Store(db) as store:
        assert store.get_run("last").status == "finished"


def test_a_full_disk_fails_the_command_and_keeps_every_row(
    server: LocalServer,
    dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "runs.sqlite3"
    real = Store.write_rows

    def full(self: Store, *args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "write_rows", full)
    code = main([*run_args(server, dataset, db), "--out", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "disk is full" in err
    monkeypatch.setattr(Store, "write_rows", real)
    check_recovered(server, db, capsys, err)


def test_a_store_locked_for_the_whole_run_fails_the_command_and_keeps_every_row(
    server: LocalServer, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.sqlite3"
    Store(db).close()  # an existing store, then another process takes its write lock
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    started = False

    real_create = Store.create_run

    def create_then_lock(self: Store, *args: Any, **kwargs: Any) -> str:
        nonlocal started
        run_id = real_create(self, *args, **kwargs)
        holder.execute("BEGIN IMMEDIATE")
        started = True
        return run_id

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Store, "create_run", create_then_lock)
        code = main(run_args(server, dataset, db))
    err = capsys.readouterr().err
    holder.execute("ROLLBACK")
    holder.close()
    assert started and code == 3, err
    assert "locked" in err
    check_recovered(server, db, capsys, err)
