"""The API key never leaves the process: not in output, exports, the run store, row errors or UI.

The simulator is started with ``api_key`` so that it checks the key like a
real endpoint (401 ``invalid_api_key`` otherwise). A run that works, one with
a refused key and one with an unreachable endpoint are made with a known
fake key in ``OPENAI_API_KEY``; then everything fanout wrote is scanned for
the key and for its last 8 characters.
"""

from __future__ import annotations

import html
import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.client import choose_endpoint
from core.dataset import load_dataset, records_from_texts
from core.engine import ClientOptions, Engine
from core.errors import ConfigError
from core.extract import RetryPolicy
from core.localserver import LocalServer, ServerConfig
from core.localserver.cli import build_parser, config_from_args
from core.models import Person
from core.options import bundled_datasets_dir
from core.results import ErrorKind, Status
from tests.tui_support import wait_for
from tui.__main__ import main
from tui.app import FanoutApp
from tui.settings import DashboardSettings
from tui.widgets.runs_table import RunsTable

KEY = "sk-test-SECRET-1234567890abcdef"
TAIL = KEY[-8:]
OTHER_KEY = "sk-server-wants-this-one-000000"
UNAUTHORIZED = {
    "error": {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """Accepts KEY, and nothing else."""
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0, api_key=KEY)) as running:
        yield running


@pytest.fixture(scope="module")
def picky_server() -> Iterator[LocalServer]:
    """Wants another key: KEY is refused with 401."""
    with LocalServer(ServerConfig(latency=0.0, jitter=0.0, api_key=OTHER_KEY)) as running:
        yield running


def assert_no_key(where: str, content: str | bytes) -> None:
    data = content.encode("utf-8", "replace") if isinstance(content, str) else content
    assert KEY.encode() not in data, f"the API key is in {where}"
    assert TAIL.encode() not in data, f"the key's last 8 characters are in {where}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def http(
    url: str, *, key: str | None = None, body: dict[str, object] | None = None
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- the simulator checks the key -----------------------------------------------------------


def test_simulator_refuses_a_missing_or_wrong_key_like_openai(server: LocalServer) -> None:
    base = server.base_url
    chat = {"model": "fanout-sim", "messages": [{"role": "user", "content": "Ann is 3"}]}
    for key in (None, "sk-wrong-key-abcdefgh", KEY + "x", KEY[:-1]):
        for url, body in (
            (f"{base}/models", None),
            (f"{base}/models/x", None),
            (f"{base}/chat/completions", chat),
            (f"{base}/embeddings", chat),  # a route the simulator does not serve: still 401
        ):
            status, answer = http(url, key=key, body=body)
            assert status == 401, (url, key)
            assert json.loads(answer) == UNAUTHORIZED
            if key is not None:
                assert key.encode() not in answer  # the answer never echoes the key
    assert http(f"{base}/models", key=KEY)[0] == 200
    status, answer = http(f"{base}/chat/completions", key=KEY, body=chat)
    assert status == 200 and json.loads(answer)["choices"]
    assert http(f"{base}/embeddings", key=KEY, body=chat)[0] == 404
    assert http(base.removesuffix("/v1") + "/health")[0] == 200  # liveness needs no key


def test_api_key_option_reaches_the_simulator_and_stays_out_of_repr() -> None:
    config = config_from_args(build_parser().parse_args(["--api-key", KEY, "--latency", "0"]))
    assert config.api_key == KEY
    assert KEY not in config.to_argv()  # a command line is visible to everyone in ps
    assert ServerConfig().to_argv() == []
    assert KEY not in repr(config)
    for bad in ("", "two words", "tab\tkey"):
        with pytest.raises(ConfigError, match="api key"):
            ServerConfig(api_key=bad)


# -- the CLI: a working run, a refused key, an unreachable endpoint ---------------------------


def test_the_key_is_nowhere_in_outputs_exports_or_the_store(
    server: LocalServer,
    picky_server: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store.sqlite3"
    monkeypatch.setenv("FANOUT_STORE", str(store))
    outputs: list[tuple[str, int, str, str]] = []

    def fanout(*argv: str) -> int:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse reported a bad option
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        outputs.append((" ".join(argv), code, out, err))
        return code

    # The key is right: the run works, and every way of reading it back is scanned.
    assert fanout("run", "--base-url", server.base_url, "--out", "out.csv") == 0
    assert fanout("run", "--base-url", server.base_url) == 0  # JSONL to stdout
    assert fanout("export", "last", "exported.csv") == 0
    assert fanout("export", "last", "exported.jsonl") == 0
    assert fanout("runs", "--json") == 0
    assert fanout("runs") == 0
    runs = json.loads(outputs[4][2])
    assert len(runs) == 2 and all(run["ok"] == 7 for run in runs)
    # The key is refused, then the endpoint is not there: one message each, exit 2.
    assert fanout("run", "--base-url", picky_server.base_url, "--out", "refused.csv") == 2
    assert "API key" in outputs[-1][3]
    unreachable = f"http://127.0.0.1:{closed_port()}/v1"
    assert fanout("run", "--base-url", unreachable, "--out", "unreachable.csv") == 2
    assert "cannot reach" in outputs[-1][3]
    # A key put in the URL is refused without being repeated.
    with_key = server.base_url.replace("http://", f"http://user:{KEY}@")
    assert fanout("run", "--base-url", with_key, "--out", "in-url.csv") == 2
    assert "OPENAI_API_KEY" in outputs[-1][3]

    for command, _, out, err in outputs:
        assert_no_key(f"stdout of `fanout {command}`", out)
        assert_no_key(f"stderr of `fanout {command}`", err)
    written = sorted(tmp_path.glob("*.csv")) + sorted(tmp_path.glob("*.jsonl"))
    assert {p.name for p in written} == {"out.csv", "exported.csv", "exported.jsonl"}
    files = [*written, *sorted(tmp_path.glob("store.sqlite3*"))]
    assert store in files
    for path in files:
        assert_no_key(path.name, path.read_bytes())


async def test_rows_refused_by_the_endpoint_never_carry_the_key(
    picky_server: LocalServer,
) -> None:
    """Without the preflight check, every row fails with 401: the errors do not show the key."""
    choice = choose_endpoint(picky_server.base_url, env={"OPENAI_API_KEY": KEY})
    options = ClientOptions(timeout=5.0, retry=RetryPolicy(max_retries=1, base_delay=0.01))
    records = records_from_texts([f"My name is P{i} and I am {20 + i} years old" for i in range(4)])
    async with (
        Engine(choice, options=options) as engine,
        engine.run(records, Person, strategy="gather", concurrency=4) as run,
    ):
        stats = await run.execute()
        assert_no_key("the endpoint's repr", repr(engine.endpoint) + repr(choice))
    assert stats.failed == len(records)
    for row in run.rows:
        assert row.status is Status.FAILED and row.error_kind is ErrorKind.AUTH
        assert row.error and "API key" in row.error
        assert_no_key(f"row {row.id}'s error", row.error)
        assert_no_key(f"row {row.id}", repr(row))


# -- the dashboard ---------------------------------------------------------------------------


def screen_text(svg: str) -> str:
    """The characters a screenshot shows, in order (spans joined, no-break spaces as spaces)."""
    spans = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.DOTALL)
    return html.unescape("".join(spans)).replace("\xa0", " ")


def dashboard(url: str, store: Path) -> FanoutApp:
    settings = DashboardSettings(
        dataset=bundled_datasets_dir() / "people.csv",
        strategy="gather",
        endpoint=choose_endpoint(url, env={"OPENAI_API_KEY": KEY}),
        store=store,
    )
    return FanoutApp(settings, load_dataset(settings.dataset), Person)


async def test_the_dashboard_never_shows_the_key(
    server: LocalServer, picky_server: LocalServer, tmp_path: Path
) -> None:
    store = tmp_path / "dashboard.sqlite3"
    app = dashboard(server.base_url, store)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await pilot.press("r")
        history = app.query_one(RunsTable).history
        await wait_for(pilot, lambda: len(history) == 1 and not app.running)
        assert history[0][1].ok == 7  # the key worked
        screen = app.export_screenshot()
    assert "Jill" in screen_text(screen)  # the screenshot does show the results
    assert_no_key("the dashboard after a run", screen)
    assert_no_key("the dashboard after a run", screen_text(screen))

    refused = dashboard(picky_server.base_url, store)
    async with refused.run_test(size=(160, 48), notifications=True) as pilot:
        await pilot.press("r")
        await wait_for(
            pilot, lambda: "refused the API key" in screen_text(refused.export_screenshot())
        )
        screen = refused.export_screenshot()
    assert_no_key("the dashboard with a refused key", screen)
    assert_no_key("the dashboard with a refused key", screen_text(screen))
    assert store.exists()
    for path in store.parent.iterdir():  # the store, and its -wal / -shm if left
        assert_no_key(path.name, path.read_bytes())  # noqa: ASYNC240


def test_a_key_at_any_offset_of_a_long_error_leaves_no_piece() -> None:
    """Redaction comes before the cut to MAX_MESSAGE, and a key the server itself cut
    short (only its start is in the text) is removed too."""
    from core.failures import MAX_MESSAGE, classify

    key = "sk-canary-0123456789abcdef"
    for offset in range(0, MAX_MESSAGE + 10):
        for shown in (key, *(key[:n] for n in range(6, len(key)))):
            for tail in ("", " and more text after it", "…"):
                message = classify(RuntimeError("x" * offset + shown + tail), (key,)).message
                for n in range(6, len(key) + 1):
                    assert key[:n] not in message, (offset, shown, tail, message)
                assert len(message) <= MAX_MESSAGE


def test_a_foreign_sqlite_file_is_refused_unchanged(tmp_path: Path) -> None:
    """`fanout runs --store other.db` must not switch someone else's database to WAL."""
    import sqlite3

    from core.errors import StoreError
    from core.store import Store

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(StoreError, match="not a fanout run store"):
        Store(other, create=False)
    assert other.read_bytes() == before
    conn = sqlite3.connect(other)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()
