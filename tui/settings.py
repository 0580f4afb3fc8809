"""What the dashboard starts with: dataset, schema, strategy and endpoint, from the command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.client import EndpointChoice, choose_endpoint
from core.engine import ClientOptions
from core.localserver import ServerConfig
from core.options import (
    DEFAULT_CONCURRENCY,
    DEFAULT_STRATEGY,
    client_options_from_args,
    endpoint_from_args,
    server_config_from_args,
    store_path_from_args,
)


@dataclass(frozen=True)
class DashboardSettings:
    dataset: Path
    text_column: str | None = None
    id_column: str | None = None
    schema: str = "Person"
    strategy: str = DEFAULT_STRATEGY
    concurrency: int = DEFAULT_CONCURRENCY
    endpoint: EndpointChoice = field(default_factory=lambda: choose_endpoint(local=True))
    client: ClientOptions = field(default_factory=ClientOptions)
    server: ServerConfig = field(default_factory=ServerConfig)
    max_error_rate: float | None = None
    store: Path | None = None
    """Where runs are recorded (None: not recorded)."""
    gold: Path | None = None
    """A gold label file for the dataset (``--gold``); its own expected columns without."""
    workers: int = 1
    """Worker processes making the requests (``--workers``; 1: the dashboard's own)."""
    ray: str | None = None
    """``--ray``: the Ray cluster's address ("local": a local instance), or None."""

    @property
    def scale(self) -> ScaleOut:
        return ScaleOut(self.workers, self.ray)


@dataclass(frozen=True)
class ScaleOut:
    """Where a run's requests are made: this process, N worker processes, or N Ray actors.

    The dashboard keeps the one chosen for the next runs (``DashboardSettings``) apart
    from the one of the run in flight: the palette can change the first during a run."""

    workers: int = 1
    ray: str | None = None
    """The Ray cluster's address ("local": a local instance), or None."""

    @property
    def here(self) -> bool:
        """The dashboard's own process makes the requests."""
        return self.workers == 1 and self.ray is None

    def run_kwargs(self) -> dict[str, Any]:
        """``Engine.run``'s ``workers`` / ``ray``, when set (nothing for one process)."""
        if self.here:
            return {}
        return {"workers": self.workers, "ray": self.ray}

    def starting_label(self) -> str:
        if self.ray is not None:
            return f"starting {self.workers} Ray actor(s) on {self.where()}…"
        return f"starting {self.workers} worker processes…"

    def where(self) -> str:
        return "a local Ray instance" if self.ray == "local" else str(self.ray)

    def describe(self) -> str:
        """For a message: "2 worker processes", "4 Ray actors on a local Ray instance"."""
        if self.ray is not None:
            actors = "Ray actor" if self.workers == 1 else "Ray actors"
            return f"{self.workers} {actors} on {self.where()}"
        if self.workers == 1:
            return "the dashboard's own process"
        return f"{self.workers} worker processes"


def settings_from_args(args: argparse.Namespace, dataset: Path) -> DashboardSettings:
    return DashboardSettings(
        dataset=dataset,
        text_column=args.text_column,
        id_column=args.id_column,
        schema=args.schema,
        strategy=args.strategy,
        concurrency=args.concurrency,
        endpoint=endpoint_from_args(args),
        client=client_options_from_args(args),
        server=server_config_from_args(args),
        max_error_rate=args.max_error_rate,
        store=store_path_from_args(args),
        gold=Path(args.gold) if getattr(args, "gold", None) else None,
        workers=getattr(args, "workers", 1),
        ray=getattr(args, "ray", None),
    )
