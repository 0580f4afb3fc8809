"""``--workers N``: one run's requests made by N worker processes.

One Python process tops out at about a core's worth of requests (the openai
SDK's request and response layers are most of a row's cost). With
``--workers N`` the parent keeps the run (strategy, limits, events, store) and
N worker processes (``core.workers.child``), each with its own event loop and
client, make the requests; see ``core.workers.pool`` for what stays global and
how a worker's death is survived. ``--workers 1`` is the one-process engine,
unchanged. ``--ray [ADDRESS]`` does the same with Ray actors instead of local
processes (``core.workers.ray_pool``, the only module that imports Ray).

Modules: ``protocol`` (the pipe's frames), ``child`` (a worker process),
``pool`` (the parent's side), ``outcome`` (a row's result both ways),
``budget`` (``--budget`` kept by the parent), ``schemaref`` (the schema class
by name), ``relay`` (what the adaptive strategy learns from, sent to the parent),
``ray_pool`` (the Ray backend).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from pydantic import BaseModel

from core.client import close_client
from core.dataset import Record
from core.errors import ConfigError
from core.ratelimit import Budget, ClientRateLimit
from core.runner import Run
from core.workers.budget import RowBudget

if TYPE_CHECKING:
    from core.engine import Engine
    from core.store import RunMeta
    from core.workers.ray_pool import RayPool


def check_workers(workers: int, strategy: str, ray: str | None = None) -> None:
    """What ``--workers`` above 1 (or ``--ray``) cannot do yet, said before anything starts."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if ray is not None:
        try:
            import ray as _ray  # noqa: F401
        except ImportError:
            raise ConfigError("--ray needs Ray installed: pip install 'fanout[ray]'") from None


@asynccontextmanager
async def run_on_workers(
    engine: Engine,
    records: Sequence[Record],
    schema: type[BaseModel],
    *,
    workers: int,
    strategy: str,
    concurrency: int,
    connections: int,
    max_error_rate: float | None = None,
    keep_values: bool = False,
    ray: str | None = None,
    model: str | None = None,
    mode: str | None = None,
) -> AsyncIterator[Run]:
    """A Run whose rows are extracted by ``workers`` processes (or Ray actors, with
    ``ray``: an address, or "local"), stopped afterwards. ``model`` and ``mode`` override
    the endpoint's model and the options' mode, as for a run in one process."""
    from core.workers.pool import WorkerPool, worker_config

    options = engine.options if mode is None else dataclasses.replace(engine.options, mode=mode)
    endpoint = engine.endpoint
    if model is not None:
        endpoint = dataclasses.replace(endpoint, model=model)
    check_workers(workers, strategy, ray)
    config = worker_config(
        endpoint,
        options,
        schema,
        connections,
        engine.pass_budget,
        relay=strategy == "adaptive",
    )
    budget = None
    estimator = None
    if options.budget_usd is not None and engine.price(model) is not None:
        # for expected costs only; sends nothing
        estimator = engine.extractor(schema, 1, mode=mode, model=model)
        budget = RowBudget(Budget(options.budget_usd), estimator.expected_cost)
    pool: WorkerPool | RayPool
    if ray is not None:
        from core.workers.ray_pool import RayPool

        pool = RayPool(
            workers, config, schema=schema, address=ray, keep_values=keep_values, budget=budget
        )
    else:
        pool = WorkerPool(
            workers,
            config,
            schema=schema,
            limits=ClientRateLimit(options.rpm, options.tpm),
            keep_values=keep_values,
            budget=budget,
        )
    try:
        await pool.start()
    except BaseException:
        if estimator is not None:
            await close_client(estimator.client)
        raise
    try:
        run = Run(
            records,
            pool,
            strategy=strategy,
            concurrency=concurrency,
            max_error_rate=max_error_rate,
            secrets=engine.endpoint.secrets,
            keep_values=keep_values,
            wire=pool.wire,
            bare_429_delays=options.retry.bare_429_delays,
        )
        run.pool = pool  # type: ignore[attr-defined]
        yield run
    finally:
        await pool.close()
        if estimator is not None:
            await close_client(estimator.client)


def with_scale(meta: RunMeta, run: object) -> RunMeta:
    """The run's record says where its requests were made: ``workers`` (how many processes
    or actors) and ``ray`` (the cluster's address, "local" for a local instance), in its
    options; nothing for a run made in one process."""
    pool = getattr(run, "pool", None)
    count = getattr(pool, "count", None)
    if pool is None or not isinstance(count, int):
        return meta
    scale: dict[str, object] = {"workers": count}
    address = getattr(pool, "address", None)
    if isinstance(address, str):
        scale["ray"] = address or "local"
    return dataclasses.replace(meta, options={**meta.options, **scale})
