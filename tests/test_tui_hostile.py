"""Hostile bytes never reach the terminal: escapes from the data, the answers and error
texts are drawn as visible escapes (``\\x1b``), in the table, the detail and messages."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from core.client import choose_endpoint
from core.dataset import load_dataset
from core.localserver import ServerConfig
from core.models import Person
from tests.test_tui_pilot import wait_for
from tui.app import FanoutApp
from tui.screens.detail import RowDetailScreen
from tui.settings import DashboardSettings
from tui.visible import visible
from tui.widgets.results_table import ResultsTable

CLEAR = "\x1b[2J"
TITLE = "\x1b]0;pwned\x07"
BIDI = "\u202e"


def app_for(data: Path, schema: type[BaseModel]) -> FanoutApp:
    """The dashboard on ``data`` with ``schema``, the simulator answering at once."""
    settings = DashboardSettings(
        dataset=data,
        strategy="gather",
        endpoint=choose_endpoint(local=True),
        server=ServerConfig(latency=0.0, jitter=0.0),
    )
    return FanoutApp(settings, load_dataset(data), schema)


def test_visible_escapes_controls_but_keeps_text() -> None:
    assert visible(f"a{CLEAR}b") == "a\\x1b[2Jb"
    assert visible(TITLE) == "\\x1b]0;pwned\\x07"
    assert visible(f"x{BIDI}y\u0085z") == "x\\u202ey\\x85z"
    assert visible("tab\tand\nnewline, é ✓") == "tab\tand\nnewline, é ✓"


async def test_escapes_in_data_and_answers_are_shown_not_sent(tmp_path: Path) -> None:
    data = tmp_path / "hostile.jsonl"
    lines = [
        {"id": f"r{CLEAR}", "text": f"My name is Eve{TITLE} and I am 30 years old", "n": BIDI},
        {"id": "r2", "text": f"My name is {CLEAR}Mallory and I am 40 years old"},
    ]
    data.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    app = app_for(data, Person)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("r")
        table = app.query_one(ResultsTable)
        await wait_for(pilot, lambda: table.row_count == 2 and not app.running)
        drawn = "".join(table.render_line(y).text for y in range(3))
        assert "\x1b" not in drawn and "\\x1b" in drawn
        app.notify(f"server said {CLEAR}{TITLE}", severity="error")
        await pilot.pause()
        table.focus()
        await pilot.press("enter")
        assert isinstance(app.screen, RowDetailScreen)
        shown = "".join(str(widget.render()) for widget in app.screen.query("Static"))
        assert "\x1b" not in shown and "\u202e" not in shown
        assert "\\x1b" in shown
        messages = [n.message for n in app._notifications]  # what the toasts draw
        assert any("\\x1b[2J" in m for m in messages)
        assert not any("\x1b" in m for m in messages)


async def test_a_recursive_schema_starts_runs_and_shows(tmp_path: Path) -> None:
    class Node(BaseModel):
        name: str
        children: list[Node] = []
        parent: Node | None = None

    Node.model_rebuild()
    data = tmp_path / "t.txt"
    data.write_text("My name is Ann\nMy name is Bob\n", encoding="utf-8")
    app = app_for(data, Node)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("r")
        table = app.query_one(ResultsTable)
        await wait_for(pilot, lambda: table.row_count == 2 and not app.running)
        assert "data.name" in table.render_line(0).text
        assert all(row.status.value == "ok" for row in table.rows)
