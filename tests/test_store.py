"""The run store: schema, pending rows, batched crash-safe recording, ids, errors, no secrets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.client import Endpoint
from core.dataset import Dataset, Record, records_from_texts
from core.engine import ClientOptions
from core.errors import StoreError
from core.models import Person
from core.recorder import RunRecorder, recording, run_meta
from core.results import Phases, Row, Status
from core.runner import Run
from core.store import (
    SCHEMA_VERSION,
    RunMeta,
    Store,
    default_store_path,
    process_alive,
    public_base_url,
    resolve_store_path,
    row_params,
)
from tests.fakes import FakeExtract

ROOT = Path(__file__).resolve().parent.parent
FAKE_KEY = "sk-test-NEVER-STORE-THIS-7f3a9c"


def meta(strategy: str = "gather_semaphore", concurrency: int = 4) -> RunMeta:
    return RunMeta(
        dataset_path="/data/people.csv",
        dataset_name="people",
        text_column="text",
        schema_spec="Person",
        schema_json=json.dumps(Person.model_json_schema()),
        strategy=strategy,
        concurrency=concurrency,
        endpoint_kind="local",
        base_url=None,
        model="fanout-sim",
        mode="tools",
    )


def records(n: int) -> tuple[Record, ...]:
    return records_from_texts([f"Person {i} is {20 + i % 50} years old." for i in range(n)])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "runs.sqlite3") as opened:
        yield opened


def count_ok(path: Path, run_id: str) -> int:
    """Read through a separate connection, as another process would."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT count(*) FROM rows WHERE run_id = ? AND status = 'ok'", (run_id,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


# -- schema and opening ------------------------------------------------------------------


def test_schema_is_created_in_wal_mode_with_a_version(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "rows", "schema_version"} <= tables
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    Store(store.path).close()  # opening again neither fails nor adds a version
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    conn.close()


def test_a_store_from_a_newer_fanout_is_refused(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    conn.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer fanout"):
        Store(store.path)


def make_version_1(path: Path) -> None:
    """Turn a store into what schema version 1 wrote: no ``rows.timeline_json``."""
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE rows DROP COLUMN timeline_json")
    conn.execute("DELETE FROM schema_version")
    conn.execute("INSERT INTO schema_version VALUES (1, 'then')")
    conn.commit()
    conn.close()


def test_a_version_1_store_gains_the_timeline_column_in_place(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    with Store(path) as store:
        run_id = store.create_run(meta(), records(3))
        old = Row(0, "0", "t", Status.OK, data={"name": "x", "age": 1}, started_s=0.0)
        store.write_rows([row_params(run_id, 0, old)])
    make_version_1(path)
    with Store(path) as store:
        assert store.load_rows(run_id)[0].phases is None  # written before: nothing known
        phases = Phases(wait_sem_s=0.25, wait_limiter_s=3.1, wire_s=0.8, retries_429=2)
        new = Row(1, "1", "t", Status.OK, data={"name": "y", "age": 2}, phases=phases)
        store.write_rows([row_params(run_id, 1, new)])
    conn = sqlite3.connect(path)
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    columns = [info[1] for info in conn.execute("PRAGMA table_info(rows)")]
    conn.close()
    assert versions == [1, SCHEMA_VERSION] and columns.count("timeline_json") == 1
    with Store(path) as store:  # opening again migrates nothing twice
        rows = store.load_rows(run_id)
    assert rows[0].phases is None and rows[0].data == {"name": "x", "age": 1}
    assert rows[1].phases == phases
    assert rows[1].latency_s is None  # never finished: no latency, even with phases


def test_unreadable_stores_are_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a fanout run store"):
        Store(junk)
    other = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StoreError, match="not a fanout run store"):
        Store(other)
    with pytest.raises(StoreError, match="no run store"):
        Store(tmp_path / "missing.sqlite3", create=False)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "no" / "such" / "dir.sqlite3")


def test_store_path_option_env_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FANOUT_STORE", str(tmp_path / "env.sqlite3"))
    assert default_store_path() == tmp_path / "env.sqlite3"
    assert resolve_store_path(None) == tmp_path / "env.sqlite3"
    assert resolve_store_path(str(tmp_path / "x.db")) == tmp_path / "x.db"
    monkeypatch.delenv("FANOUT_STORE")
    assert default_store_path().name == "runs.sqlite3"
    assert "fanout" in str(default_store_path())


def test_only_the_default_location_gets_its_folder_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import platformdirs

    monkeypatch.delenv("FANOUT_STORE", raising=False)
    monkeypatch.setattr(platformdirs, "user_data_path", lambda name: tmp_path / "data" / name)
    Store(default_store_path()).close()
    assert (tmp_path / "data" / "fanout" / "runs.sqlite3").is_file()


# -- runs and ids ------------------------------------------------------------------------


def test_a_new_run_has_every_record_pending(store: Store) -> None:
    run_id = store.create_run(meta(), records(50))
    info = store.get_run(run_id)
    assert info.status == "running" and info.records == 50 and info.pending == 50
    assert info.semaphore == 4 and info.pid == os.getpid()
    rows = store.load_rows(run_id)
    assert [r.index for r in rows] == list(range(50))
    assert all(r.status is Status.PENDING for r in rows)
    assert rows[3].id == "4" and rows[3].text == "Person 3 is 23 years old."
    assert len(store.records_to_resume(run_id)) == 50


def test_run_ids_sort_by_time_and_resolve_by_prefix(store: Store) -> None:
    ids = [store.create_run(meta(), records(2)) for _ in range(3)]
    assert len(set(ids)) == 3
    for run_id in ids:
        assert len(run_id) == len("20261124-183501-a3f9")
        assert store.get_run(run_id).id == run_id
        assert store.get_run(run_id[:-1]).id == run_id or len({i[:-1] for i in ids}) < 3
    listed = [info.id for info in store.list_runs()]
    assert listed == ids[::-1]
    assert store.get_run("last").id == listed[0]
    assert len(store.list_runs(limit=2)) == 2


def test_unknown_and_ambiguous_ids_are_clear_errors(store: Store) -> None:
    first = store.create_run(meta(), records(1))
    store.create_run(meta(), records(1))
    with pytest.raises(StoreError, match="no run 'nope'.*fanout runs"):
        store.get_run("nope")
    with pytest.raises(StoreError, match="ambiguous"):
        store.get_run(first[:4])
    with pytest.raises(StoreError, match="give a run id"):
        store.get_run("  ")
    with pytest.raises(StoreError, match="no run '50%'"):
        store.get_run("50%")


def test_base_urls_are_stored_without_credentials() -> None:
    assert public_base_url("local", "http://127.0.0.1:5000/v1") is None
    assert public_base_url("url", "http://u:pw@host:8000/v1?key=x#f") == "http://host:8000/v1"
    assert public_base_url("openai", "https://api.openai.com/v1") == "https://api.openai.com/v1"


# -- the recorder --------------------------------------------------------------------------


async def test_batches_are_committed_while_the_run_is_going(store: Store) -> None:
    n = 40
    fake = FakeExtract([0.03] * n)
    run = Run(records(n), fake, strategy="gather_semaphore", concurrency=4)
    recorder = RunRecorder(store, run, meta(), interval=0.05)
    run_id = await recorder.start()
    task = asyncio.create_task(run.execute())
    seen_mid_run = 0
    while not task.done():
        await asyncio.sleep(0.02)
        if run.is_running and run.ok >= 12:
            seen_mid_run = await asyncio.to_thread(count_ok, store.path, run_id)
            break
    assert run.is_running, "the run ended before the check; make it longer"
    assert seen_mid_run > 0
    await task
    await recorder.close()
    assert recorder.commits >= 2
    info = store.get_run(run_id)
    assert info.status == "finished" and info.ok == n and info.pending == 0
    assert info.stats is not None and info.stats["ok"] == n and info.stats["records"] == n
    assert info.ended_at is not None
    rows = store.load_rows(run_id)
    assert all(r.status is Status.OK for r in rows)
    assert [r.phases for r in rows] == [
        Phases.from_dict(r.phases.to_dict()) for r in run.rows if r.phases is not None
    ]
    assert all(r.phases is not None and r.phases.wait_sem_s > 0 for r in rows[4:])
    assert rows[5].data == {"name": "P5", "age": 5}
    assert rows[5].attempts == 1 and rows[5].prompt_tokens == 10
    assert rows[5].finished_s is not None and rows[5].delivered_s is not None


async def test_gather_delivery_times_written_at_the_end(store: Store) -> None:
    fake = FakeExtract([0.01] * 10)
    run = Run(records(10), fake, strategy="gather", concurrency=1)
    async with recording(store, run, meta("gather", 1)) as recorder:
        assert recorder is not None
        await run.execute()
    rows = store.load_rows(recorder.run_id)
    assert all(r.delivered_s is not None for r in rows)
    assert all(
        r.delivered_s is not None and r.finished_s is not None and r.delivered_s >= r.finished_s
        for r in rows
    )


async def test_a_stopped_run_is_cancelled_and_keeps_finished_rows(store: Store) -> None:
    fake = FakeExtract([0.01] * 5 + [5.0] * 15, fail={2})
    run = Run(records(20), fake, strategy="gather_semaphore", concurrency=6)
    recorder = RunRecorder(store, run, meta(), interval=0.05)
    run_id = await recorder.start()
    task = asyncio.create_task(run.execute())
    while run.ok + run.failed < 5:  # noqa: ASYNC110 - polling the run is the point
        await asyncio.sleep(0.005)
    run.stop("cancelled (Ctrl-C)")
    await task
    await recorder.close()
    info = store.get_run(run_id)
    assert info.status == "cancelled"
    assert (info.ok, info.failed, info.cancelled, info.pending) == (4, 1, 15, 0)
    assert info.stats is not None and info.stats["stopped_reason"] == "cancelled (Ctrl-C)"
    failed = store.load_rows(run_id)[2]
    assert failed.error == "HTTP 503 server error: busy" and failed.error_kind is not None
    redo = store.records_to_resume(run_id)
    assert len(redo) == 16 and redo[0].index == 2
    assert len(store.records_to_resume(run_id, include_failed=False)) == 15


async def test_a_store_error_is_one_warning_and_the_run_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    warnings: list[str] = []
    fake = FakeExtract([0.01] * 30)
    run = Run(records(30), fake, strategy="gather_semaphore", concurrency=3)
    recorder = RunRecorder(store, run, meta(), interval=0.02, on_warning=warnings.append)
    await recorder.start()
    monkeypatch.setattr(Store, "write_rows", broken)
    stats = await run.execute()
    await recorder.close()
    assert stats.ok == 30
    assert len(warnings) == 1 and "disk is full" in warnings[0]
    assert recorder.failed_writes >= 1


async def test_start_fails_cleanly_before_anything_is_sent(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"garbage" * 1000)
    fake = FakeExtract([0.01])
    run = Run(records(1), fake, strategy="sequential")
    with pytest.raises(StoreError):
        await RunRecorder(bad, run, meta()).start()
    assert fake.calls == []


async def test_a_run_torn_down_without_ending_is_interrupted(store: Store) -> None:
    fake = FakeExtract([0.01] * 3)
    run = Run(records(3), fake, strategy="sequential")
    recorder = RunRecorder(store, run, meta())
    run_id = await recorder.start()
    await recorder.close()  # the run never executed
    assert store.get_run(run_id).stored_status == "interrupted"


async def test_the_api_key_never_reaches_the_store(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    endpoint = Endpoint(
        "url", f"http://user:{FAKE_KEY}@127.0.0.1:9/v1?key={FAKE_KEY}", "m", FAKE_KEY
    )
    dataset = Dataset(path=tmp_path / "d.csv", format="csv", text_column="text", records=records(5))
    fake = FakeExtract([0.001] * 5, fail={1})
    run = Run(records(5), fake, strategy="gather", secrets=endpoint.secrets)
    with Store(path) as store:
        recorder = RunRecorder(
            store,
            run,
            run_meta(
                dataset=dataset,
                schema_spec="Person",
                schema=Person,
                strategy="gather",
                concurrency=1,
                endpoint=endpoint,
                options=ClientOptions(),
            ),
        )
        run_id = await recorder.start()
        await run.execute()
        await recorder.close()
        assert store.get_run(run_id).base_url == "http://127.0.0.1:9/v1"
        # While a connection is open the WAL file still holds the recent pages: check it too.
        assert_no_key_in_store_files(tmp_path, expect_wal=True)
    assert_no_key_in_store_files(tmp_path, expect_wal=False)


def assert_no_key_in_store_files(folder: Path, *, expect_wal: bool) -> None:
    files = [p for p in folder.iterdir() if p.name.startswith("runs.sqlite3")]
    if expect_wal:
        assert any(p.name.endswith("-wal") and p.stat().st_size > 0 for p in files)
    for file in files:
        assert FAKE_KEY.encode() not in file.read_bytes(), file


# -- crashes -------------------------------------------------------------------------------


def test_a_store_written_by_a_killed_process_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from core.store import Store, row_params
        from core.results import Row, Status
        from tests.test_store import meta, records
        store = Store({str(path)!r})
        recs = records(10)
        run_id = store.create_run(meta(), recs)
        rows = [Row(i, r.id, r.text, status=Status.OK, data={{"name": "x", "age": i}})
                for i, r in enumerate(recs[:6])]
        store.write_rows([row_params(run_id, i, row) for i, row in enumerate(rows)])
        store._conn.execute("BEGIN IMMEDIATE")
        store._conn.execute("UPDATE rows SET status = 'ok' WHERE run_id = ?", (run_id,))
        print(run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    run_id = result.stdout.strip()
    with Store(path) as store:
        info = store.get_run(run_id)
        assert info.stored_status == "running" and info.status == "interrupted"
        assert (info.ok, info.pending) == (6, 4)  # the uncommitted update is gone
        assert [r.data for r in store.load_rows(run_id)[:2]] == [
            {"name": "x", "age": 0},
            {"name": "x", "age": 1},
        ]


def test_process_alive() -> None:
    import socket

    here = socket.gethostname()
    assert process_alive(os.getpid(), here, None)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid, here, None)
    assert process_alive(child.pid, "some-other-host", None)  # cannot tell: assume running


def test_a_version_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    """A store written before input columns were kept opens, gains the columns, keeps
    its rows, and records the new version (once, even if opened again)."""
    import core.store as store_module

    db = tmp_path / "old.sqlite3"
    old_schema = store_module._SCHEMA
    for column in ("extra_json", "guessed_json", "timeline_json"):
        old_schema = old_schema.replace(f"    {column:<17} TEXT,\n", "")
    assert "extra_json" not in old_schema
    conn = sqlite3.connect(db)
    conn.executescript(
        old_schema + "INSERT INTO schema_version VALUES (1, '2026-11-01T00:00:00+00:00');"
        "INSERT INTO runs (id, created_at, status, dataset_path, dataset_name, schema_spec, "
        "strategy, concurrency, endpoint_kind, model, mode, records) VALUES ('r1', "
        "'2026-11-01T00:00:00', 'finished', '/d.csv', 'd', 'Person', 'gather', 1, 'local', "
        "'m', 'tools', 1);"
        "INSERT INTO rows (run_id, idx, record_id, text, status, data_json) VALUES "
        "('r1', 0, '1', 'hi', 'ok', '{\"name\": \"A\", \"age\": 1}');"
    )
    conn.close()
    for _ in range(2):
        with Store(db) as store:
            rows = store.load_rows("r1")
            assert rows[0].data == {"name": "A", "age": 1} and dict(rows[0].extra) == {}
            assert store.records_to_resume("r1") == []
    conn = sqlite3.connect(db)
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    columns = {c[1] for c in conn.execute("PRAGMA table_info(rows)")}
    conn.close()
    assert versions == [1, 2] and {"extra_json", "guessed_json", "timeline_json"} <= columns


def test_input_columns_are_stored_and_come_back_for_a_resume(tmp_path: Path) -> None:
    extra = {"invoice_no": "INV-1", "status": "archived", "n": 3, "tags": ["a"]}
    with Store(tmp_path / "s.sqlite3") as store:
        run_id = store.create_run(meta(), [Record(0, "a", "one", extra), Record(1, "b", "two")])
        assert [dict(r.extra) for r in store.records_to_resume(run_id)] == [extra, {}]
        assert [dict(r.extra) for r in store.load_rows(run_id)] == [extra, {}]


def test_a_store_at_this_version_without_the_column_gains_it(tmp_path: Path) -> None:
    # Another build bumped the version too, with columns of its own and not this one.
    path = tmp_path / "runs.sqlite3"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE rows DROP COLUMN timeline_json")
    conn.execute("ALTER TABLE rows DROP COLUMN guessed_json")
    conn.commit()
    conn.close()
    with Store(path) as store:
        run_id = store.create_run(meta(), records(1))
        row = Row(0, "0", "t", Status.OK, data={"name": "x", "age": 1}, phases=Phases(wire_s=0.8))
        store.write_rows([row_params(run_id, 0, row)])
        assert store.load_rows(run_id)[0].phases == Phases(wire_s=0.8)
    conn = sqlite3.connect(path)
    columns = [info[1] for info in conn.execute("PRAGMA table_info(rows)")]
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_version")]
    conn.close()
    assert {"extra_json", "guessed_json", "timeline_json"} <= set(columns)
    assert versions == [SCHEMA_VERSION]


def test_request_ids_and_lenient_are_stored_and_an_older_store_gains_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite3"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE rows DROP COLUMN request_ids_json")
    conn.execute("ALTER TABLE rows DROP COLUMN lenient")
    conn.commit()
    conn.close()
    with Store(path) as store:
        run_id = store.create_run(meta(), records(2))
        row = Row(0, "0", "t", Status.OK, data={"name": "x", "age": 1})
        row.request_ids, row.lenient = ("req-1", "req-2"), True
        plain = Row(1, "1", "u", Status.OK, data={"name": "y", "age": 2})
        store.write_rows([row_params(run_id, 0, row), row_params(run_id, 1, plain)])
        loaded = store.load_rows(run_id)
    assert (loaded[0].request_ids, loaded[0].lenient) == (("req-1", "req-2"), True)
    assert (loaded[1].request_ids, loaded[1].lenient) == ((), False)
