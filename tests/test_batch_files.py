"""--via batch deletes its files at the provider once the rows are stored.

The real openai SDK over HTTP to the simulator's Batch API (its ``GET /v1/files`` is what
proves a deletion); a refused delete goes through a small forwarding proxy on loopback
that answers 403 to ``DELETE /files/...`` (a key without write access to files).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import instructor
import openai
import pytest

from core.batch.job import BatchSettings
from core.batch.ledger import Ledger
from core.batch.requests import request_line
from core.batch.run import batch_run
from core.client import choose_endpoint
from core.dataset import load_dataset
from core.engine import ClientOptions, Engine
from core.localserver import LocalServer, ServerConfig
from core.models import Person
from core.prepared import PreparedRequest
from core.recorder import run_meta
from core.store import Store
from tests.test_batch import FAST, people, read_csv, run_cli


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    config = ServerConfig(latency=0.0, batch_time_scale=FAST, batch_duration=1800.0, seed=11)
    with LocalServer(config) as running:
        yield running


def listed_files(base_url: str) -> set[str]:
    with urllib.request.urlopen(base_url + "/files", timeout=5) as response:
        return {f["id"] for f in json.load(response)["data"]}


def file_ids(db: Path, run_id: str) -> set[str]:
    ledger = Ledger(db)
    try:
        parts = ledger.parts(run_id)
    finally:
        ledger.close()
    return {f for p in parts for f in (p.input_file_id, p.output_file_id, p.error_file_id) if f}


def last_run(db: Path) -> str:
    with Store(db, create=False) as store:
        return store.get_run("last").id


def parts_of(db: Path, run_id: str) -> list[Any]:
    ledger = Ledger(db)
    try:
        return ledger.parts(run_id)
    finally:
        ledger.close()


def test_a_finished_batch_run_deletes_its_files_unless_kept(
    tmp_path: Path, server: LocalServer
) -> None:
    dataset = people(tmp_path / "p.csv", 30)
    db = tmp_path / "runs.sqlite3"
    base = ["run", str(dataset), "--via", "batch", "--batch-max-requests", "20"]
    base += ["--batch-poll", "0.1", "--quiet", "--base-url", server.base_url, "--store", str(db)]
    assert run_cli(*base, "--out", str(tmp_path / "a.csv")) in (0, 1)
    deleted_run = last_run(db)
    ids = file_ids(db, deleted_run)
    parts = parts_of(db, deleted_run)
    assert len(parts) == 2 and len(ids) >= 4  # two inputs, two outputs at least
    assert not ids & listed_files(server.base_url)
    assert all(p.files_deleted_at for p in parts)
    assert len(read_csv(tmp_path / "a.csv")) == 30

    assert run_cli(*base, "--batch-keep-files", "--out", str(tmp_path / "b.csv")) in (0, 1)
    kept_run = last_run(db)
    kept = file_ids(db, kept_run)
    assert len(kept) >= 4 and kept <= listed_files(server.base_url)
    assert not any(p.files_deleted_at for p in parts_of(db, kept_run))


def test_no_store_deletes_the_files_once_the_rows_are_answered(
    tmp_path: Path, server: LocalServer
) -> None:
    before = listed_files(server.base_url)
    dataset = people(tmp_path / "p.csv", 10)
    code = run_cli(
        "run", str(dataset), "--via", "batch", "--batch-poll", "0.1", "--quiet",
        "--base-url", server.base_url, "--no-store", "--out", str(tmp_path / "o.csv"),
    )  # fmt: skip
    assert code == 0
    assert listed_files(server.base_url) <= before  # nothing of this run left


async def _completed_batch(base_url: str, records: list[Any]) -> tuple[str, Any]:
    """An uploaded file and its batch, run to completion (as a session killed after the
    batch ended, before it stored the rows, leaves them)."""
    prepared = PreparedRequest(Person, instructor.Mode.TOOLS, "fanout-sim")
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    try:
        data = b"".join(request_line(prepared, r) for r in records)
        file = await client.files.create(file=("in.jsonl", data), purpose="batch")
        batch = await client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        while batch.status != "completed":
            await asyncio.sleep(0.02)
            batch = await client.batches.retrieve(batch.id)
        return file.id, batch
    finally:
        await client.close()


def test_a_resume_reads_a_collected_batch_whose_rows_were_never_stored(
    tmp_path: Path, server: LocalServer
) -> None:
    """The ledger says the part was collected, but the process died before the rows were
    stored: its files must still be there, and the resume reads the output file, stores
    the rows, then deletes the files."""
    dataset = load_dataset(people(tmp_path / "p.csv", 12))
    db = tmp_path / "runs.sqlite3"
    file_id, batch = asyncio.run(_completed_batch(server.base_url, list(dataset.records)))

    async def endpoint() -> Any:
        async with Engine(choose_endpoint(server.base_url, "fanout-sim")) as engine:
            return engine.endpoint

    meta = run_meta(
        dataset=dataset, schema_spec="Person", schema=Person, strategy="as_completed",
        concurrency=4, endpoint=asyncio.run(endpoint()), options=ClientOptions(),
    )  # fmt: skip
    meta = meta.__class__(**{**meta.__dict__, "options": {**meta.options, "via": "batch"}})
    with Store(db) as store:
        run_id = store.create_run(meta, dataset.records)
        store.write_rows(end=(run_id, "interrupted", None))
    ledger = Ledger(db)
    ledger.add(run_id, 1, 0, range(12))
    ledger.update(
        run_id, 1, input_file_id=file_id, batch_id=batch.id, status="completed",
        output_file_id=batch.output_file_id, error_file_id=batch.error_file_id, collected=1,
    )  # fmt: skip
    ledger.close()
    ids = file_ids(db, run_id)

    async def clean_up_before_storing() -> int:
        async with (
            Engine(choose_endpoint(server.base_url, "fanout-sim")) as engine,
            batch_run(
                engine, dataset.records, Person, settings=BatchSettings(), concurrency=4,
                store_path=db,
            ) as run,
        ):  # fmt: skip
            run.job.bind(run_id, 1, range(12))
            return await run.job.clean_up()

    assert asyncio.run(clean_up_before_storing()) == 0  # its rows are not stored
    assert ids <= listed_files(server.base_url)

    out = tmp_path / "out.csv"
    code = run_cli("resume", run_id, "--store", str(db), "--quiet", "--batch-poll", "0.1",
                   "--out", str(out))  # fmt: skip
    assert code in (0, 1)
    rows = read_csv(out)
    assert len(rows) == 12 and sum(r["status"] == "ok" for r in rows) >= 10
    assert all(r["status"] in ("ok", "failed") for r in rows)
    (part,) = parts_of(db, run_id)
    assert part.batch_id == batch.id and part.files_deleted_at  # no new batch; cleaned
    assert not ids & listed_files(server.base_url)


class _RefuseDeletes(BaseHTTPRequestHandler):
    """Forwards every request to ``upstream``; ``DELETE /files/...`` gets a 403."""

    upstream = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length) if length else None
        if self.command == "DELETE" and "/files/" in self.path:
            status, data = 403, json.dumps(
                {"error": {"message": "You do not have write access to files.",
                           "type": "invalid_request_error", "code": "forbidden"}}
            ).encode()  # fmt: skip
            kind = "application/json"
        else:
            path = self.path.removeprefix("/v1")
            request = urllib.request.Request(self.upstream + path, body, method=self.command)
            if self.headers.get("content-type"):
                request.add_header("content-type", self.headers["content-type"])
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, data = response.status, response.read()
                    kind = response.headers.get("content-type", "application/json")
            except urllib.error.HTTPError as exc:
                status, data = exc.code, exc.read()
                kind = exc.headers.get("content-type", "application/json")
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _forward  # noqa: N815


@contextmanager
def refusing_deletes(upstream: str) -> Iterator[str]:
    handler = type("Handler", (_RefuseDeletes,), {"upstream": upstream})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}/v1"
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(5)


def test_a_refused_delete_is_one_warning_and_the_run_ends_ok(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = people(tmp_path / "p.csv", 8)
    db = tmp_path / "runs.sqlite3"
    out = tmp_path / "o.csv"
    with refusing_deletes(server.base_url) as base_url:
        code = run_cli(
            "run", str(dataset), "--via", "batch", "--batch-poll", "0.1", "--quiet",
            "--base-url", base_url, "--store", str(db), "--out", str(out),
        )  # fmt: skip
    assert code in (0, 1)
    assert len(read_csv(out)) == 8
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "cannot delete its files" in line]
    assert len(warnings) == 1 and "HTTP 403" in warnings[0], err
    run_id = last_run(db)
    assert file_ids(db, run_id) <= listed_files(server.base_url)  # all still there
    (part,) = parts_of(db, run_id)
    assert part.files_deleted_at is None  # not recorded as deleted: a resume tries again
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM rows WHERE run_id = ?", (run_id,))
        assert stored.fetchone()[0] == 8


def test_a_store_from_before_the_column_gains_it(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:  # the batches table as main created it
        conn.execute(
            "CREATE TABLE batches (run_id TEXT NOT NULL, part INTEGER NOT NULL, session INTEGER "
            "NOT NULL DEFAULT 0, rows_json TEXT NOT NULL, input_file_id TEXT, batch_id TEXT, "
            "status TEXT NOT NULL, total INTEGER NOT NULL DEFAULT 0, completed INTEGER NOT "
            "NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, output_file_id TEXT, "
            "error_file_id TEXT, collected INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT "
            "NULL, updated_at TEXT NOT NULL, PRIMARY KEY (run_id, part))"
        )
        conn.execute(
            "INSERT INTO batches VALUES ('r', 1, 0, '[0, 1]', 'file-1', 'batch-1', "
            "'completed', 2, 2, 0, 'file-2', NULL, 1, 't0', 't0')"
        )
    ledger = Ledger(db)
    try:
        (part,) = ledger.parts("r")
        assert (part.batch_id, part.files_deleted_at) == ("batch-1", None)
        part = ledger.update("r", 1, files_deleted_at="t1")
        assert part.files_deleted_at == "t1" and part.to_dict()["files_deleted_at"] == "t1"
    finally:
        ledger.close()
