"""The dashboard with gold labels kept in the run store: a past run opened with ``h``
is scored (quality panel, runs table, export), and a resumed one keeps its scoring.
Real client and simulator."""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import replace
from pathlib import Path

from core.store import Store
from tests.test_tui_quality import make_app, panel_text, pick, run_once
from tests.tui_support import wait_for
from tui.screens.export import ExportChoice
from tui.screens.history import stored_accuracy
from tui.widgets.runs_table import RunsTable


async def test_a_past_run_shows_its_quality_and_a_resume_keeps_it(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite3"
    first = make_app("people.csv")
    first.settings = replace(first.settings, store=store)
    async with first.run_test(size=(120, 36)) as pilot:
        await pick(pilot, first, "model", "sim-fast")
        await run_once(pilot, first, 0)
        live = first.query_one(RunsTable).quality[0]
        assert live is not None and live.accuracy is not None and live.accuracy < 1.0
        (live_id,) = first.query_one(RunsTable).run_ids
        assert live_id is not None
        with Store(store, create=False) as opened:
            first.open_past_run(opened.get_run(live_id))  # the same run: listed once
        await pilot.pause()
        assert len(first.query_one(RunsTable).history) == 1
    with Store(store, create=False) as opened:
        (info,) = opened.list_runs()
    assert info.model == "sim-fast"  # the run's own model, not the endpoint's default
    assert info.stats is not None and info.stats["quality"]["accuracy"] == live.accuracy
    assert stored_accuracy(info) == live.accuracy  # the past runs list shows it

    # a new session, another dataset on screen (no gold of its own): open the stored run
    app = make_app("reviews.jsonl")
    app.settings = replace(app.settings, store=store)
    async with app.run_test(size=(160, 48)) as pilot:
        app.open_past_run(info)
        await pilot.pause()
        runs = app.query_one(RunsTable)
        (past,) = runs.quality
        assert past is not None
        assert (past.correct_rows, past.rows) == (live.correct_rows, live.rows)
        assert runs.get_row_at(0)[1] == "sim-fast"
        assert f"rows correct {live.correct_rows}/{live.rows}" in panel_text(app, "quality-side")
        app.open_past_run(info)  # again: listed once
        await pilot.pause()
        assert len(runs.history) == 1
        out = tmp_path / "past.csv"
        app._export(ExportChoice(out, "results"))
        rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
        assert sum(r["correct"] == "true" for r in rows) == live.correct_rows

    conn = sqlite3.connect(store)  # as if the run had stopped after 3 of its 7 rows
    conn.execute("UPDATE rows SET status = 'pending', data_json = NULL WHERE idx >= 3")
    conn.execute("UPDATE runs SET status = 'interrupted'")
    conn.commit()
    conn.close()
    with Store(store, create=False) as opened:
        (info,) = opened.list_runs()
    app = make_app("reviews.jsonl")
    app.settings = replace(app.settings, store=store)
    async with app.run_test(size=(80, 24)) as pilot:
        app.running = True
        app.resume_past_run(info)
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) == 1, timeout=60)
        await wait_for(pilot, lambda: not app.running)
        (resumed,) = app.query_one(RunsTable).quality
        assert resumed is not None
        # every row scored again, the stored ones and the resumed ones, with sim-fast again
        assert (resumed.correct_rows, resumed.rows) == (live.correct_rows, live.rows)
        assert app.shown is not None and app.shown.gold is not None
