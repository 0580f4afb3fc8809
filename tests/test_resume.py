"""fanout runs / export / resume, end to end against the local simulator on loopback.

The kill -9 test runs ``fanout run`` in a child process, kills it mid-run, and
resumes: every row ends ok exactly once, and the server sees one request per
row that was not stored ok, no more.
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
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.cli import main
from core.dataset import records_from_texts
from core.localserver import LocalServer, ServerConfig
from core.models import Contact, Person
from core.results import Row, Status
from core.store import SCHEMA_VERSION, RunMeta, Store, row_params

ROOT = Path(__file__).resolve().parent.parent
FAKE_KEY = "sk-test-resume-SECRET-91b2e0"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(ServerConfig(latency=0.02, jitter=0.0)) as running:
        yield running


def completions(server: LocalServer) -> int:
    """Chat completions the simulator has served so far."""
    with urllib.request.urlopen(server.base_url + "/health", timeout=5) as response:
        return int(json.load(response)["counts"]["completions"])


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_dataset(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i in range(n):
            writer.writerow([f"r{i}", f"Person {i}: Alice Number{i} is {20 + i % 60} years old."])
    return path


def stored_run(
    path: Path, base_url: str, statuses: list[Status], schema: str = "Person"
) -> tuple[str, list[Row]]:
    """A run as a killed or stopped process would leave it, with rows in the given states."""
    model = Contact if schema == "Contact" else Person
    records = records_from_texts(
        [f"Person {i} is {30 + i} years old." for i in range(len(statuses))]
    )
    meta = RunMeta(
        dataset_path="/gone/people.csv",
        dataset_name="people",
        text_column="text",
        schema_spec=schema,
        schema_json=json.dumps(model.model_json_schema()),
        strategy="gather_semaphore",
        concurrency=3,
        endpoint_kind="url",
        base_url=base_url,
        model="fanout-sim",
        mode="tools",
        options={"max_retries": 0, "timeout": 10},
    )
    rows: list[Row] = []
    with Store(path) as store:
        run_id = store.create_run(meta, records)
        for i, status in enumerate(statuses):
            row = Row(i, records[i].id, records[i].text, status=status)
            if status is Status.OK:
                row.data = {"name": f"Stored{i}", "age": 1000 + i}  # nothing the server would say
                row.finished_s, row.attempts = 0.5, 1
            elif status is Status.FAILED:
                row.error, row.attempts = "HTTP 503 server error", 1
            elif status is Status.CANCELLED:
                row.error = "cancelled"
            rows.append(row)
        store.write_rows([row_params(run_id, i, r) for i, r in enumerate(rows)])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead_pid(), run_id))
    conn.commit()
    conn.close()
    return run_id, rows


def start_run(
    tmp_path: Path, dataset: Path, db: Path, server: LocalServer
) -> subprocess.Popen[bytes]:
    """``fanout run`` in a child process, recording into ``db``, with a fake API key."""
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY, "PYTHONPATH": str(ROOT)}
    env.pop("FANOUT_STORE", None)
    command = [sys.executable, "-m", "tui", "run", str(dataset), "--strategy", "gather_semaphore"]
    command += ["--concurrency", "4", "--store", str(db), "--base-url", server.base_url]
    command += ["--max-retries", "0", "--quiet", "--out", str(tmp_path / "out.csv")]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_for_ok_rows(db: Path, child: subprocess.Popen[bytes], count: int) -> None:
    """Poll the store from outside, as a user would, until ``count`` rows are stored ok."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
        if not db.exists():
            continue
        try:
            conn = sqlite3.connect(db, timeout=1)
            try:
                stored = conn.execute("SELECT count(*) FROM rows WHERE status = 'ok'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            continue
        if stored[0] >= count:
            return
    raise AssertionError(f"the run ended (code {child.poll()}) before {count} rows were stored")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# -- kill -9, then resume -----------------------------------------------------------------


def test_a_killed_run_resumes_with_no_row_lost_or_sent_twice(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 200
    dataset = write_dataset(tmp_path / "people.csv", n)
    db = tmp_path / "runs.sqlite3"
    child = start_run(tmp_path, dataset, db, server)
    try:
        wait_for_ok_rows(db, child, 20)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (tmp_path / "out.csv").exists()

    # What the killed process left: every committed row, no key anywhere in the files.
    for file in tmp_path.glob("runs.sqlite3*"):
        assert FAKE_KEY.encode() not in file.read_bytes(), file
    with Store(db, create=False) as store:
        (info,) = store.list_runs()
        assert info.status == "interrupted" and info.stored_status == "running"
        assert info.endpoint_kind == "url" and info.base_url == server.base_url
        assert 20 <= info.ok < n and info.failed == 0
        ok_before = {r.index: r.data for r in store.load_rows(info.id) if r.status is Status.OK}
    assert len(ok_before) == info.ok

    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    sent_before = completions(server)
    out = tmp_path / "resumed.csv"
    code = main(["resume", info.id[:12], "--store", str(db), "--quiet", "--out", str(out)])
    assert code == 0
    assert completions(server) - sent_before == n - len(ok_before)

    rows = read_csv(out)
    assert len(rows) == n
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(n)]
    assert all(r["status"] == "ok" for r in rows)
    with Store(db, create=False) as store:
        done = store.get_run(info.id)
        assert (done.status, done.ok, done.pending, done.resumes) == ("finished", n, 0, 1)
        assert done.stats is not None and done.stats["records"] == n and done.stats["ok"] == n
        after = store.load_rows(info.id)
        assert {r.index: r.data for r in after if r.index in ok_before} == ok_before
    for file in tmp_path.glob("runs.sqlite3*"):
        assert FAKE_KEY.encode() not in file.read_bytes(), file


def test_ctrl_c_ends_the_run_cancelled_with_every_finished_row_stored(
    tmp_path: Path, server: LocalServer
) -> None:
    dataset = write_dataset(tmp_path / "people.csv", 200)
    db = tmp_path / "runs.sqlite3"
    child = start_run(tmp_path, dataset, db, server)
    try:
        wait_for_ok_rows(db, child, 20)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=20) == 130
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    exported = read_csv(tmp_path / "out.csv")
    with Store(db, create=False) as store:
        (info,) = store.list_runs()
        assert info.status == "cancelled" and info.pending == 0
        assert info.stats is not None and info.stats["stopped_reason"] == "cancelled (Ctrl-C)"
        stored = {r.id: r.status.value for r in store.load_rows(info.id)}
    assert stored == {row["id"]: row["status"] for row in exported}
    assert 20 <= info.ok < 200 and info.cancelled == 200 - info.ok


# -- resume: only what is not ok -----------------------------------------------------------


def test_resume_sends_only_rows_not_ok_and_skip_failed_keeps_failures(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.sqlite3"
    statuses = [Status.OK] * 4 + [Status.FAILED] * 2 + [Status.CANCELLED] * 2 + [Status.PENDING] * 2
    run_id, _ = stored_run(db, server.base_url, statuses)
    out = tmp_path / "out.jsonl"

    before = completions(server)
    assert (
        main(["resume", run_id, "--store", str(db), "--skip-failed", "-q", "--out", str(out)]) == 1
    )
    assert completions(server) - before == 4
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["status"] for line in lines] == ["ok"] * 4 + ["failed"] * 2 + ["ok"] * 4
    assert lines[0]["data"] == {"name": "Stored0", "age": 1000}
    assert "sending 4 of 10 rows" in capsys.readouterr().err

    before = completions(server)
    assert main(["resume", "last", "--store", str(db), "-q", "--out", str(out)]) == 0
    assert completions(server) - before == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(line["status"] == "ok" for line in lines)
    assert lines[3]["data"] == {"name": "Stored3", "age": 1003}

    before = completions(server)
    assert main(["resume", run_id, "--store", str(db), "-q", "--out", str(out)]) == 0
    assert completions(server) == before
    assert "nothing left to send" in capsys.readouterr().err
    with Store(db, create=False) as store:
        info = store.get_run(run_id)
        assert (info.status, info.ok, info.resumes) == ("finished", 10, 2)


def test_resume_refuses_a_run_that_is_still_running(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.sqlite3"
    run_id, _ = stored_run(db, server.base_url, [Status.PENDING] * 3)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (os.getpid(), run_id))
    conn.commit()
    conn.close()
    before = completions(server)
    assert main(["resume", run_id, "--store", str(db)]) == 2
    assert "still running" in capsys.readouterr().err
    assert completions(server) == before


# -- errors are one line, exit 2 --------------------------------------------------------------


@pytest.mark.parametrize("command", ["resume", "export"])
def test_store_errors_are_one_line_and_exit_2(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    db = tmp_path / "runs.sqlite3"
    stored_run(db, server.base_url, [Status.OK])
    extra = [str(tmp_path / "o.csv")] if command == "export" else []

    assert main([command, "nope", *extra, "--store", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run 'nope'" in err and "Traceback" not in err

    assert main([command, "x", *extra, "--store", str(tmp_path / "missing.sqlite3")]) == 2
    assert "no run store" in capsys.readouterr().err

    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not sqlite" * 500)
    assert main([command, "x", *extra, "--store", str(junk)]) == 2
    assert "not a fanout run store" in capsys.readouterr().err

    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (?, 'future')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    assert main([command, "last", *extra, "--store", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "newer fanout" in err


# -- runs and export --------------------------------------------------------------------------


def test_runs_lists_newest_first_and_shows_interrupted(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.sqlite3"
    assert main(["runs", "--store", str(db), "--json"]) == 2  # a named store must exist
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "no run store at" in err
    Store(db).close()
    assert main(["runs", "--store", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    first, _ = stored_run(db, server.base_url, [Status.OK, Status.FAILED, Status.PENDING])
    second, _ = stored_run(db, server.base_url, [Status.OK])
    assert main(["runs", "--store", str(db), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == [second, first]
    assert listed[1]["status"] == "interrupted"
    assert (listed[1]["records"], listed[1]["ok"], listed[1]["failed"]) == (3, 1, 1)
    assert listed[1]["semaphore"] == 3 and listed[1]["dataset"] == "people"
    assert main(["runs", "--store", str(db), "--limit", "1"]) == 0
    text = capsys.readouterr().out
    assert second in text and first not in text


def test_export_falls_back_when_the_schema_is_gone(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.sqlite3"
    run_id, _ = stored_run(db, server.base_url, [Status.OK, Status.FAILED], schema="Contact")
    with Store(db) as store:
        store.write_rows(
            [
                (
                    "ok",
                    json.dumps({"name": "Ann", "address": {"city": "Oslo", "country": "NO"}}),
                    None,
                    None,
                    0.0,
                    0.1,
                    0.5,
                    0.5,
                    1,
                    5,
                    5,
                    0.0,
                    0,
                    None,
                    None,
                    None,
                    None,
                    run_id,
                    0,
                )
            ]
        )
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET schema_spec = 'gone.py:Contact' WHERE id = ?", (run_id,))
    conn.commit()
    conn.close()
    out = tmp_path / "out.csv"
    assert main(["export", run_id, str(out), "--store", str(db)]) == 0
    assert "stored JSON schema" in capsys.readouterr().err
    rows = read_csv(out)
    assert rows[0]["data.address.city"] == "Oslo" and rows[0]["data.name"] == "Ann"
    assert rows[1]["status"] == "failed"

    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET schema_json = NULL WHERE id = ?", (run_id,))
    conn.commit()
    conn.close()
    assert main(["export", run_id[:10], str(out), "--store", str(db)]) == 0
    assert "found in the stored data" in capsys.readouterr().err
    rows = read_csv(out)
    assert rows[0]["data.name"] == "Ann" and json.loads(rows[0]["data.address"])["city"] == "Oslo"


def test_run_records_itself_and_no_store_records_nothing(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = write_dataset(tmp_path / "small.csv", 6)
    db = tmp_path / "runs.sqlite3"
    out = tmp_path / "out.csv"
    args = ["run", str(dataset), "--base-url", server.base_url, "-q", "--out", str(out)]
    assert main([*args, "--store", str(db), "--strategy", "gather"]) == 0
    err = capsys.readouterr().err
    assert f"(store: {db})" in err and "fanout: run " in err
    run_id = err.split("fanout: run ", 1)[1].split()[0]
    with Store(db, create=False) as store:
        info = store.get_run(run_id)
        assert (info.status, info.ok, info.strategy, info.semaphore) == (
            "finished",
            6,
            "gather",
            None,
        )
        assert info.dataset_path == str(dataset.resolve())
        assert [r.id for r in store.load_rows(run_id)] == [f"r{i}" for i in range(6)]
    other = tmp_path / "other.sqlite3"
    assert main([*args, "--store", str(other), "--no-store"]) == 0
    assert not other.exists()
    assert "fanout: run " not in capsys.readouterr().err
