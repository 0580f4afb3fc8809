"""The command palette (ctrl+p): every dashboard action by name.

Each command is an action string, run with ``App.run_action``; a command whose
action cannot act now (``App.check_action`` says so, e.g. run during a run) is
left out, just as the footer shows its key disabled.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from core.client import MODES
from core.cores import all_cores
from core.strategies import ARTICLE_STRATEGIES, LABELS, STRATEGIES
from tui.settings import ScaleOut
from tui.widgets.controls import ladder

SEMAPHORE_SIZES = (1, 2, 3, 4, 5, *ladder()[:10])


@dataclass(frozen=True)
class PaletteCommand:
    name: str
    help: str
    action: str

    @property
    def action_name(self) -> str:
        return self.action.split("(", 1)[0]


def palette_commands() -> Iterator[PaletteCommand]:
    yield PaletteCommand("Run the selected strategy", "key r", "run")
    for name in STRATEGIES:
        yield PaletteCommand(
            f"Run {LABELS[name]}", f"select {name} and run it", f"run_strategy('{name}')"
        )
    yield PaletteCommand(
        "Compare all strategies",
        f"run the article's {len(ARTICLE_STRATEGIES)} in turn",
        "compare_all",
    )
    yield PaletteCommand("Cancel the run", "no new requests; finished rows are kept", "cancel")
    for name in STRATEGIES:
        yield PaletteCommand(
            f"Select strategy {LABELS[name]}", name, f"run_strategy('{name}', False)"
        )
    for size in SEMAPHORE_SIZES:
        yield PaletteCommand(
            f"Set semaphore to {size:,}", "requests in flight at most", f"set_semaphore({size})"
        )
    yield PaletteCommand("Limits: requests/min, tokens/min, budget", "for the next runs", "limits")
    yield PaletteCommand("Open a dataset", "CSV, JSONL, JSON or text", "open_dataset")
    yield PaletteCommand("Export results or runs", "to CSV or JSONL", "export")
    yield PaletteCommand("Past runs: open or resume", "runs recorded in the store", "history")
    yield PaletteCommand("Show only failed rows (or all rows)", "toggle, key f", "failed_only")
    yield PaletteCommand("Next failed row", "key n", "next_failed")
    yield PaletteCommand(
        "Show only wrong rows, against gold labels (or all rows)", "toggle, key w", "wrong_only"
    )
    yield PaletteCommand("Model and mode for the next runs", "key m", "run_params")
    yield PaletteCommand(
        "Diff the last two runs, field by field", "rows where they disagree, key d", "diff_runs"
    )
    yield PaletteCommand(
        "Compare models", "run the selected strategy on each listed model", "compare_models"
    )
    yield PaletteCommand(
        "Compare modes", "run the selected strategy and model in each mode", "compare_modes"
    )
    for mode in MODES:
        yield PaletteCommand(
            f"Set mode to {mode}", "instructor mode, next runs", f"set_mode('{mode}')"
        )
    yield PaletteCommand("Switch view: results, chart, runs, quality", "key t", "next_view")
    yield PaletteCommand("Chart: overlay the last runs (or this run only)", "key v", "overlay")
    yield PaletteCommand(
        "Via the Batch API (or online again)", "next runs; half the price; key b", "toggle_via"
    )
    yield PaletteCommand(
        "Batch: finish failed rows online (or not)",
        "rows a batch failed are sent again online",
        "toggle_finish_online",
    )
    yield PaletteCommand("Help: keys and strategies", "key ?", "help")
    yield PaletteCommand("Quit", "key q", "quit")


class _CommandList(Provider):
    """A palette provider over a list of ``PaletteCommand``s (``_commands``)."""

    def _commands(self) -> Iterator[PaletteCommand]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(
                command.name, partial(self.app.run_action, command.action), help=command.help
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.name),
                    partial(self.app.run_action, command.action),
                    help=command.help,
                )


class FanoutCommands(_CommandList):
    def _commands(self) -> Iterator[PaletteCommand]:
        for command in palette_commands():
            if self.app.check_action(command.action_name, ()) is True:
                yield command


class ModelCommands(_CommandList):
    """ "Set model to X" for each model the endpoint lists (or the price table names)."""

    async def startup(self) -> None:
        fetch = getattr(self.app, "fetch_models", None)
        self.models: list[str] = list(await fetch()) if fetch is not None else []

    def _commands(self) -> Iterator[PaletteCommand]:
        if self.app.check_action("set_model", ()) is not True:
            return
        for model in self.models:
            yield PaletteCommand(
                f"Set model to {model}", "the model of the next runs", f"set_model({model!r})"
            )


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the system tells it)."""
    cores = all_cores()
    return len(cores) if cores else os.cpu_count() or 1


def ray_installed() -> bool:
    """Without importing it (Ray takes seconds to import)."""
    return importlib.util.find_spec("ray") is not None


def scale_out_commands(
    cores: int, ray: bool, now: ScaleOut, cluster: ScaleOut | None = None
) -> Iterator[PaletteCommand]:
    """ "Workers: N" for 1 to one more than the usable cores (the simulator, if local, and
    the dashboard take a share of them too), and "Ray actors: N" on a local instance when
    Ray is installed. A Ray cluster's address is typed on the command line (``--ray``);
    ``cluster``, the one it gave, is offered again as it was given."""

    def help_for(choice: ScaleOut, what: str) -> str:
        return f"{'now · ' if choice == now else ''}{what}"

    for workers in range(1, cores + 2):
        choice = ScaleOut(workers)
        what = (
            "requests made by the dashboard's own process"
            if choice.here
            else "worker processes make the requests"
        )
        yield PaletteCommand(
            f"Workers: {workers}",
            help_for(choice, f"{what}, from the next run"),
            f"set_workers({workers})",
        )
    if not ray:
        return
    for workers in range(1, cores + 2):
        choice = ScaleOut(workers, "local")
        yield PaletteCommand(
            f"Ray actors: {workers} on a local instance",
            help_for(choice, "from the next run; a cluster: fanout --ray ADDRESS"),
            f"set_workers({workers}, 'local')",
        )
    if cluster is not None and cluster.ray not in (None, "local"):
        yield PaletteCommand(
            f"Ray actors: {cluster.workers} on {cluster.ray}",
            help_for(cluster, "the command line's cluster, from the next run"),
            f"set_workers({cluster.workers}, {cluster.ray!r})",
        )


class ScaleOutCommands(_CommandList):
    """Where the next runs make their requests: worker processes or local Ray actors."""

    async def startup(self) -> None:
        self.cores = usable_cores()
        self.ray = ray_installed()

    def _commands(self) -> Iterator[PaletteCommand]:
        if self.app.check_action("set_workers", ()) is not True:
            return
        settings = getattr(self.app, "settings", None)
        now = settings.scale if settings is not None else ScaleOut()
        cluster = getattr(self.app, "started_with", None)
        yield from scale_out_commands(self.cores, self.ray, now, cluster)
