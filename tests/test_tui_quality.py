"""The dashboard's quality side, against the real client and simulator: the quality panel
(live, worst first), the row detail's expected vs extracted, the wrong-rows filter, the
runs table's accuracy / goodput / cost per correct row, and models as run parameters."""

from __future__ import annotations

import csv

import pytest
from textual.widgets import OptionList, Static

from core.client import choose_endpoint
from core.dataset import load_dataset
from core.localserver import ServerConfig
from core.models import Person
from core.options import bundled_datasets_dir
from tests.tui_support import wait_for
from tui.app import FanoutApp
from tui.screens.detail import RowDetailScreen
from tui.screens.export import ExportChoice
from tui.screens.run_diff import RunDiffScreen
from tui.screens.run_params import RunParamsScreen
from tui.settings import DashboardSettings
from tui.widgets.quality_panel import QualityPanel
from tui.widgets.results_table import ResultsTable
from tui.widgets.runs_table import COLUMNS, RunsTable

SIZES = [(80, 24), (120, 36), (160, 48)]


def make_app(dataset: str = "people_1000.csv") -> FanoutApp:
    settings = DashboardSettings(
        dataset=bundled_datasets_dir() / dataset,
        strategy="as_completed_semaphore",
        concurrency=20,
        endpoint=choose_endpoint(local=True),
        server=ServerConfig(latency=0.0, jitter=0.0),
        store=None,
    )
    return FanoutApp(settings, load_dataset(settings.dataset), Person)


def panel_text(app: FanoutApp, panel_id: str) -> str:
    panel = app.query_one(f"#{panel_id}", QualityPanel)
    return str(panel.render())


async def pick(pilot, app: FanoutApp, kind: str, name: str) -> None:
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, RunParamsScreen))
    screen = app.screen
    assert isinstance(screen, RunParamsScreen)
    index = next(i for i, p in enumerate(screen.params) if (p.kind, p.name) == (kind, name))
    screen.query_one(OptionList).highlighted = index
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, RunParamsScreen))


async def run_once(pilot, app: FanoutApp, runs: int) -> None:
    await pilot.press("r")
    await wait_for(pilot, lambda: len(app.query_one(RunsTable).history) > runs, timeout=60)
    await wait_for(pilot, lambda: not app.running)


@pytest.mark.parametrize("size", SIZES)
async def test_two_models_compared_on_accuracy_and_cost(size: tuple[int, int]) -> None:
    app = make_app("people.csv" if size != (160, 48) else "people_1000.csv")
    async with app.run_test(size=size) as pilot:
        assert app.gold is not None
        params_models = []
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, RunParamsScreen))
        screen = app.screen
        assert isinstance(screen, RunParamsScreen)
        params_models = [p.name for p in screen.params if p.kind == "model"]
        assert {"fanout-sim", "sim-fast", "sim-careful"} <= set(params_models)
        assert any("sometimes wrong" in p.note for p in screen.params)
        await pilot.press("escape")
        for runs, model in enumerate(("sim-fast", "sim-careful")):
            await pick(pilot, app, "model", model)
            assert app.chosen_model() == model
            await run_once(pilot, app, runs)
        table = app.query_one(RunsTable)
        fast, careful = table.quality
        assert fast is not None and careful is not None
        assert careful.accuracy == 1.0 and fast.accuracy is not None and fast.accuracy < 1.0
        assert careful.cost_per_correct_usd > fast.cost_per_correct_usd > 0
        cells = [table.get_row_at(i) for i in range(2)]
        assert [c[1] for c in cells] == ["sim-fast", "sim-careful"]
        at = [label for label, _ in COLUMNS].index
        assert cells[1][at("accuracy")] == "100.0%" and cells[1][at("mode")] == "tools"
        # d: the two runs field by field; they differ exactly where the data differs
        (_, fast_rows, _), (_, careful_rows, _) = app.recent_runs
        careful_data = {row.id: row.data for row in careful_rows}
        differing = sum(row.data != careful_data[row.id] for row in fast_rows)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDiffScreen))
        shown = str(app.screen.query_one("#run-diff-text", Static).render())
        assert f"{differing:,} of {len(fast_rows):,} rows differ" in shown
        assert "#1 sim-fast vs #2 sim-careful" in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.is_modal)
        # the panel shows the last run (sim-careful: every field right)
        if size == (160, 48) or size == (120, 36):
            assert app.query_one("#quality-side", QualityPanel).region.height > 2
            assert "100.0%" in panel_text(app, "quality-side")
        else:
            assert app.query_one("#quality-side", QualityPanel).region.height == 0  # folded
            await pilot.press("t", "t", "t")  # results -> chart -> runs -> quality
            assert app.view == "quality"
            assert app.query_one("#quality-view", QualityPanel).region.height > 2
            assert "rows correct" in panel_text(app, "quality-view")


async def test_panel_worst_first_wrong_filter_and_the_field_diff(tmp_path) -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pick(pilot, app, "model", "sim-fast")
        await run_once(pilot, app, 0)
        tally = app.tally
        assert tally is not None and tally.rows == 1000
        worst = tally.worst_first()
        text = panel_text(app, "quality-side")
        lines = [line for line in text.splitlines() if "%" in line][1:]
        assert [line.split()[0] for line in lines] == [t.label for t in worst]
        wrong = 1000 - tally.correct_rows
        assert 0 < wrong < 1000
        await pilot.press("w")
        results = app.query_one(ResultsTable)
        await wait_for(pilot, lambda: len(results.rows) == wrong)
        assert "wrong rows only" in str(results.border_subtitle)
        results.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RowDetailScreen))
        diff = str(app.screen.query_one("#detail-diff", Static).render())
        assert "expected" in diff and "got" in diff and "row wrong" in diff
        await pilot.press("escape")
        await pilot.press("w")
        await wait_for(pilot, lambda: len(results.rows) == 1000)
        # the dashboard's export carries the same flags as the tally
        out = tmp_path / "dash.csv"
        app._export(ExportChoice(out, "results"))
        with out.open(encoding="utf-8", newline="") as handle:
            exported = list(csv.DictReader(handle))
        assert sum(row["correct"] == "false" for row in exported) == wrong
        assert not any(name.startswith("input.") for name in exported[0])


async def test_palette_sets_model_and_mode_and_compare_sweeps_the_models() -> None:
    app = make_app("people.csv")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"Set model to sim-careful")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chosen_model() == "sim-careful")
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"Set mode to json_schema")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chosen_mode() == "json_schema")
        app.action_compare_models()
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: len(table.history) == 3, timeout=90)
        await wait_for(pilot, lambda: not app.running)
        models = [table.get_row_at(i)[1] for i in range(3)]
        assert models == ["fanout-sim", "sim-fast", "sim-careful"]  # as /v1/models lists them
        by_model = dict(zip(models, table.quality, strict=True))
        assert by_model["sim-careful"].accuracy == by_model["fanout-sim"].accuracy == 1.0
        assert by_model["fanout-sim"].cost_per_correct_usd == 0
        assert (
            by_model["sim-careful"].cost_per_correct_usd > by_model["sim-fast"].cost_per_correct_usd
        )


async def test_dashboard_gold_file_and_a_bad_one(capsys, tmp_path) -> None:
    from tests.test_cli import assert_one_error, fanout
    from tui.__main__ import dashboard_parser
    from tui.app import app_from_args

    data = tmp_path / "plain.csv"
    data.write_text('id,text\na,My name is Ann and I am 30 years old\nb,"I\'m Bo, 41."\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "name": "Ann", "age": "thirty"}\n')
    code, _, err = fanout(capsys, str(data), "--gold", str(bad), "--local")
    assert_one_error(code, err, "row a", "expected.age", "does not fit the schema")
    good = tmp_path / "gold.jsonl"
    good.write_text('{"id": "a", "name": "Ann", "age": 30}\n{"id": "b", "name": "Bo", "age": 41}\n')
    args = dashboard_parser().parse_args(
        [str(data), "--gold", str(good), "--local", "--latency", "0", "--no-store"]
    )
    app = app_from_args(args, data)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.gold is not None and app.gold.source == str(good) and len(app.gold) == 2
        await run_once(pilot, app, 0)
        assert app.tally is not None and (app.tally.rows, app.tally.correct_rows) == (2, 2)


async def test_compare_modes_runs_each_mode() -> None:
    app = make_app("people.csv")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"Compare modes")
        await pilot.pause(0.5)
        await pilot.press("enter")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: len(table.history) == 4, timeout=90)
        await wait_for(pilot, lambda: not app.running)
        rows = [table.get_row_at(i) for i in range(4)]
        at = [label for label, _ in COLUMNS].index
        assert [r[at("mode")] for r in rows] == ["tools", "json", "json_schema", "md_json"]
        # fanout-sim answers right in every mode
        assert all(r[at("accuracy")] == "100.0%" for r in rows)
