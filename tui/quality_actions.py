"""The dashboard's quality side: gold labels, the live tally, the wrong-rows filter, and
the model and instructor mode as run parameters (picked, or swept by "compare models").

A mixin of ``FanoutApp`` (tui/app.py), kept apart so the app module stays about runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel
from textual import work

from core.client import MODES
from core.errors import FanoutError
from core.localserver.profiles import PROFILES
from core.quality.diff import diff_runs
from core.quality.gold import Gold, gold_for
from core.quality.report import QualitySummary, summarize
from core.quality.stored import stored_gold
from core.quality.tally import QualityTally
from core.results import Row
from core.stats import RunStats
from core.store import RunInfo, Store
from tui.screens.run_diff import RunDiffScreen, diff_text
from tui.screens.run_params import RunParam, RunParamsScreen
from tui.widgets.quality_panel import QualityPanel

if TYPE_CHECKING:
    from tui.app import FanoutApp

MODEL_LIST_TIMEOUT_S = 5.0


class QualityMixin:
    """Gold, tally and run parameters; ``self`` is the FanoutApp."""

    gold: Gold | None = None
    tally: QualityTally | None = None
    run_model: str | None = None
    """The model the next runs use when not the endpoint's (a run parameter)."""
    run_mode: str | None = None
    model_choices: list[str] = []
    recent_runs: list[tuple[str, Sequence[Row], type[BaseModel]]] = []
    """The last two runs' (label, rows, schema), for "diff the last two runs"."""

    # -- gold and the tally ---------------------------------------------------------

    def load_gold(self: FanoutApp) -> None:
        """The gold labels of the dataset on screen, checked against its schema."""
        self.gold = None
        self.tally = None
        try:
            self.gold = gold_for(
                self.schema,
                self.dataset.gold,
                (r.id for r in self.dataset.records),
                gold_file=self.settings.gold,
                id_column=self.dataset.id_column,
            )
        except FanoutError as exc:
            self.notify(str(exc), title="gold labels", severity="error", timeout=20)
        self.show_quality()

    def new_tally(self: FanoutApp, schema: object) -> QualityTally | None:
        """A fresh tally for a run of the dataset on screen (none for another schema)."""
        gold = self.gold
        self.tally = QualityTally(gold) if gold is not None and schema is gold.schema else None
        self.show_quality()
        return self.tally

    def count_rows(self: FanoutApp, rows: Sequence[Row]) -> None:
        tally = self.tally
        if tally is None or not rows:
            return
        for row in rows:
            tally.add(row)
        self.show_quality()

    def show_quality(self: FanoutApp) -> None:
        for panel in self.query(QualityPanel):
            panel.show(self.tally if self.tally is not None else None)
        side = self.query_one("#quality-side", QualityPanel)
        side.set_class(self.gold is None and self.tally is None, "-no-gold")
        if self.gold is not None and self.tally is None:
            side.show(QualityTally(self.gold))

    def stored_gold(self: FanoutApp, info: RunInfo, schema: type[BaseModel]) -> Gold | None:
        """A stored run's own gold labels (kept with its rows), or None."""
        if self.settings.store is None:
            return None
        try:
            with Store(self.settings.store, create=False) as store:
                return stored_gold(store, info, schema, on_warning=self._warn)
        except FanoutError as exc:
            self.notify(str(exc), title="gold labels", severity="warning", timeout=10)
            return None

    def past_tally(self: FanoutApp, gold: Gold | None, rows: Sequence[Row]) -> QualityTally | None:
        """The quality panel shows a stored run: its rows scored against its own labels."""
        self.tally = QualityTally(gold).add_all(rows) if gold is not None else None
        self.show_quality()
        return self.tally

    def keep_quality(self: FanoutApp, run_id: str, quality: QualitySummary) -> None:
        """The run's accuracy into the store, for the past runs list (h)."""
        if self.settings.store is None:
            return
        try:
            with Store(self.settings.store, create=False) as store:
                store.set_quality(run_id, quality.to_dict())
        except FanoutError as exc:
            self.notify(str(exc), title="run store", severity="warning", timeout=10)

    def quality_summary(self: FanoutApp, stats: RunStats) -> QualitySummary | None:
        return summarize(self.tally, stats) if self.tally is not None else None

    def keep_run(self: FanoutApp, label: str, rows: Sequence[Row], schema: type[BaseModel]) -> None:
        self.recent_runs = [*self.recent_runs[-1:], (label, rows, schema)]

    def action_diff_runs(self: FanoutApp) -> None:
        """Compare the last two runs field by field (the rows where they disagree)."""
        if len(self.recent_runs) < 2:
            self.notify("diff needs two runs: run twice (another model, say)", timeout=4)
            return
        (left, left_rows, schema), (right, right_rows, other) = self.recent_runs
        if schema is not other:
            self.notify("the last two runs have different schemas", severity="warning")
            return
        differences = diff_runs(left_rows, right_rows, schema)
        shared = len({r.id for r in left_rows} & {r.id for r in right_rows})
        self.push_screen(RunDiffScreen(diff_text(left, right, differences, shared)))

    # -- the wrong-rows filter ------------------------------------------------------

    def is_wrong(self: FanoutApp, row: Row) -> bool:
        tally = self.tally
        if tally is None:
            return False
        score = tally.score_of(row.id)
        return score is not None and not score.correct

    # -- model and mode ---------------------------------------------------------------

    def chosen_model(self: FanoutApp) -> str:
        return self.run_model or self.settings.endpoint.model

    def chosen_mode(self: FanoutApp) -> str:
        return self.run_mode or self.settings.client.mode

    def run_overrides(self: FanoutApp, model: str | None, mode: str | None) -> dict[str, str]:
        """Keyword arguments for ``engine.run``: only what differs from the engine's own."""
        overrides: dict[str, str] = {}
        if model is not None and model != self.settings.endpoint.model:
            overrides["model"] = model
        if mode is not None and mode != self.settings.client.mode:
            overrides["mode"] = mode
        return overrides

    async def fetch_models(self: FanoutApp) -> list[str]:
        """The endpoint's /v1/models (the simulator lists its profiles), else the priced
        models, and the current one if neither has it. Never raises: a list it cannot
        read is empty."""
        listed: list[str] = []
        try:
            await self._ready_engine()
            import openai

            endpoint = self.engine.endpoint
            client = openai.AsyncOpenAI(
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                timeout=MODEL_LIST_TIMEOUT_S,
                max_retries=0,
            )
            try:
                page = await client.models.list()
                listed = [m.id for m in page.data]
            finally:
                await client.close()
        except Exception:  # noqa: BLE001 - a list it cannot read is no list
            listed = []
        if not listed:
            prices = getattr(self.engine, "_prices", None) or {}
            listed = list(prices)
        current = self.chosen_model()
        self.model_choices = list(dict.fromkeys([*listed, current]))  # a stable order
        return self.model_choices

    def describe_model(self: FanoutApp, model: str) -> str:
        price_of = getattr(self.engine, "price", None)
        try:
            price = price_of(model) if callable(price_of) else None
        except (RuntimeError, FanoutError):  # no endpoint yet
            price = None
        parts = []
        if price is not None:
            parts.append(
                f"${price.input_per_million:g} / ${price.output_per_million:g} per 1M tokens"
            )
        profile = PROFILES.get(model)
        if profile is not None:
            parts.append(profile.summary)
        return " · ".join(parts)

    def action_run_params(self: FanoutApp) -> None:
        """Pick the model (from the endpoint's list and the price table) and the mode."""
        self.pick_run_params()

    async def _pick(self: FanoutApp) -> None:
        models = await self.fetch_models()
        params = [
            RunParam("model", name, self.describe_model(name), name == self.chosen_model())
            for name in models
        ] + [
            RunParam("mode", name, "instructor mode", name == self.chosen_mode()) for name in MODES
        ]
        self.push_screen(RunParamsScreen(params), self.set_run_param)

    def set_run_param(self: FanoutApp, choice: RunParam | None) -> None:
        if choice is None:
            return
        if choice.kind == "model":
            self.run_model = choice.name
        else:
            self.run_mode = choice.name
        self.show_header_now()
        self.notify(f"next runs: model {self.chosen_model()}, mode {self.chosen_mode()}", timeout=4)

    def action_set_model(self: FanoutApp, model: str) -> None:
        self.set_run_param(RunParam("model", model))

    def action_set_mode(self: FanoutApp, mode: str) -> None:
        self.set_run_param(RunParam("mode", mode))

    def action_compare_models(self: FanoutApp) -> None:
        """Run the selected strategy once per model the endpoint lists (compare)."""
        self.sweep_models()

    def action_compare_modes(self: FanoutApp) -> None:
        """Run the selected strategy and model once per instructor mode."""
        self.notify(f"compare modes: {', '.join(MODES)}", timeout=5)
        self.start_plan(
            [(self.strategy, self.concurrency, self.chosen_model(), mode) for mode in MODES]
        )

    @work(group="params", exclusive=True, exit_on_error=False)
    async def pick_run_params(self: FanoutApp) -> None:
        await self._pick()

    @work(group="params", exclusive=True, exit_on_error=False)
    async def sweep_models(self: FanoutApp) -> None:
        models = await self.fetch_models()
        priced = [m for m in models if self.describe_model(m).startswith("$")]
        sweep = sweep_of(models, priced)
        self.notify(f"compare models: {', '.join(sweep)}", timeout=5)
        self.start_plan(
            [(self.strategy, self.concurrency, model, self.chosen_mode()) for model in sweep]
        )


SWEEP_MAX = 6
"""At most this many models in one "compare models"."""


def sweep_of(models: Sequence[str], priced: Sequence[str]) -> list[str]:
    """The models a sweep runs: the listed ones with a price (or a simulator profile);
    all listed when none has one; at most SWEEP_MAX."""
    known = [m for m in models if m in priced or m in PROFILES]
    return (known or list(models))[:SWEEP_MAX]
