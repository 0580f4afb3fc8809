"""The headless CLI in-process: commands, outputs, exit codes, and one clear message per mistake.

Every command is called through the real entry point (``tui.__main__.main``),
as ``fanout ...`` would be, with output captured. Runs go to the local
simulator on loopback: one started per module (it wants an API key, so the
refused-key case costs nothing extra), or the built-in one fanout starts
itself where that is what is being tested.
"""

from __future__ import annotations

import csv
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.localserver import LocalServer, ServerConfig
from core.options import bundled_datasets_dir
from core.store import Store
from core.strategies import STRATEGIES
from tui.__main__ import main

KEY = "sk-test-cli-0123456789abcdef"
PEOPLE = {
    "1": ("John", 20),
    "2": ("Mary", 21),
    "3": ("Bob", 22),
    "4": ("Alice", 23),
    "5": ("Jane", 24),
    "6": ("Joe", 25),
    "7": ("Jill", 26),
}
BENCH_KEYS = {
    "strategy",
    "concurrency",
    "records",
    "ok",
    "failed",
    "elapsed_s",
    "first_result_s",
    "p50_latency_s",
    "p95_latency_s",
    "throughput_rps",
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A simulator that answers at once and only with ``Authorization: Bearer KEY``."""
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0, api_key=KEY)) as running:
        yield running


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> str:
    """OPENAI_API_KEY set to the key the module's simulator accepts."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def fanout(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``fanout ARGV`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help, or a usage error it reported
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_one_error(code: int, err: str, *mentions: str) -> str:
    """Exit 2 and exactly one error line, naming what is wrong; no traceback. Returns the line."""
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if re.match(r"fanout( \w+)?: error: ", line)]
    assert len(lines) == 1, err
    (line,) = lines
    assert len([x for x in err.splitlines() if "error:" in x]) == 1, err
    if not line.startswith("fanout: error: "):  # argparse's own form comes after its usage
        assert err.startswith("usage: "), err
    for mention in mentions:
        assert mention in line, f"{mention!r} not in {line!r}"
    return line


# -- commands and outputs -----------------------------------------------------------------


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = fanout(capsys, "--help")
    assert code == 0
    listed = set(re.findall(r"^  (\w+)\s{2,}\S", out, flags=re.MULTILINE))
    assert {"run", "bench", "serve", "runs", "export", "resume"} <= listed, out
    code, out, _ = fanout(capsys, "run", "--help")
    assert code == 0
    assert "--out" in out and "--strategy" in out


def test_run_bundled_people_writes_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The article's 7 texts through the built-in simulator: 7 ok rows, names and ages right."""
    out = tmp_path / "x.csv"
    code, stdout, err = fanout(capsys, "run", "--latency", "0", "--jitter", "0", "--out", str(out))
    assert code == 0, err
    assert stdout == ""
    rows = read_csv(out)
    assert [row["id"] for row in rows] == list(PEOPLE)
    for row in rows:
        assert row["status"] == "ok", row
        assert (row["data.name"], int(row["data.age"])) == PEOPLE[row["id"]]
    code, stdout, _ = fanout(capsys, "runs", "--json")
    (run,) = json.loads(stdout)
    assert (run["status"], run["records"], run["ok"], run["failed"]) == ("finished", 7, 7, 0)


def test_run_without_out_writes_jsonl_to_stdout(
    server: LocalServer, keyed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = fanout(capsys, "run", "--base-url", server.base_url, "--quiet")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == len(PEOPLE)
    by_id = {record["id"]: record for record in records}
    assert set(by_id) == set(PEOPLE)
    for rid, (name, age) in PEOPLE.items():
        assert by_id[rid]["status"] == "ok"
        assert by_id[rid]["data"] == {"name": name, "age": age}
    assert "{" not in err  # results go to stdout only; stderr has the summary


def test_bench_json_has_one_object_per_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    people = str(bundled_datasets_dir() / "people.csv")
    argv = ["bench", people, "--latency", "0.05", "--jitter", "0", "--concurrency", "2", "--json"]
    code, out, err = fanout(capsys, *argv)
    assert code == 0, err
    entries = json.loads(out)
    assert isinstance(entries, list)
    assert [entry["strategy"] for entry in entries] == list(STRATEGIES)
    for entry in entries:
        assert set(entry) >= BENCH_KEYS, sorted(BENCH_KEYS - set(entry))
        assert (entry["records"], entry["ok"], entry["failed"]) == (7, 7, 0)
        assert entry["elapsed_s"] > 0 and entry["throughput_rps"] > 0
        assert 0 < entry["p50_latency_s"] <= entry["p95_latency_s"]
    semaphored = {e["strategy"]: e["concurrency"] for e in entries if "semaphore" in e["strategy"]}
    assert semaphored == {"gather_semaphore": 2, "as_completed_semaphore": 2}


def test_exit_code_1_when_some_rows_fail(
    server: LocalServer, keyed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model that never accepts Bob: that row fails (validation), the others are ok: exit 1."""
    schema = tmp_path / "picky.py"
    schema.write_text(
        "from pydantic import BaseModel, field_validator\n\n\n"
        "class Picky(BaseModel):\n"
        "    name: str\n"
        "    age: int\n\n"
        "    @field_validator('name')\n"
        "    @classmethod\n"
        "    def not_bob(cls, value: str) -> str:\n"
        "        if value == 'Bob':\n"
        "            raise ValueError('Bob is not accepted')\n"
        "        return value\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    code, _, err = fanout(
        capsys,
        "run",
        "--base-url",
        server.base_url,
        "--schema",
        f"{schema}:Picky",
        "--validation-retries",
        "0",
        "--max-retries",
        "0",
        "--out",
        str(out),
    )
    assert code == 1, err
    rows = {row["id"]: row for row in read_csv(out)}
    assert rows["3"]["status"] == "failed"
    assert rows["3"]["error_kind"] == "validation"
    assert "Bob is not accepted" in rows["3"]["error"]
    assert all(rows[rid]["status"] == "ok" for rid in PEOPLE if rid != "3")


# -- bad input: one clear message, exit 2 ------------------------------------------------------

BROKEN_SCHEMA = "raise RuntimeError('this schema module is broken')\n"
NOT_A_MODEL = "class Thing:\n    name: str = ''\n"


def _write_inputs(folder: Path) -> None:
    (folder / "empty.csv").write_bytes(b"")
    (folder / "binary.csv").write_bytes(b"text\n\x00\x01\x02\xff\xfe" * 20)
    (folder / "latin1.csv").write_bytes("text\nJosé is 30 years old\n".encode("latin-1"))
    (folder / "nocolumn.csv").write_text("name,age\nBob,3\n", encoding="utf-8")
    (folder / "ragged.csv").write_text("id,text\n1,Ann is 3\n2,Bob is 4,extra\n", encoding="utf-8")
    (folder / "bad.jsonl").write_text('{"text": "Ann is 3"}\n{"text": oops}\n', encoding="utf-8")
    (folder / "huge.csv").write_text("text\n" + "a" * 300_000 + "\n", encoding="utf-8")
    (folder / "folder.csv").mkdir()
    (folder / "broken.py").write_text(BROKEN_SCHEMA, encoding="utf-8")
    (folder / "notmodel.py").write_text(NOT_A_MODEL, encoding="utf-8")


BAD_INPUT = [
    (["run", "missing.csv"], "missing.csv"),
    (["run", "empty.csv"], "empty.csv"),
    (["run", "binary.csv"], "binary.csv"),
    (["run", "latin1.csv"], "latin1.csv"),
    (["run", "nocolumn.csv"], "nocolumn.csv"),
    (["run", "ragged.csv"], "ragged.csv"),
    (["run", "bad.jsonl"], "bad.jsonl"),
    (["run", "huge.csv"], "huge.csv"),
    (["run", "folder.csv"], "folder.csv"),
    (["run", "--schema", "broken.py:Model"], "broken.py"),
    (["run", "--schema", "notmodel.py:Thing"], "Thing"),
    (["run", "--schema", "Nope"], "Nope"),
    (["run", "--concurrency", "0"], "--concurrency"),
    (["run", "--concurrency", "-3"], "--concurrency"),
    (["run", "--concurrency", "abc"], "--concurrency"),
    (["run", "--timeout", "abc"], "--timeout"),
    (["run", "--latency", "-1"], "--latency"),
    (["run", "--base-url", "ftp://x"], "--base-url"),
    (["run", "--base-url", "http://"], "--base-url"),
    (["run", "--base-url", "http://["], "--base-url"),
    (["run", "--out", "results.xlsx"], "results.xlsx"),
    (["run", "--out", "nowhere/out.csv"], "nowhere"),
    (["bench", "ragged.csv"], "ragged.csv"),
    (["bench", "--strategies", "gather,warp"], "warp"),
    (["export", "no-such-run", "out.csv"], "no-such-run"),
    (["resume", "no-such-run"], "no-such-run"),
    (["runs", "--store", "binary.csv"], "binary.csv"),
    (["export", "last", "out.csv", "--store", "nowhere.sqlite3"], "nowhere.sqlite3"),
]


@pytest.mark.parametrize(("argv", "mention"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_clear_message(
    argv: list[str],
    mention: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    if argv[0] in ("export", "resume") and "--store" not in argv:
        # an empty store, so that the run id is looked up and not found
        Store(tmp_path / "store.sqlite3").close()
        argv = [*argv, "--store", "store.sqlite3"]
    code, out, err = fanout(capsys, *argv)
    assert_one_error(code, err, mention)
    assert out == ""
    assert not (tmp_path / "out.csv").exists()


# -- the endpoint is checked before any row is sent --------------------------------------------


def test_unreachable_endpoint_is_one_message_and_no_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    out = tmp_path / "out.csv"
    code, stdout, err = fanout(capsys, "run", "--base-url", url, "--out", str(out))
    line = assert_one_error(code, err, "cannot reach", url)
    assert "timed out" not in line  # a refused connection is not a timeout
    assert stdout == "" and not out.exists()
    code, stdout, _ = fanout(capsys, "runs", "--json")
    assert json.loads(stdout) == []  # nothing was recorded: no per-row failures


@pytest.mark.parametrize("key", ["sk-wrong-key-00000000", None], ids=["wrong key", "no key"])
def test_refused_key_is_one_message_and_no_rows(
    key: str | None,
    server: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if key is not None:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    out = tmp_path / "out.csv"
    code, stdout, err = fanout(capsys, "run", "--base-url", server.base_url, "--out", str(out))
    assert_one_error(code, err, "API key", "OPENAI_API_KEY")
    assert stdout == "" and not out.exists()
    code, stdout, _ = fanout(capsys, "runs", "--json")
    assert json.loads(stdout) == []
