"""Nothing is lost: server faults, a broken endpoint, and Ctrl-C (once, and twice).

Fault runs call ``fanout run`` in-process against a simulator that breaks a
share of its answers. The Ctrl-C tests need a real process to signal: they
start ``python -m tui run`` with pipes (no terminal), watch its run store
from outside until some rows are stored, and send SIGINT.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.localserver import LocalServer, ServerConfig
from core.results import ErrorKind
from core.store import Store
from tui.__main__ import main

ERROR_KINDS = {kind.value for kind in ErrorKind}
ROWS = 200


def write_people(path: Path, n: int = ROWS) -> list[str]:
    """A CSV of ``n`` people with ids ``p000``...; returns the ids in file order."""
    ids = [f"p{i:03d}" for i in range(n)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i, rid in enumerate(ids):
            writer.writerow([rid, f"My name is Person{i} and I am {20 + i % 60} years old"])
    return ids


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def fanout(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exc:  # pragma: no cover - a usage error would fail the test anyway
        return exc.code if isinstance(exc.code, int) else 1


def store_rows(db: Path) -> dict[str, tuple[str, str | None]]:
    """The last run's rows in the store: record id -> (status, data JSON)."""
    with Store(db, create=False) as store:
        (info,) = store.list_runs()
        return {
            row.id: (row.status.value, json.dumps(row.data) if row.data is not None else None)
            for row in store.load_rows(info.id)
        }


# -- server faults ----------------------------------------------------------------------------


def test_faulty_server_every_row_accounted_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """5xx, broken JSON, hangs and wrong types: every input row comes out once, ok or failed."""
    ids = write_people(tmp_path / "people.csv")
    config = ServerConfig(
        latency=0.0,
        jitter=0.0,
        error_rate=0.2,
        malformed_rate=0.1,
        timeout_rate=0.05,
        invalid_rate=0.05,
        timeout_seconds=1.0,  # the server hangs longer than the client waits (0.5 s)
        seed=11,
    )
    out = tmp_path / "out.csv"
    with LocalServer(config) as server:
        code = fanout(
            "run",
            str(tmp_path / "people.csv"),
            "--base-url",
            server.base_url,
            "--out",
            str(out),
            "--timeout",
            "0.5",
            "--max-retries",
            "2",
            "--concurrency",
            "32",
            "--quiet",
        )
    err = capsys.readouterr().err
    assert "Traceback" not in err
    rows = read_csv(out)
    assert len(rows) == ROWS
    assert [row["id"] for row in rows] == ids  # unique, and exactly the input's ids
    failed = [row for row in rows if row["status"] == "failed"]
    assert {row["status"] for row in rows} <= {"ok", "failed"}
    for row in rows:
        if row["status"] == "ok":
            assert row["error"] == "" and row["data.name"] and row["data.age"].isdigit(), row
        else:
            assert row["error"].strip() and "\n" not in row["error"], row
            assert row["error_kind"] in ERROR_KINDS, row
    assert code == (1 if failed else 0)
    assert any(int(row["attempts"]) > 1 for row in rows), "no row was retried"
    # The store holds the same outcome for every row.
    stored = store_rows(Path(os.environ["FANOUT_STORE"]))
    assert {rid: status for rid, (status, _) in stored.items()} == {
        row["id"]: row["status"] for row in rows
    }


def test_max_error_rate_stops_early_and_accounts_for_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = write_people(tmp_path / "people.csv")
    out = tmp_path / "out.csv"
    with LocalServer(ServerConfig(latency=0.0, error_rate=1.0, seed=3)) as server:
        code = fanout(
            "run",
            str(tmp_path / "people.csv"),
            "--base-url",
            server.base_url,
            "--out",
            str(out),
            "--max-error-rate",
            "0.3",
            "--max-retries",
            "0",
            "--concurrency",
            "4",
            "--quiet",
        )
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if "--max-error-rate" in line]
    assert len(warnings) == 1 and warnings[0].startswith("fanout: warning: stopped"), err
    rows = read_csv(out)
    assert [row["id"] for row in rows] == ids
    statuses = [row["status"] for row in rows]
    assert set(statuses) == {"failed", "cancelled"}  # it stopped before sending everything
    assert statuses.count("failed") < ROWS // 2
    for row in rows:
        assert row["error"].strip(), row
        if row["status"] == "failed":
            assert row["error_kind"] == "5xx", row


# -- Ctrl-C -----------------------------------------------------------------------------------


def start_child(tmp_path: Path, db: Path) -> subprocess.Popen[bytes]:
    """``python -m tui run`` on 200 rows with the built-in simulator (0.2 s a request)."""
    env = {**os.environ, "FANOUT_STORE": str(db)}
    env.pop("OPENAI_API_KEY", None)
    command = [sys.executable, "-m", "tui", "run", str(tmp_path / "people.csv")]
    command += ["--latency", "0.2", "--jitter", "0", "--strategy", "gather_semaphore"]
    command += ["--concurrency", "4", "--out", str(tmp_path / "out.csv")]
    return subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_ok_rows(db: Path, child: subprocess.Popen[bytes], count: int) -> None:
    """Poll the child's store until ``count`` rows are stored ok (or the child ended)."""
    deadline = time.monotonic() + 60  # a guard against a hang, not a timing claim
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
        if not db.exists():
            continue
        try:
            conn = sqlite3.connect(db, timeout=1)
            try:
                (stored,) = conn.execute("SELECT count(*) FROM rows WHERE status = 'ok'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            continue
        if stored >= count:
            return
    raise AssertionError(f"the run ended (code {child.poll()}) before {count} rows were ok")


def finish(child: subprocess.Popen[bytes]) -> tuple[int, str]:
    try:
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, err.decode("utf-8", "replace")


def test_ctrl_c_stops_with_every_row_written_and_resume_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = write_people(tmp_path / "people.csv")
    db = tmp_path / "store.sqlite3"
    child = start_child(tmp_path, db)
    wait_for_ok_rows(db, child, 5)
    child.send_signal(signal.SIGINT)
    code, err = finish(child)
    assert code == 130, err
    assert "Traceback" not in err

    rows = read_csv(tmp_path / "out.csv")
    assert [row["id"] for row in rows] == ids
    by_status = {row["id"]: row["status"] for row in rows}
    assert set(by_status.values()) == {"ok", "cancelled"}
    with Store(db, create=False) as store:
        (info,) = store.list_runs()
        assert info.status == "cancelled"
        assert info.pending == 0
        stored = {row.id: row for row in store.load_rows(info.id)}
    assert {rid: row.status.value for rid, row in stored.items()} == by_status
    assert all(row.data for row in stored.values() if row.status.value == "ok")

    # The run finishes with `fanout resume`: only the cancelled rows are sent again.
    out = tmp_path / "resumed.csv"
    resumed = fanout("resume", "last", "--store", str(db), "--latency", "0", "-q", "-o", str(out))
    assert resumed == 0, capsys.readouterr().err
    after = read_csv(out)
    assert [row["id"] for row in after] == ids
    assert all(row["status"] == "ok" for row in after)

    def person(row: dict[str, str]) -> tuple[str, str]:
        return row["data.name"], row["data.age"]

    before = {row["id"]: person(row) for row in rows if row["status"] == "ok"}
    assert {row["id"]: person(row) for row in after if row["id"] in before} == before


def test_ctrl_c_twice_quits_at_once_and_the_store_stays_sound(tmp_path: Path) -> None:
    ids = write_people(tmp_path / "people.csv")
    db = tmp_path / "store.sqlite3"
    child = start_child(tmp_path, db)
    wait_for_ok_rows(db, child, 5)
    child.send_signal(signal.SIGINT)
    time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    code, err = finish(child)
    assert code == 130, err
    assert "Traceback" not in err

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (status,) = conn.execute("SELECT status FROM runs").fetchone()
        rows = conn.execute("SELECT record_id, status, data_json FROM rows").fetchall()
    finally:
        conn.close()
    assert status == "cancelled"
    assert sorted(rid for rid, _, _ in rows) == ids
    assert {rid: row_status for rid, row_status, _ in rows} == {
        row["id"]: row["status"] for row in read_csv(tmp_path / "out.csv")
    }
    ok = [(rid, data) for rid, row_status, data in rows if row_status == "ok"]
    assert ok, "the rows finished before Ctrl-C are stored"
    for rid, data in ok:
        assert data and json.loads(data)["name"], rid
