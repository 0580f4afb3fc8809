"""--via batch end to end: the real openai SDK over HTTP to the simulator's Batch API.

The simulator runs in its own process (``LocalServer``), so it outlives a ``fanout
run`` killed with SIGKILL, and its request log (``/v1/fanout/batches``) counts how
many times each row's ``custom_id`` was answered, over every batch it ran.
"""

from __future__ import annotations

import asyncio
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
from typing import Any

import openai
import pytest

from core.batch.job import BatchSettings
from core.batch.ledger import Ledger
from core.batch.requests import custom_id, request_line, split_requests
from core.batch.run import batch_run
from core.cli import main
from core.client import choose_endpoint
from core.dataset import load_dataset, records_from_texts
from core.engine import ClientOptions, Engine
from core.localserver import LocalServer, ServerConfig
from core.models import Person
from core.prepared import PreparedRequest
from core.prices import Price, load_prices
from core.store import Store

ROOT = Path(__file__).resolve().parent.parent
FAKE_KEY = "sk-test-batch-SECRET-5d1c"
FAST = 86400 / 3.0
"""A time scale at which the 24 h window lasts 3 s."""

TICKETS = """
from datetime import date
from typing import Literal
from pydantic import BaseModel

class Line(BaseModel):
    description: str
    quantity: int

class Ticket(BaseModel):
    id: str
    status: Literal["open", "closed", "pending"]
    customer: str | None = None
    due: date | None = None
    lines: list[Line] = []
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    config = ServerConfig(latency=0.0, batch_time_scale=FAST, batch_duration=1800.0, seed=7)
    with LocalServer(config) as running:
        yield running


def batch_log(server: LocalServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.base_url + "/fanout/batches", timeout=5) as response:
        log: dict[str, Any] = json.load(response)
        return log


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def people(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i in range(n):
            text = f"My name is Ann Number{i} and I am {18 + i % 70} years old."
            writer.writerow([f"p{i}", text])
    return path


def run_cli(*argv: str) -> int:
    return main(list(argv))


# -- the simulator's Batch API, through the SDK ---------------------------------------------


def test_simulator_files_and_batches_through_the_sdk(server: LocalServer) -> None:
    async def scenario() -> None:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        prepared = PreparedRequest(Person, __import__("instructor").Mode.TOOLS, "fanout-sim")
        records = records_from_texts(["My name is Zoe Lin and I am 33 years old."] * 3)
        data = b"".join(request_line(prepared, r) for r in records)
        file = await client.files.create(file=("in.jsonl", data), purpose="batch")
        assert (await client.files.retrieve(file.id)).bytes == len(data)
        assert (await client.files.content(file.id)).content == data
        batch = await client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert batch.status == "validating" and batch.expires_at > batch.created_at
        seen = {batch.status}
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            await asyncio.sleep(0.02)
            batch = await client.batches.retrieve(batch.id)
            seen.add(batch.status)
        assert batch.status == "completed" and seen <= {
            "validating",
            "in_progress",
            "finalizing",
            "completed",
        }
        assert batch.created_at <= (batch.in_progress_at or 0) <= (batch.completed_at or 0)
        assert batch.finalizing_at is not None
        assert batch.request_counts is not None and batch.request_counts.completed == 3
        assert batch.error_file_id is None and batch.output_file_id
        lines = (await client.files.content(batch.output_file_id)).text.splitlines()
        answers = [json.loads(line) for line in lines]
        assert sorted(a["custom_id"] for a in answers) == [custom_id(i) for i in range(3)]
        message = answers[0]["response"]["body"]["choices"][0]["message"]
        arguments = json.loads(message["tool_calls"][0]["function"]["arguments"])
        assert arguments == {"name": "Zoe Lin", "age": 33}
        listed = await client.batches.list(limit=100)
        assert batch.id in [b.id for b in listed.data]
        deleted = await client.files.delete(file.id)
        assert deleted.deleted
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve(file.id)
        await client.close()

    asyncio.run(scenario())


def test_simulator_rejects_a_bad_file_and_cancels(server: LocalServer) -> None:
    async def scenario() -> None:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}
        data = (json.dumps(line) + "\n" + json.dumps(line) + "\n").encode()
        file = await client.files.create(file=("dup.jsonl", data), purpose="batch")
        batch = await client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        while batch.status == "validating":
            await asyncio.sleep(0.02)
            batch = await client.batches.retrieve(batch.id)
        assert batch.status == "failed"
        assert batch.errors is not None and batch.errors.data
        assert batch.errors.data[0].code == "duplicate_custom_id" and batch.errors.data[0].line == 2
        with pytest.raises(openai.BadRequestError):
            await client.batches.create(
                input_file_id=file.id, endpoint="/v1/embeddings", completion_window="24h"
            )
        prepared = PreparedRequest(Person, __import__("instructor").Mode.TOOLS, "fanout-sim")
        records = records_from_texts([f"I am {20 + i}" for i in range(40)])
        good = b"".join(request_line(prepared, r) for r in records)
        file = await client.files.create(file=("in.jsonl", good), purpose="batch")
        batch = await client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        cancelled = await client.batches.cancel(batch.id)
        assert cancelled.status == "cancelling"
        while batch.status not in ("cancelled", "completed"):
            await asyncio.sleep(0.02)
            batch = await client.batches.retrieve(batch.id)
        assert batch.status == "cancelled"
        await client.close()

    asyncio.run(scenario())


def test_request_files_split_within_both_limits() -> None:
    prepared = PreparedRequest(Person, __import__("instructor").Mode.TOOLS, "m")
    records = records_from_texts([f"My name is A{i} and I am {i} years old." for i in range(25)])
    one = len(request_line(prepared, records[0]))
    files = list(split_requests(prepared, records, max_requests=10, max_bytes=10_000_000))
    assert [len(f.rows) for f in files] == [10, 10, 5]  # type: ignore[union-attr]
    files = list(split_requests(prepared, records, max_requests=1000, max_bytes=one * 4 + 2))
    assert all(len(f.data) <= one * 4 + 2 for f in files)  # type: ignore[union-attr]
    assert sum(len(f.rows) for f in files) == 25  # type: ignore[union-attr]
    rows = [row for f in files for row in f.rows]  # type: ignore[union-attr]
    assert rows == list(range(25))
    lines = [json.loads(line) for f in files for line in f.data.splitlines()]  # type: ignore[union-attr]
    assert lines[3]["body"] == prepared.body(records[3].text)  # the online body, exactly


def test_batch_price_is_half_the_online_one_unless_given(tmp_path: Path) -> None:
    assert Price(0.15, 0.60).for_batch() == Price(0.075, 0.30)
    own = tmp_path / "prices.toml"
    own.write_text('[models."m"]\ninput = 1.0\noutput = 2.0\nbatch_input = 0.4\n')
    price = load_prices(own)["m"].for_batch()
    assert (price.input_per_million, price.output_per_million) == (0.4, 1.0)
    assert load_prices()["gpt-4o-mini"].for_batch().input_per_million == 0.075


# -- a run via batch against the same run online ----------------------------------------------


def test_a_1000_row_batch_run_extracts_what_the_online_run_does(
    tmp_path: Path, server: LocalServer
) -> None:
    dataset = ROOT / "datasets" / "people_1000.csv"
    db = tmp_path / "runs.sqlite3"
    online, batch = tmp_path / "online.csv", tmp_path / "batch.csv"
    common = ["--base-url", server.base_url, "--store", str(db), "--quiet"]
    assert run_cli("run", str(dataset), "--out", str(online), *common) == 0
    before = batch_log(server)
    code = run_cli(
        "run", str(dataset), "--via", "batch", "--batch-max-requests", "400",
        "--batch-poll", "0.1", "--out", str(batch), *common,
    )  # fmt: skip
    assert code == 0
    rows_online, rows_batch = read_csv(online), read_csv(batch)
    assert len(rows_batch) == 1000 and all(r["status"] == "ok" for r in rows_batch)
    fields = [c for c in rows_online[0] if c.startswith("data.")] + ["id", "guessed_fields"]
    assert fields[:2] == ["data.name", "data.age"]
    assert [{f: r[f] for f in fields} for r in rows_batch] == [
        {f: r[f] for f in fields} for r in rows_online
    ]
    log = batch_log(server)
    new = [b for b in log["batches"] if b["id"] not in {x["id"] for x in before["batches"]}]
    assert sorted(b["lines"] for b in new) == [200, 400, 400]
    with Store(db, create=False) as store:
        info = store.get_run("last")
        assert (info.ok, info.failed, info.pending, info.options["via"]) == (1000, 0, 0, "batch")
    ledger = Ledger(db)
    parts = ledger.parts(info.id)
    ledger.close()
    assert [p.status for p in parts] == ["completed"] * 3 and all(p.collected for p in parts)
    assert {p.batch_id for p in parts} == {b["id"] for b in new}


def test_own_schema_with_odd_fields_gives_the_same_values_via_batch(
    tmp_path: Path, server: LocalServer
) -> None:
    schema = tmp_path / "tickets.py"
    schema.write_text(TICKETS)
    data = tmp_path / "tickets.jsonl"
    with data.open("w") as handle:
        for i in range(60):
            text = f"Ticket T-{i} status: {['open', 'closed', 'pending'][i % 3]}; customer Jo {i}"
            handle.write(json.dumps({"id": f"t{i}", "text": text, "status": "archived"}) + "\n")
    out = {}
    for via in ("online", "batch"):
        out[via] = tmp_path / f"{via}.jsonl"
        code = run_cli(
            "run", str(data), "--schema", f"{schema}:Ticket", "--base-url", server.base_url,
            "--via", via, "--batch-poll", "0.1", "--mode", "json_schema", "--no-store",
            "--quiet", "--out", str(out[via]),
        )  # fmt: skip
        assert code == 0
    online = [json.loads(line) for line in out["online"].read_text().splitlines()]
    batch = [json.loads(line) for line in out["batch"].read_text().splitlines()]
    assert [r["data"] for r in batch] == [r["data"] for r in online]
    assert [r["input"] for r in batch] == [{"status": "archived"}] * 60
    assert {r["data"]["status"] for r in batch} == {"open", "closed", "pending"}


# -- faults: expired batches, failed lines, a rejected file -----------------------------------


@pytest.fixture
def faulty(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    config = ServerConfig(latency=0.0, batch_time_scale=FAST, seed=3, **request.param)
    with LocalServer(config) as running:
        yield running


@pytest.mark.parametrize("faulty", [{"batch_expire_rate": 1.0}], indirect=True)
def test_an_expired_batch_ends_its_unanswered_rows_with_a_reason_or_online(
    tmp_path: Path, faulty: LocalServer
) -> None:
    dataset = people(tmp_path / "p.csv", 40)
    base = ["run", str(dataset), "--via", "batch", "--batch-poll", "0.1", "--quiet"]
    base += ["--base-url", faulty.base_url, "--no-store"]
    out = tmp_path / "expired.csv"
    assert run_cli(*base, "--out", str(out)) == 1
    rows = read_csv(out)
    expired = [r for r in rows if r["status"] == "failed"]
    assert len(rows) == 40 and len(expired) == 20
    assert all(r["error_kind"] == "expired" and "batch_expired" in r["error"] for r in expired)
    assert all(r["status"] == "ok" for r in rows if r not in expired)

    out = tmp_path / "finished.csv"
    assert run_cli(*base, "--finish-online", "--out", str(out)) == 0
    rows = read_csv(out)
    assert all(r["status"] == "ok" for r in rows)
    assert sorted(r["attempts"] for r in rows).count("2") == 20  # the batch's try, then online
    with urllib.request.urlopen(faulty.base_url + "/health", timeout=5) as response:
        assert json.load(response)["counts"]["completions"] >= 20


@pytest.mark.parametrize(
    "faulty", [{"batch_line_error_rate": 0.25, "invalid_rate": 0.15}], indirect=True
)
def test_failed_and_invalid_lines_are_rows_with_reasons(
    tmp_path: Path, faulty: LocalServer
) -> None:
    dataset = people(tmp_path / "p.csv", 80)
    out = tmp_path / "out.csv"
    code = run_cli(
        "run", str(dataset), "--via", "batch", "--batch-poll", "0.1", "--quiet",
        "--base-url", faulty.base_url, "--no-store", "--out", str(out),
    )  # fmt: skip
    assert code == 1
    rows = read_csv(out)
    failed = [r for r in rows if r["status"] == "failed"]
    kinds = {r["error_kind"] for r in failed}
    assert len(rows) == 80 and failed and kinds <= {"5xx", "validation"} and len(kinds) == 2
    assert all(r["error"] and r["attempts"] == "1" for r in failed)
    assert all("HTTP 5" in r["error"] for r in failed if r["error_kind"] == "5xx")
    (batch,) = [b for b in batch_log(faulty)["batches"] if b["lines"] == 80]
    server_failed = batch["request_counts"]["failed"]
    assert server_failed == sum(1 for r in failed if r["error_kind"] == "5xx")


@pytest.mark.parametrize("faulty", [{"batch_reject_rate": 1.0}], indirect=True)
def test_a_batch_that_fails_validation_fails_its_rows_with_the_reason(
    tmp_path: Path, faulty: LocalServer
) -> None:
    dataset = people(tmp_path / "p.csv", 10)
    out = tmp_path / "out.csv"
    code = run_cli(
        "run", str(dataset), "--via", "batch", "--batch-poll", "0.1", "--quiet",
        "--base-url", faulty.base_url, "--no-store", "--out", str(out),
    )  # fmt: skip
    assert code == 1
    rows = read_csv(out)
    assert all(r["status"] == "failed" and "failed validation" in r["error"] for r in rows)


# -- cancel, and resume after kill -9 -----------------------------------------------------------


@pytest.fixture
def slow() -> Iterator[LocalServer]:
    config = ServerConfig(latency=0.0, batch_time_scale=600.0, batch_duration=2000.0, seed=5)
    with LocalServer(config) as running:
        yield running


def test_cancelling_a_batch_run_cancels_its_batches(tmp_path: Path, slow: LocalServer) -> None:
    records = records_from_texts([f"My name is Bo{i} and I am 40 years old." for i in range(30)])

    async def scenario() -> None:
        choice = choose_endpoint(slow.base_url, "fanout-sim")
        async with Engine(choice, options=ClientOptions()) as engine:
            settings = BatchSettings(poll_min=0.05, poll_max=0.1, max_requests=10)
            async with batch_run(
                engine, records, Person, settings=settings, concurrency=4, store_path=None
            ) as run:
                task = asyncio.create_task(run.execute())
                while not [p for p in run.job.parts.values() if p.status == "in_progress"]:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                run.stop("cancelled (test)")
                stats = await task
                assert stats.cancelled == 30 and stats.ok == 0
                assert {p.status for p in run.job.parts.values()} <= {"cancelling", "cancelled"}
                assert len(run.job.parts) == 3

    asyncio.run(scenario())
    statuses = [b["status"] for b in batch_log(slow)["batches"]]
    assert len(statuses) == 3 and set(statuses) <= {"cancelling", "cancelled"}


def test_kill_9_while_polling_then_resume_submits_no_row_twice(
    tmp_path: Path, slow: LocalServer
) -> None:
    n = 300
    dataset = people(tmp_path / "p.csv", n)
    db = tmp_path / "runs.sqlite3"
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY, "PYTHONPATH": str(ROOT)}
    env.pop("FANOUT_STORE", None)
    command = [sys.executable, "-m", "tui", "run", str(dataset), "--via", "batch"]
    command += ["--batch-max-requests", "120", "--batch-poll", "0.1", "--store", str(db)]
    command += ["--base-url", slow.base_url, "--quiet", "--out", str(tmp_path / "killed.csv")]
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
            if db.exists() and _batches_in_progress(db) == 3:
                break
        else:
            raise AssertionError(f"no batches in progress (exit {child.poll()})")
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    log = batch_log(slow)
    assert len(log["batches"]) == 3 and log["twice"] == []
    for file in tmp_path.glob("runs.sqlite3*"):
        assert FAKE_KEY.encode() not in file.read_bytes(), file
    with Store(db, create=False) as store:
        info = store.get_run("last")
        assert info.status == "interrupted" and info.ok == 0

    out = tmp_path / "resumed.csv"
    resume = [sys.executable, "-m", "tui", "resume", info.id, "--store", str(db)]
    resume += ["--quiet", "--out", str(out), "--batch-poll", "0.1"]
    done = subprocess.run(resume, cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert b"300 of them wait on batches already submitted" in done.stderr
    rows = read_csv(out)
    assert len(rows) == n and all(r["status"] == "ok" for r in rows)
    assert [r["data.age"] for r in rows] == [str(18 + i % 70) for i in range(n)]
    log = batch_log(slow)
    assert len(log["batches"]) == 3  # no batch created again
    assert log["twice"] == [] and len(log["answered"]) == n
    with Store(db, create=False) as store:
        info = store.get_run(info.id)
        assert (info.status, info.ok, info.pending, info.resumes) == ("finished", n, 0, 1)
    listing = subprocess.run(
        [sys.executable, "-m", "tui", "runs", "--store", str(db), "--json"],
        cwd=ROOT, env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    (entry,) = json.loads(listing.stdout)
    assert entry["via"] == "batch" and [b["status"] for b in entry["batches"]] == ["completed"] * 3


def _start_batch_run(tmp_path: Path, slow: LocalServer, n: int) -> subprocess.Popen[bytes]:
    dataset = people(tmp_path / "p.csv", n)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FANOUT_STORE", None)
    command = [sys.executable, "-m", "tui", "run", str(dataset), "--via", "batch", "--quiet"]
    command += ["--batch-poll", "0.1", "--store", str(tmp_path / "runs.sqlite3")]
    command += ["--base-url", slow.base_url, "--out", str(tmp_path / "first.csv")]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _wait_answered(slow: LocalServer, child: subprocess.Popen[bytes], count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
        if len(batch_log(slow)["answered"]) >= count:
            return
    raise AssertionError(f"the batch did not get to {count} rows (exit {child.poll()})")


def test_ctrl_c_cancels_the_batches_and_resume_sends_only_what_they_never_answered(
    tmp_path: Path, slow: LocalServer
) -> None:
    child = _start_batch_run(tmp_path, slow, 100)
    try:
        _wait_answered(slow, child, 20)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=30) == 130
    finally:
        if child.poll() is None:
            child.kill()
    deadline = time.monotonic() + 10
    while batch_log(slow)["batches"][0]["status"] != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    answered = set(batch_log(slow)["answered"])
    assert 20 <= len(answered) < 100
    first = read_csv(tmp_path / "first.csv")
    assert {r["status"] for r in first} == {"cancelled"}  # stopped before the batch ended

    out = tmp_path / "resumed.csv"
    code = run_cli("resume", "last", "--store", str(tmp_path / "runs.sqlite3"), "--quiet",
                   "--batch-poll", "0.1", "--out", str(out))  # fmt: skip
    assert code == 0
    assert [r["status"] for r in read_csv(out)] == ["ok"] * 100
    log = batch_log(slow)
    assert log["twice"] == [] and len(log["answered"]) == 100
    (cancelled, again) = log["batches"]
    assert cancelled["status"] == "cancelled" and again["status"] == "completed"
    assert again["lines"] == 100 - len(answered)  # only the rows the cancelled batch never ran


def test_a_closed_terminal_leaves_the_batches_running_for_resume(
    tmp_path: Path, slow: LocalServer
) -> None:
    child = _start_batch_run(tmp_path, slow, 60)
    try:
        _wait_answered(slow, child, 3)
        child.send_signal(signal.SIGHUP)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    (batch,) = batch_log(slow)["batches"]
    assert batch["status"] in ("in_progress", "finalizing", "completed")  # not cancelled
    out = tmp_path / "resumed.csv"
    code = run_cli("resume", "last", "--store", str(tmp_path / "runs.sqlite3"), "--quiet",
                   "--batch-poll", "0.1", "--out", str(out))  # fmt: skip
    assert code == 0
    assert [r["status"] for r in read_csv(out)] == ["ok"] * 60
    log = batch_log(slow)
    assert len(log["batches"]) == 1 and log["twice"] == [] and len(log["answered"]) == 60


def _batches_in_progress(db: Path) -> int:
    try:
        conn = sqlite3.connect(db, timeout=1)
        try:
            found = conn.execute(
                "SELECT count(*) FROM batches WHERE status = 'in_progress'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(found[0])


def test_resume_adopts_a_batch_whose_id_was_never_recorded(
    tmp_path: Path, slow: LocalServer
) -> None:
    """Killed after the batch was created but before its id was written: resume finds it
    by its input file and does not create another; a part whose file was uploaded but whose
    batch was never created gets exactly one batch."""
    dataset = load_dataset(people(tmp_path / "p.csv", 20))
    db = tmp_path / "runs.sqlite3"
    prepared = PreparedRequest(Person, __import__("instructor").Mode.TOOLS, "fanout-sim")
    from core.recorder import run_meta

    async def setup() -> tuple[str, str]:
        client = openai.AsyncOpenAI(base_url=slow.base_url, api_key="x", max_retries=0)
        first = b"".join(request_line(prepared, r) for r in dataset.records[:10])
        second = b"".join(request_line(prepared, r) for r in dataset.records[10:])
        f1 = await client.files.create(file=("a.jsonl", first), purpose="batch")
        f2 = await client.files.create(file=("b.jsonl", second), purpose="batch")
        await client.batches.create(
            input_file_id=f1.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        await client.close()
        return f1.id, f2.id

    f1, f2 = asyncio.run(setup())

    async def endpoint() -> Any:
        async with Engine(choose_endpoint(slow.base_url, "fanout-sim")) as engine:
            return engine.endpoint

    meta = run_meta(
        dataset=dataset, schema_spec="Person", schema=Person, strategy="as_completed",
        concurrency=4, endpoint=asyncio.run(endpoint()), options=ClientOptions(),
    )  # fmt: skip
    meta = meta.__class__(**{**meta.__dict__, "options": {**meta.options, "via": "batch"}})
    with Store(db) as store:
        run_id = store.create_run(meta, dataset.records)
        store.write_rows(end=(run_id, "interrupted", None))  # as a killed process leaves it
    ledger = Ledger(db)
    ledger.add(run_id, 1, 0, range(10))
    ledger.update(run_id, 1, input_file_id=f1, status="uploaded")
    ledger.add(run_id, 2, 0, range(10, 20))
    ledger.update(run_id, 2, input_file_id=f2, status="uploaded")
    ledger.close()
    before = len(batch_log(slow)["batches"])
    out = tmp_path / "out.csv"
    code = run_cli("resume", run_id, "--store", str(db), "--quiet", "--batch-poll", "0.1",
                   "--out", str(out))  # fmt: skip
    assert code == 0
    assert all(r["status"] == "ok" for r in read_csv(out))
    log = batch_log(slow)
    assert len(log["batches"]) == before + 1  # only part 2's batch is new
    assert log["twice"] == [] and len(log["answered"]) == 20


def test_a_create_whose_answer_was_lost_is_not_made_twice(
    tmp_path: Path, server: LocalServer
) -> None:
    """The create reaches the API but its answer is lost (a timeout): the job finds the batch
    by its input file instead of creating a second one from the same file."""
    records = records_from_texts([f"My name is Cy{i} and I am 50 years old." for i in range(12)])
    before = len(batch_log(server)["batches"])

    async def scenario() -> None:
        async with Engine(choose_endpoint(server.base_url, "fanout-sim")) as engine:
            settings = BatchSettings(poll_min=0.05, poll_max=0.1)
            async with batch_run(
                engine, records, Person, settings=settings, concurrency=2, store_path=None
            ) as run:
                real = run.job.api.batches.create
                lost = []

                async def create_then_lose_the_answer(**kwargs: Any) -> Any:
                    batch = await real(**kwargs)
                    if not lost:
                        lost.append(batch.id)
                        raise openai.APITimeoutError(
                            request=__import__("httpx2").Request("POST", "http://x")
                        )
                    return batch

                run.job.api.batches.create = create_then_lose_the_answer  # type: ignore[method-assign]
                stats = await run.execute()
                assert stats.ok == 12
                assert [p.batch_id for p in run.job.parts.values()] == lost

    asyncio.run(scenario())
    assert len(batch_log(server)["batches"]) == before + 1


def test_a_batch_over_the_budget_is_refused_before_anything_is_sent(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."fanout-sim"]\ninput = 100.0\noutput = 100.0\n')
    dataset = people(tmp_path / "p.csv", 50)
    before = batch_log(server)
    code = run_cli(
        "run", str(dataset), "--via", "batch", "--base-url", server.base_url, "--no-store",
        "--quiet", "--prices", str(prices), "--budget", "0.05",
    )  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert "over --budget $0.0500" in error and "at batch prices" in error
    after = batch_log(server)
    assert (after["files"], len(after["batches"])) == (before["files"], len(before["batches"]))


def test_sim_batch_options_reach_the_built_in_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = people(tmp_path / "p.csv", 5)
    out = tmp_path / "out.csv"
    base = ["run", str(dataset), "--via", "batch", "--latency", "0", "--batch-poll", "0.1"]
    code = run_cli(*base, "--sim-batch-reject-rate", "1", "--no-store", "--out", str(out))
    assert code == 1
    assert all("failed validation" in r["error"] for r in read_csv(out))
    assert run_cli(*base, "--sim-batch-expire-rate", "1.5", "--no-store") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line == ("fanout: error: batch expire rate must be a fraction between 0 and 1, got 1.5")


def test_resume_online_of_a_batch_run_with_live_batches_warns(tmp_path: Path) -> None:
    from core.batch.cli import online_over_batches
    from core.recorder import run_meta

    dataset = load_dataset(people(tmp_path / "p.csv", 4))

    async def endpoint() -> Any:
        async with Engine(choose_endpoint("http://127.0.0.1:9/v1", "m")) as engine:
            return engine.endpoint

    meta = run_meta(
        dataset=dataset, schema_spec="Person", schema=Person, strategy="as_completed",
        concurrency=4, endpoint=asyncio.run(endpoint()), options=ClientOptions(),
    )  # fmt: skip
    meta = meta.__class__(**{**meta.__dict__, "options": {"via": "batch"}})
    db = tmp_path / "runs.sqlite3"
    with Store(db) as store:
        run_id = store.create_run(meta, dataset.records)
        info = store.get_run(run_id)
    ledger = Ledger(db)
    ledger.add(run_id, 1, 0, range(4))
    ledger.update(run_id, 1, input_file_id="file-1", batch_id="batch-1", status="in_progress")
    note = online_over_batches(db, info, "online")
    assert note is not None and "1 batch(es) that may still answer (4 rows)" in note
    assert online_over_batches(db, info, "batch") is None
    ledger.update(run_id, 1, status="completed")
    ledger.close()
    assert online_over_batches(db, info, "online") is None
