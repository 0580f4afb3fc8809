"""The fanout dashboard.

Handlers are short: they start a worker or push a screen. Extraction runs in
an async worker on the app's own loop; the run's events land in a
``RunFeed`` and a timer moves them to the widgets a batch at a time.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.widgets import Button, Footer, RadioSet

from core.batch.cli import batch_meta, bind, waiting_rows
from core.batch.job import BatchSettings
from core.batch.run import BatchRun, batch_run
from core.cli_store import export_schema
from core.client import Endpoint
from core.dataset import Dataset, Record, load_dataset
from core.engine import ClientOptions, Engine
from core.errors import FanoutError
from core.export import export_results, export_runs
from core.gctune import quiet_gc
from core.models import BUILTIN_MODELS, load_schema
from core.quality.gold import Gold, gold_for
from core.quality.report import summarize
from core.quality.tally import QualityTally
from core.recorder import RunRecorder, combined_stats, merge_rows, run_meta
from core.results import Row, Status
from core.runner import Run
from core.stats import compute_stats
from core.store import RunInfo, Store
from core.strategies import ARTICLE_STRATEGIES, LABELS, STRATEGIES, USES_CONCURRENCY
from core.workers import check_workers, with_scale
from tui.commands import FanoutCommands, ModelCommands, ScaleOutCommands
from tui.layout import (
    HORIZONTAL_BREAKPOINTS,
    VERTICAL_BREAKPOINTS,
    VIEWS,
    next_view,
    shows_one_view,
)
from tui.live import LiveStats, RunFeed
from tui.quality_actions import QualityMixin
from tui.screens.detail import RowDetailScreen
from tui.screens.export import ExportChoice, ExportScreen
from tui.screens.help import HelpScreen, key_table
from tui.screens.history import HistoryChoice, HistoryScreen
from tui.screens.limits import Limits, LimitsScreen
from tui.screens.open_dataset import OpenChoice, OpenDatasetScreen
from tui.screens.quit import QuitScreen
from tui.settings import DashboardSettings, ScaleOut, settings_from_args
from tui.visible import visible
from tui.widgets.batch_panel import BatchPanel
from tui.widgets.chart import ChartLegend, InFlightChart, Series
from tui.widgets.controls import ControlsLine, SemaphoreControl, StrategyPicker
from tui.widgets.header import DatasetBar
from tui.widgets.quality_panel import QualityPanel
from tui.widgets.results_table import ResultsTable
from tui.widgets.runs_table import RunsTable
from tui.widgets.stats_bar import StatsBar
from tui.widgets.view_tabs import ViewTabs

RESULTS_TITLE = "results (in the order requests finished)"
GUESSED_LEGEND = "~ a placeholder the simulator made up"
TICK_SECONDS = 1 / 10
"""How often buffered run events reach the widgets (each tick costs a frame)."""
ROWS_PER_TICK = 400
"""At most this many table rows are added per tick (4,000 rows/s; the engine does ~1,100)."""
CHART_EVERY = 5
"""Redraw the chart every this many ticks (plotext takes ~15 ms per drawing)."""
PASS_BUDGET_S = 0.005
"""A run's share of each event-loop pass in the dashboard: a quarter of ``fanout run``'s,
so key presses and frames wait less (key press p50 ~14 ms, not ~37)."""


class EngineLike(Protocol):
    """What the dashboard needs from an engine (the real one, or a test double)."""

    options: ClientOptions

    @property
    def endpoint(self) -> Endpoint: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def preflight(self, schema: type[BaseModel] | None = None) -> list[str]: ...

    def run(
        self,
        records: Sequence[Record],
        schema: type[BaseModel],
        *,
        strategy: str,
        concurrency: int,
        max_error_rate: float | None = None,
    ) -> AbstractAsyncContextManager[Run]: ...


EngineFactory = Callable[[DashboardSettings], EngineLike]


def default_engine(settings: DashboardSettings) -> EngineLike:
    return Engine(
        settings.endpoint,
        server=settings.server,
        options=settings.client,
        pass_budget=PASS_BUDGET_S,
    )


class FanoutApp(QualityMixin, App[int]):
    CSS_PATH = "fanout.tcss"
    TITLE = "fanout"
    AUTO_FOCUS = "ResultsTable"
    BINDINGS = [
        Binding("r", "run", "Run", tooltip="run the selected strategy"),
        Binding("c", "cancel", "Cancel", tooltip="cancel the run (finished rows are kept)"),
        Binding("a", "compare_all", "Compare", tooltip="run the article's five in turn"),
        Binding("t", "next_view", "View", show=False, tooltip="results, chart or runs"),
        Binding("f", "failed_only", "Failed", tooltip="show only the failed rows, or all"),
        Binding("n", "next_failed", "Next failed", show=False, tooltip="jump to a failed row"),
        Binding("w", "wrong_only", "Wrong", show=False, tooltip="only rows not matching gold"),
        Binding("m", "run_params", "Model", show=False, tooltip="model and mode of next runs"),
        Binding("d", "diff_runs", "Diff", show=False, tooltip="the last two runs, field by field"),
        Binding("e", "export", "Export", tooltip="export results or runs to CSV/JSONL"),
        Binding("h", "history", "Past runs", tooltip="open or resume a recorded run"),
        Binding("o", "open_dataset", "Open", show=False, tooltip="open another dataset"),
        Binding("l", "limits", "Limits", show=False, tooltip="rpm, tpm and budget"),
        Binding("v", "overlay", "Overlay", show=False, tooltip="chart: this run or the last"),
        Binding("b", "toggle_via", "Batch", show=False, tooltip="next runs via the Batch API"),
        *(
            Binding(str(n), f"pick({n})", LABELS[name], show=False, tooltip="pick a strategy")
            for n, name in enumerate(STRATEGIES, start=1)
        ),
        Binding("plus,equals_sign", "semaphore(1)", "Sem +", key_display="+", show=False),
        Binding("minus,underscore", "semaphore(-1)", "Sem -", key_display="-", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]
    COMMANDS = App.COMMANDS | {FanoutCommands, ModelCommands, ScaleOutCommands}
    HORIZONTAL_BREAKPOINTS = HORIZONTAL_BREAKPOINTS
    VERTICAL_BREAKPOINTS = VERTICAL_BREAKPOINTS
    IDLE_ONLY = frozenset(
        {
            "run",
            "run_strategy",
            "compare_all",
            "open_dataset",
            "history",
            "pick",
            "semaphore",
            "set_semaphore",
            "toggle_via",
            "run_params",
            "set_model",
            "set_mode",
            "compare_models",
            "compare_modes",
        }
    )
    """Actions that cannot act during a run: shown disabled while one goes. Strategy and
    semaphore among them: the controls keep saying what the running run uses."""

    running: reactive[bool] = reactive(False)
    view: reactive[str] = reactive("results")
    """What the lower area shows when it has room for one view only."""
    failed_only: reactive[bool] = reactive(False)
    """The results table shows only the failed rows."""
    wrong_only: reactive[bool] = reactive(False)
    """The results table shows only the rows that do not match their gold label."""
    strategy: reactive[str] = reactive("sequential", init=False)
    """The selected strategy: keys set it at once, the picker follows."""

    def __init__(
        self,
        settings: DashboardSettings,
        dataset: Dataset,
        schema: type[BaseModel],
        *,
        engine_factory: EngineFactory = default_engine,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.dataset = dataset
        self.schema = schema
        self.engine: EngineLike = engine_factory(settings)
        self._engine_ready: asyncio.Future[EngineLike] | None = None
        self.feed: RunFeed | None = None
        self.series: Series | None = None
        self.shown: Shown | None = None
        """What the results table shows (and what export writes)."""
        self._ticks = 0
        self._stop_plan = False
        self._on_screen = (dataset.path.name, len(dataset), schema.__name__)
        """The dataset (name, rows) and schema the header names: what is on screen."""
        self.set_reactive(FanoutApp.strategy, settings.strategy)
        self.now: Callable[[], datetime] = datetime.now
        """Time for default export names (tests pin it)."""
        self.via = "online"
        """How the next runs are sent: ``online``, or ``batch`` (the Batch API; key b)."""
        self.batch_settings = BatchSettings(poll_min=1.0, poll_max=30.0)
        self.started_with = settings.scale
        """Where the command line said to make the requests (a Ray cluster's address is
        typed there only, so the palette offers it again)."""
        self.in_flight: ScaleOut | None = None
        """Where the run in flight makes its requests (the header says so during it; the
        palette may have chosen otherwise for the next runs)."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every message shown: text from servers and files has its control characters
        written as escapes (``tui.visible``), and is not read as markup unless asked."""
        super().notify(
            visible(message),
            title=visible(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    # -- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield DatasetBar(id="dataset-bar")
        with Horizontal(id="main"):
            # The side column: controls and figures. In the compact layout (see
            # tui/layout.py) it folds into a line of controls over a flowing stats bar.
            with Vertical(id="side"):
                picker = StrategyPicker(self.settings.strategy, id="strategy")
                picker.border_title = "strategy"
                yield picker
                yield ControlsLine(id="controls-line")
                yield SemaphoreControl(self.settings.concurrency, id="semaphore")
                with Horizontal(id="actions"):
                    yield Button("Run", variant="success", id="run")
                    yield Button("Cancel", variant="error", id="cancel", disabled=True)
                    yield Button("Compare", id="compare")
                    yield Button("Export", id="export")
                yield StatsBar(id="stats")
                yield QualityPanel(id="quality-side")
            with Vertical(id="views"):
                yield ViewTabs(id="view-tabs")
                yield BatchPanel(id="batch-panel")
                yield ResultsTable(id="results")
                with Horizontal(id="lower"):
                    # In a box of its own, so that a frame which changes only the stats
                    # does not draw the chart again (see #views in fanout.tcss).
                    with Vertical(id="chart-box"):
                        yield InFlightChart(id="chart")
                        yield ChartLegend(id="chart-legend")
                    runs = RunsTable(id="runs")
                    runs.border_title = "runs: the article's table, measured"
                    yield runs
                yield QualityPanel(id="quality-view")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(ResultsTable).set_schema(self.schema)
        self.query_one(ResultsTable).border_title = RESULTS_TITLE
        self.query_one(InFlightChart).legend = self.query_one(ChartLegend)
        self.query_one(ViewTabs).show(self.view)
        self._show_controls()
        self.query_one(SemaphoreControl).set_active(self.strategy)
        self.query_one(StatsBar).clear(len(self.dataset))
        self.query_one(StatsBar).show_limits(limits_label(self.engine.options))
        self._show_header(starting=True)
        for panel in self.query(QualityPanel):
            panel.border_title = "quality vs gold, worst first"
        self.load_gold()
        self.set_interval(TICK_SECONDS, self._tick)
        self._engine_ready = asyncio.get_running_loop().create_future()
        self.start_engine()

    async def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.run.abort()
        await self.engine.close()

    # -- state ----------------------------------------------------------------

    def watch_strategy(self, strategy: str) -> None:
        self.query_one(StrategyPicker).select(strategy)
        self.query_one(SemaphoreControl).set_active(strategy)
        self._show_controls()

    @on(SemaphoreControl.Changed)
    def _semaphore_changed(self) -> None:
        self._show_controls()

    def _show_controls(self) -> None:
        self.query_one(ControlsLine).show(self.strategy, self.concurrency, self.via)

    def watch_view(self, view: str) -> None:
        views = self.query_one("#views")
        for name in VIEWS:
            views.set_class(name == view, f"-view-{name}")
        self.query_one(ViewTabs).show(view, self.failed_only)
        if view == "quality":
            self.show_quality()
        if view == "chart":
            self.query_one(InFlightChart).redraw()

    def watch_wrong_only(self, wrong_only: bool) -> None:
        if wrong_only:
            self.failed_only = False
        table = self.query_one(ResultsTable)
        table.set_filter(self.is_wrong if wrong_only else None)
        table.border_subtitle = "wrong rows only (vs gold) · w: all rows" if wrong_only else ""

    def watch_failed_only(self, failed_only: bool) -> None:
        if failed_only:
            self.wrong_only = False
        table = self.query_one(ResultsTable)
        table.set_filter(is_failed if failed_only else None)
        self.query_one(ViewTabs).show(self.view, failed_only)
        table.border_subtitle = "failed rows only · f: all rows" if failed_only else ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot act now are shown disabled (None), never offered and refused."""
        if action in self.IDLE_ONLY and self.running:
            return None
        if action == "cancel" and not self.running:
            return None
        if action == "next_view":
            return shows_one_view(self.screen_stack[0])
        return True

    @property
    def concurrency(self) -> int:
        return self.query_one(SemaphoreControl).value

    def watch_running(self, running: bool) -> None:
        self.refresh_bindings()
        self.query_one("#run", Button).disabled = running
        self.query_one("#compare", Button).disabled = running
        self.query_one("#cancel", Button).disabled = not running
        self.query_one(StrategyPicker).disabled = running
        self.query_one(SemaphoreControl).disabled = running
        # On the table, not the app: a class on the app restyles every widget (~35 ms).
        self.query_one(ResultsTable).set_class(running, "running")
        if not running and self.in_flight is not None:
            self.in_flight = None  # the header says the next runs' workers again
            self._show_header()

    def _describe(self, dataset: str, rows: int, schema: type[BaseModel]) -> None:
        """Say in the header which data and schema are on screen (a past run's, say)."""
        self._on_screen = (dataset, rows, schema.__name__)
        self._show_header()

    def _show_header(self, *, starting: bool = False) -> None:
        dataset, rows, schema = self._on_screen
        choice = self.settings.endpoint
        try:
            endpoint = self.engine.endpoint
            label, simulated = endpoint.label, endpoint.is_simulator
        except RuntimeError:
            label = "starting local simulator…" if choice.kind == "local" else "connecting…"
            simulated = choice.kind == "local"
        scale = self.in_flight or self.settings.scale
        self.query_one(DatasetBar).show(
            dataset=visible(dataset),
            rows=rows,
            endpoint=label,
            simulated=simulated,
            model=self.chosen_model(),
            schema=schema,
            mode=self.chosen_mode(),
            workers=scale.workers,
            ray=visible(scale.ray) if scale.ray is not None else None,
        )

    def show_header_now(self) -> None:
        self._show_header()

    # -- engine ---------------------------------------------------------------

    @work(group="engine", exit_on_error=False)
    async def start_engine(self) -> None:
        assert self._engine_ready is not None
        try:
            await self.engine.start()
            # With the schema: a mode the endpoint rejects is found once, here, with the
            # modes that work, not as N failed rows.
            for warning in await self.engine.preflight(self.schema):
                self.notify(warning, title="endpoint", severity="warning", timeout=10)
        except FanoutError as exc:
            self.notify(str(exc), title="endpoint", severity="error", timeout=30)
            self._engine_ready.set_exception(exc)
            self._engine_ready.exception()  # retrieved here; runs report it again
            return
        self._engine_ready.set_result(self.engine)
        self._show_header()
        self._placeholder_notice()

    async def _ready_engine(self) -> EngineLike:
        assert self._engine_ready is not None
        return await asyncio.shield(self._engine_ready)

    # -- actions ----------------------------------------------------------------

    def action_pick(self, number: int) -> None:
        names = list(STRATEGIES)
        if 1 <= number <= len(names):
            self.strategy = names[number - 1]

    def action_toggle_via(self) -> None:
        self.via = "online" if self.via == "batch" else "batch"
        picker = self.query_one(StrategyPicker)
        picker.border_title = "strategy" if self.via == "online" else "via batch (b: online)"
        self._show_controls()
        if self.via == "batch":
            self.notify(
                "next runs via the Batch API: half the price, results within 24 h; "
                "fanout resume or h, r collects them after a restart (b: online again)",
                timeout=6,
            )
        else:
            self.notify("next runs online, with the selected strategy", timeout=4)

    def action_toggle_finish_online(self) -> None:
        finish = not self.batch_settings.finish_online
        self.batch_settings = replace(self.batch_settings, finish_online=finish)
        if finish:
            self.notify("batch runs: rows a batch failed are finished online", timeout=4)
        else:
            self.notify("batch runs: rows a batch failed end failed, with the reason", timeout=4)

    async def action_set_workers(self, workers: int, ray: str | None = None) -> None:
        """Where the next runs make their requests (the palette's "Workers: N", "Ray
        actors: N"); a choice ``check_workers`` refuses (Ray not installed ...) is said once
        and the setting stays. Checked in a thread: with Ray it imports Ray (seconds)."""
        choice = ScaleOut(workers, ray)
        try:
            await asyncio.to_thread(check_workers, workers, self.strategy, ray)
        except FanoutError as exc:
            self.notify(
                f"{exc} (still {self.settings.scale.describe()})",
                title="workers unchanged",
                severity="error",
                timeout=12,
            )
            return
        self.settings = replace(self.settings, workers=workers, ray=ray)
        self._show_header()
        message = f"from the next run: {choice.describe()}"
        if self.running and self.in_flight is not None and self.in_flight != choice:
            message += f"; the run in flight keeps {self.in_flight.describe()}"
        self.notify(message, title="workers", timeout=6)

    def action_semaphore(self, direction: int) -> None:
        self.query_one(SemaphoreControl).step(direction)

    def action_set_semaphore(self, size: int) -> None:
        self.query_one(SemaphoreControl).value = size

    def action_run_strategy(self, strategy: str, run: bool = True) -> None:
        """Select ``strategy`` (the palette's "Run ..." also runs it)."""
        self.strategy = strategy
        if run:
            self.action_run()

    def action_run(self) -> None:
        self._start([(self.strategy, self.concurrency)])

    def action_compare_all(self) -> None:
        self._start([(name, self.concurrency) for name in ARTICLE_STRATEGIES])

    def start_plan(self, plan: list[tuple[str, int, str | None, str | None]]) -> None:
        self._start(plan)  # type: ignore[arg-type]

    def _start(self, plan: list[tuple[str, int]]) -> None:
        if self.running:
            self.notify(
                "a run is in progress: press c to cancel it first", severity="warning", timeout=4
            )
            return
        self.running = True
        self._stop_plan = False
        self.run_plan(plan)

    def action_cancel(self) -> None:
        if self.feed is None or not self.running:
            self.notify("nothing is running", timeout=3)
            return
        self._stop_plan = True
        self.feed.run.stop("cancelled")
        self.notify("cancelling: no new requests; finished rows are kept", timeout=4)

    def action_export(self) -> None:
        strategy = self.shown.strategy if self.shown is not None else self.strategy
        self.push_screen(ExportScreen(self.dataset.name, strategy, now=self.now()), self._export)

    def _export(self, choice: ExportChoice | None) -> None:
        if choice is None:
            return
        try:
            if choice.what == "runs":
                history = self.query_one(RunsTable).history
                if not history:
                    self.notify("no runs yet: press r to run", severity="warning")
                    return
                extra = [{"run": i + 1, "dataset": name} for i, (name, _) in enumerate(history)]
                path = export_runs([s for _, s in history], choice.path, extra)
            else:
                if self.shown is None:
                    self.notify("no results yet: press r to run", severity="warning")
                    return
                path = export_results(
                    self.shown.rows,
                    self.shown.schema,
                    choice.path,
                    self.shown.input_columns,
                    self.shown.gold,
                )
        except FanoutError as exc:
            self.notify(str(exc), title="export failed", severity="error", timeout=10)
            return
        self.notify(f"wrote {path}", title="exported", timeout=8)

    def action_open_dataset(self) -> None:
        if self.running:
            self.notify("cancel the run (c) before opening another dataset", severity="warning")
            return
        screen = OpenDatasetScreen(
            self.dataset.path,
            self.dataset.text_column,
            self.settings.schema,
            self.dataset.id_column if self.dataset.id_column != "id" else None,
        )
        self.push_screen(screen, self._opened)

    def _opened(self, choice: OpenChoice | None) -> None:
        if choice is None:
            return
        dataset = choice.dataset
        self.dataset = dataset
        self.schema = choice.schema
        self.settings = replace(
            self.settings,
            dataset=dataset.path,
            text_column=dataset.text_column,
            id_column=dataset.id_column,
            schema=choice.schema_spec,
            gold=None,  # a --gold file belongs to the dataset it was given with
        )
        self.shown = None
        table = self.query_one(ResultsTable)
        table.set_schema(choice.schema)
        table.border_title = RESULTS_TITLE
        self.query_one(StatsBar).clear(len(dataset))
        self._describe(dataset.path.name, len(dataset), self.schema)
        self.wrong_only = False
        self.load_gold()
        for warning in dataset.warnings:
            self.notify(warning, severity="warning")
        self.notify(
            f"opened {dataset.path.name}: {len(dataset):,} rows, schema {choice.schema.__name__}",
            timeout=4,
        )
        self._placeholder_notice()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(key_table(self.BINDINGS)))

    def action_next_view(self) -> None:
        self.view = next_view(self.view)

    def action_failed_only(self) -> None:
        self.failed_only = not self.failed_only
        self.view = "results"

    def action_wrong_only(self) -> None:
        if self.gold is None:
            self.notify("no gold labels for this dataset (README: Quality)", timeout=4)
            return
        self.wrong_only = not self.wrong_only
        self.view = "results"

    def action_next_failed(self) -> None:
        table = self.query_one(ResultsTable)
        rows = table.rows
        start = table.cursor_row
        for step in range(1, len(rows) + 1):
            index = (start + step) % len(rows)
            if rows[index].status is Status.FAILED:
                self.view = "results"
                table.cursor_row = index
                table.focus()
                return
        self.notify("no failed rows", timeout=3)

    def action_overlay(self) -> None:
        overlay = self.query_one(InFlightChart).toggle_overlay()
        self.notify("chart: the last runs on one axis" if overlay else "chart: this run only")

    async def action_quit(self) -> None:
        if self.feed is not None and self.running:
            self.push_screen(QuitScreen(self.shown.run_id if self.shown else None), self._quit)
            return
        self.exit(0)

    def _quit(self, confirmed: bool | None) -> None:
        if not confirmed:
            return
        if self.feed is not None and self.running:
            self.feed.run.stop("quit")
        self.exit(0)

    # -- widgets talking up ------------------------------------------------------

    @on(Button.Pressed, "#run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#compare")
    def _compare_pressed(self) -> None:
        self.action_compare_all()

    @on(Button.Pressed, "#export")
    def _export_pressed(self) -> None:
        self.action_export()

    @on(RadioSet.Changed, "#strategy")
    def _strategy_changed(self) -> None:
        self.strategy = self.query_one(StrategyPicker).strategy

    @on(ResultsTable.RowChosen, "#results")
    def _row_chosen(self, event: ResultsTable.RowChosen) -> None:
        shown = self.shown
        gold = shown.gold if shown is not None else None
        self.push_screen(RowDetailScreen(event.row, gold))

    # -- past runs and limits ----------------------------------------------------

    def action_history(self) -> None:
        if self.settings.store is None:
            self.notify("runs are not recorded (--no-store)", severity="warning")
            return
        self._recover_rows()
        self.push_screen(
            HistoryScreen(self.settings.store, self.dataset.name), self._history_chosen
        )

    def _recover_rows(self) -> None:
        """Put back rows an earlier run could not store (its recovery files)."""
        assert self.settings.store is not None
        if not self.settings.store.exists():
            return
        try:
            with Store(self.settings.store, create=False) as store:
                messages = store.import_recoveries()
        except FanoutError as exc:
            self.notify(str(exc), title="run store", severity="error", timeout=10)
            return
        for message in messages:
            self.notify(message, title="run store", timeout=10)

    def _history_chosen(self, choice: HistoryChoice | None) -> None:
        if choice is None:
            return
        if choice.action == "open":
            self.open_past_run(choice.run)
        elif self.running:
            self.notify("a run is in progress: press c to cancel it first", severity="warning")
        else:
            self.running = True
            self._stop_plan = False
            self.resume_past_run(choice.run)

    def open_past_run(self, info: RunInfo) -> None:
        """Show a stored run's rows (to read, open in detail, export)."""
        assert self.settings.store is not None
        try:
            with Store(self.settings.store, create=False) as store:
                rows = store.load_rows(info.id)
            schema = export_schema(info, rows, self._warn)
        except FanoutError as exc:
            self.notify(str(exc), title="cannot open run", severity="error", timeout=10)
            return
        table = self.query_one(ResultsTable)
        table.set_schema(schema)
        table.add_results(
            [r for r in rows if r.status is not Status.PENDING],
            span=max((r.finished_s or 0.0 for r in rows), default=1.0) or 1.0,
        )
        self.shown = Shown(rows, schema, info.strategy, info.dataset_name, info.id)
        stats = compute_stats(
            rows,
            strategy=info.strategy,
            concurrency=info.semaphore,
            elapsed_s=float((info.stats or {}).get("elapsed_s") or table.timeline.scale),
            max_in_flight=int((info.stats or {}).get("max_in_flight") or 0),
            rate_limited=int((info.stats or {}).get("rate_limited") or 0),
        )
        self.query_one(StatsBar).show(LiveStats.of(stats, info.semaphore))
        gold = self.stored_gold(info, schema)
        self.shown = replace(self.shown, gold=gold)
        tally = self.past_tally(gold, rows)
        self.query_one(RunsTable).add_stats(
            visible(info.dataset_name),
            stats,
            quality=summarize(tally, stats) if tally is not None else None,
            model=visible(info.model),
            mode=info.mode,
            run_id=info.id,
            reopened=True,
        )
        table.border_title = f"results of run {info.id} ({info.status}) · h: past runs"
        self._describe(Path(info.dataset_path).name, info.records, schema)
        self._show_run_controls(info)
        self._mark_guessed()
        self.notify(f"opened run {info.id}: {info.ok} ok, {info.failed} failed", timeout=4)

    def _show_run_controls(self, info: RunInfo) -> None:
        """The strategy and semaphore controls say what the shown run used."""
        if info.strategy in STRATEGIES:
            self.strategy = info.strategy
        if info.concurrency:
            self.query_one(SemaphoreControl).value = info.concurrency

    def _placeholder_notice(self) -> None:
        """The simulator is no language model: on a schema it has no rules for, say that
        its answers hold placeholders (marked ~ in the table) before anyone trusts them."""
        if self.settings.endpoint.kind != "local" or self.schema in BUILTIN_MODELS.values():
            return
        self.notify(
            f"the simulator fills {self.schema.__name__} by simple rules; values it has no "
            "rule for are placeholders, marked ~ in the table and listed in the export's "
            "guessed_fields",
            title="simulated answers",
            timeout=12,
        )

    def _mark_guessed(self) -> None:
        table = self.query_one(ResultsTable)
        title = str(table.border_title or RESULTS_TITLE)
        if table.guessed_rows and GUESSED_LEGEND not in title:
            table.border_title = f"{title} · {GUESSED_LEGEND}"

    def _warn(self, message: str) -> None:
        self.notify(message, severity="warning", timeout=8)

    def action_limits(self) -> None:
        options = self.engine.options
        current = Limits(options.rpm, options.tpm, options.budget_usd)
        self.push_screen(LimitsScreen(current), self._limits_chosen)

    def _limits_chosen(self, limits: Limits | None) -> None:
        if limits is None:
            return
        self.engine.options = replace(
            self.engine.options, rpm=limits.rpm, tpm=limits.tpm, budget_usd=limits.budget_usd
        )
        self._show_header()
        self.query_one(StatsBar).show_limits(limits_label(self.engine.options))
        self.notify(f"limits for the next runs: {limits_label(self.engine.options)}", timeout=4)

    # -- running -------------------------------------------------------------------

    @work(group="runs", exclusive=True, exit_on_error=False)
    async def run_plan(self, plan: list[tuple[str, int]]) -> None:
        try:
            engine = await self._ready_engine()
        except FanoutError as exc:
            self.notify(f"cannot run: {exc}", severity="error", timeout=15)
            self.running = False
            return
        scale = self.settings.scale  # the plan's: a change in the palette waits for the next
        try:
            for strategy, concurrency, *params in plan:
                if self._stop_plan:
                    break
                self.strategy = strategy
                self._describe(self.dataset.path.name, len(self.dataset), self.schema)
                self.query_one(ResultsTable).set_schema(self.schema)
                model, mode = (params + [None, None])[:2] if params else (None, None)
                try:
                    await self._one_run(
                        engine,
                        self.dataset.records,
                        strategy,
                        concurrency,
                        model=model or self.chosen_model(),
                        mode=mode or self.chosen_mode(),
                        scale=scale,
                    )
                except FanoutError as exc:  # the run could not start (workers, Ray ...)
                    self.notify(f"cannot run: {exc}", severity="error", timeout=15)
                    break
        finally:
            self.running = False

    @work(group="runs", exclusive=True, exit_on_error=False)
    async def resume_past_run(self, info: RunInfo) -> None:
        """Send requests only for a stored run's rows that have no result."""
        assert self.settings.store is not None
        try:
            engine = await self._ready_engine()
            with Store(self.settings.store, create=False) as store:
                stored = store.load_rows(info.id)
                records = store.records_to_resume(info.id)
            schema = load_schema(info.schema_spec)
        except FanoutError as exc:
            self.notify(f"cannot resume {info.id}: {exc}", severity="error", timeout=15)
            self.running = False
            return
        try:
            if not records:
                self.notify(f"run {info.id} has nothing left to send", timeout=5)
                return
            self.notify(f"resuming {info.id}: {len(records)} rows without a result", timeout=5)
            gold = self.stored_gold(info, schema)
            self.query_one(ResultsTable).set_schema(schema)
            self._describe(Path(info.dataset_path).name, info.records, schema)
            self._show_run_controls(info)
            run = await self._one_run(
                engine,
                records,
                info.strategy,
                info.concurrency,
                schema=schema,
                resume=info.id,
                dataset_name=info.dataset_name,
                via=str(info.options.get("via") or "online"),
                waiting=waiting_rows(stored),
                model=info.model,
                mode=info.mode,
                gold=gold,
                stored=stored,
                before=info.stats,
                scale=self.settings.scale,
            )
            merged = merge_rows(stored, run)
            self.shown = Shown(merged, schema, info.strategy, info.dataset_name, info.id, gold=gold)
        finally:
            self.running = False

    async def _one_run(
        self,
        engine: EngineLike,
        records: Sequence[Record],
        strategy: str,
        concurrency: int,
        *,
        schema: type[BaseModel] | None = None,
        resume: str | None = None,
        dataset_name: str | None = None,
        via: str | None = None,
        waiting: set[int] | None = None,
        model: str | None = None,
        mode: str | None = None,
        gold: Gold | None = None,
        stored: Sequence[Row] = (),
        before: Mapping[str, Any] | None = None,
        scale: ScaleOut | None = None,
    ) -> Run:
        """One run; a resume (``resume``: its id) is scored against its stored ``gold``,
        its ``stored`` rows counted first. ``scale``: where its requests are made (by
        default the settings'; the Batch API makes them itself)."""
        schema = schema or self.schema
        batch = (via or self.via) == "batch"
        strategy = "batch" if batch else strategy
        scale = ScaleOut() if batch else scale or self.settings.scale
        self.in_flight = scale  # until the plan ends (watch_running)
        self._show_header()
        tally = self.new_tally(schema) if resume is None else self.past_tally(gold, stored)
        dataset_name = dataset_name or self.dataset.name
        table = self.query_one(ResultsTable)
        table.reset()
        table.reserve(len(records))
        self.query_one(StatsBar).clear(len(records))
        limit = (
            concurrency
            if strategy in USES_CONCURRENCY
            else (1 if strategy == "sequential" else None)
        )
        panel = self.query_one(BatchPanel)
        panel.hide()
        overrides = self.run_overrides(model, mode)
        if not scale.here:  # seconds of start-up first
            self.notify(scale.starting_label(), timeout=4)
        async with self._open_run(
            engine, records, schema, strategy, concurrency, overrides, scale
        ) as run:
            feed = RunFeed(run, limit)
            self.feed = feed
            self.shown = Shown(
                run.rows,
                schema,
                strategy,
                dataset_name,
                resume,
                self.dataset.columns,
                gold=tally.gold if tally is not None else None,
            )
            number = len(self.query_one(RunsTable).history) + 1
            self.series = self.query_one(InFlightChart).start_series(
                strategy, run.semaphore, number
            )
            self.series.samples = feed.samples
            self.series.limits = feed.limits
            recorder = await self._recorder(
                engine, run, strategy, concurrency, schema, resume, tally, overrides
            )
            bind(run, recorder, waiting or ())
            if isinstance(run, BatchRun):
                panel.show(run.job.views())
            where = f"run {recorder.run_id}" if recorder is not None else "not recorded"
            table.border_title = f"{RESULTS_TITLE} · {where}"
            if self.shown is not None and recorder is not None:
                self.shown = replace(self.shown, run_id=recorder.run_id)
            try:
                with quiet_gc():
                    stats = await run.execute()
            finally:
                if recorder is not None:
                    await recorder.close()
                    unstored = recorder.problem()
                    if unstored:
                        self.notify(unstored, title="run store", severity="error", timeout=60)
                feed.close()
                self._drain(feed)
        number = len(self.query_one(RunsTable).history) + 1
        self.keep_run(f"#{number} {model or engine.endpoint.model}", run.rows, schema)
        quality = (
            None
            if tally is None
            else summarize(tally, combined_stats(stored, run, stats, before))
            if resume is not None
            else self.quality_summary(stats)
        )
        stored_id = recorder.run_id if recorder is not None and recorder.complete else None
        self.query_one(RunsTable).add_stats(
            visible(dataset_name),
            stats,
            quality=quality,
            model=visible(model or engine.endpoint.model),
            mode=mode or self.settings.client.mode,
            run_id=stored_id if resume is None else None,
        )
        if stored_id is not None and quality is not None:
            self.keep_quality(stored_id, quality)
        if stats.stopped_reason and stats.stopped_reason != "cancelled":
            self.notify(stats.stopped_reason, severity="warning", timeout=10)
        elif stats.failed:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(stats.errors_by_kind.items()))
            self.notify(
                f"{LABELS.get(strategy, strategy)}: {stats.failed} of {stats.records} rows "
                f"failed ({kinds}); enter on a row shows why",
                severity="warning",
                timeout=8,
            )
        return run

    def _open_run(
        self,
        engine: EngineLike,
        records: Sequence[Record],
        schema: type[BaseModel],
        strategy: str,
        concurrency: int,
        overrides: dict[str, str],
        scale: ScaleOut,
    ) -> AbstractAsyncContextManager[Run]:
        if strategy != "batch":
            return engine.run(
                records,
                schema,
                strategy=strategy,
                concurrency=concurrency,
                max_error_rate=self.settings.max_error_rate,
                **overrides,
                **scale.run_kwargs(),
            )
        if not isinstance(engine, Engine):
            raise FanoutError("the Batch API needs fanout's own engine")
        return batch_run(
            engine,
            records,
            schema,
            settings=self.batch_settings,
            concurrency=concurrency,
            store_path=self.settings.store,
            max_error_rate=self.settings.max_error_rate,
            **overrides,
        )

    async def _recorder(
        self,
        engine: EngineLike,
        run: Run,
        strategy: str,
        concurrency: int,
        schema: type[BaseModel],
        resume: str | None,
        tally: QualityTally | None = None,
        overrides: dict[str, str] | None = None,
    ) -> RunRecorder | None:
        """Record the run in the store; a store problem is a warning, never a stop."""
        if self.settings.store is None:
            return None

        def warn(message: str) -> None:
            self.notify(message, title="run store", severity="warning", timeout=10)

        if resume is not None:
            recorder = RunRecorder(self.settings.store, run, run_id=resume, on_warning=warn)
        else:
            meta = run_meta(
                dataset=self.dataset,
                schema_spec=self.settings.schema,
                schema=schema,
                strategy=strategy,
                concurrency=concurrency,
                endpoint=engine.endpoint,
                options=engine.options,
                max_error_rate=self.settings.max_error_rate,
                gold=tally.gold if tally is not None else None,
                model=(overrides or {}).get("model"),
                mode=(overrides or {}).get("mode"),
            )
            if isinstance(run, BatchRun):
                meta = batch_meta(meta, finish_online=run.job.settings.finish_online)
            meta = with_scale(meta, run)
            recorder = RunRecorder(self.settings.store, run, meta, on_warning=warn)
        try:
            await recorder.start()
        except FanoutError as exc:
            warn(f"{exc}; this run is not recorded")
            return None
        return recorder

    def _drain(self, feed: RunFeed) -> None:
        """Show everything the run produced (at its end)."""
        table = self.query_one(ResultsTable)
        rows = feed.take(len(feed.finished))
        self.count_rows(rows)
        table.add_results(rows, span=feed.run.elapsed)
        if isinstance(feed.run, BatchRun):
            self.query_one(BatchPanel).show(feed.run.job.views())
        self._mark_guessed()
        self.query_one(StatsBar).show(feed.snapshot())
        self.query_one(InFlightChart).redraw()

    def _tick(self) -> None:
        feed = self.feed
        if feed is None or feed.ended is not None:
            return
        self._ticks += 1
        rows: list[Row] = feed.take(ROWS_PER_TICK)
        self.count_rows(rows)
        self.query_one(ResultsTable).show_progress(rows, feed.run.elapsed)
        feed.take_deliveries()
        feed.sample_now()
        self.query_one(StatsBar).show(feed.snapshot())
        if isinstance(feed.run, BatchRun) and self._ticks % CHART_EVERY == 0:
            self.query_one(BatchPanel).show(feed.run.job.views())
        if self._ticks % CHART_EVERY == 0:
            self.query_one(InFlightChart).redraw(now=feed.run.elapsed)


RESULTS_TITLE = "results (in the order requests finished)"


def is_failed(row: Row) -> bool:
    return row.status is Status.FAILED


@dataclass(frozen=True)
class Shown:
    """The rows on screen, with what export needs to write them."""

    rows: Sequence[Row]
    schema: type[BaseModel]
    strategy: str
    dataset: str
    run_id: str | None = None
    input_columns: Sequence[str] = ()
    """The dataset's own columns, in file order (export puts them in this order)."""
    gold: Gold | None = None
    """The gold labels the rows are scored against (export writes the quality columns)."""


def limits_label(options: ClientOptions) -> str:
    parts = []
    if options.rpm:
        parts.append(f"{options.rpm:,} rpm")
    if options.tpm:
        parts.append(f"{options.tpm:,} tpm")
    if options.budget_usd is not None:
        parts.append(f"budget ${options.budget_usd:g}")
    return ", ".join(parts) or "none"


def load_for_dashboard(settings: DashboardSettings) -> tuple[Dataset, type[BaseModel]]:
    dataset = load_dataset(
        settings.dataset, text_column=settings.text_column, id_column=settings.id_column
    )
    return dataset, load_schema(settings.schema)


def app_from_args(args: argparse.Namespace, dataset_path: Path) -> FanoutApp:
    """Build the app from command-line options; FanoutError for bad input."""
    settings = settings_from_args(args, dataset_path)
    dataset, schema = load_for_dashboard(settings)
    gold_for(  # a gold label that does not fit is one error line, before the dashboard
        schema, dataset.gold, (r.id for r in dataset.records), gold_file=settings.gold
    )
    return FanoutApp(settings, dataset, schema)
