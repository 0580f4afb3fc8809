"""A batch run: the rows of a ``Run`` answered through the Batch API (``--via batch``).

``BatchRun`` is a ``Run`` whose extract is ``BatchJob.extract`` under
``as_completed`` (every row waits on its line at once; none is "in flight" on the
wire), so the run store, the recorder, the exports, the stats and the dashboard treat
it as any other run: each row is recorded the moment its batch is read. While the run
goes, ``BatchJob.drive`` submits and polls the batches. A stopped run (Ctrl-C, the
dashboard's cancel, ``--max-error-rate``) cancels its live batches, unless the job was
detached (SIGHUP, SIGTERM: the batches keep going and ``fanout resume`` collects them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from core.batch.job import BatchJob, BatchSettings
from core.batch.ledger import Ledger
from core.client import build_openai, close_client, prime_client
from core.dataset import Record
from core.errors import ConfigError
from core.extract import Extractor
from core.prices import Price
from core.runner import Run
from core.stats import RunStats

if TYPE_CHECKING:
    from core.engine import Engine

CANCEL_PATIENCE_S = 30.0
"""How long a stopped run waits for its batches' cancel calls."""
CLEAN_UP_PATIENCE_S = 60.0
"""How long a finished run waits for the deletion of its batch files."""


class BatchRun(Run):
    via = "batch"

    def __init__(
        self,
        records: Sequence[Record],
        job: BatchJob,
        *,
        max_error_rate: float | None = None,
        secrets: Sequence[str] = (),
        keep_values: bool = False,
    ) -> None:
        super().__init__(
            records,
            job.extract,
            strategy="as_completed",
            concurrency=max(1, len(records)),
            max_error_rate=max_error_rate,
            secrets=secrets,
            keep_values=keep_values,
            wire=job.online.wire,
        )
        self.job = job
        self.strategy = "batch"
        """What the stats, the summary line and the runs table call it."""

    def detach(self) -> None:
        """Stop without cancelling the batches: they go on, and a resume collects them."""
        self.job.detached = True

    async def execute(self) -> RunStats:
        drive = asyncio.create_task(self.job.drive(), name="fanout-batch-job")
        try:
            return await super().execute()
        finally:
            drive.cancel()
            if self.stopping and not self.job.detached:
                # On failure the batches stay listed with their last status; resume sees them.
                with suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(self.job.cancel_remote(), CANCEL_PATIENCE_S)
            await asyncio.gather(drive, return_exceptions=True)


def estimated_cost(online: Extractor, records: Sequence[Record], price: Price) -> float:
    """What the rows would cost at batch prices, from the same estimates as online."""
    answer = online.estimate_tokens(Record(0, "", "")) - online.prepared.prompt_tokens("")
    prompt = sum(online.prepared.prompt_tokens(record.text) for record in records)
    return price.cost(prompt, answer * len(records))


@asynccontextmanager
async def batch_run(
    engine: Engine,
    records: Sequence[Record],
    schema: type[BaseModel],
    *,
    settings: BatchSettings,
    concurrency: int,
    store_path: Path | None,
    max_error_rate: float | None = None,
    keep_values: bool = False,
    on_change: Callable[[BatchJob], None] | None = None,
    model: str | None = None,
    mode: str | None = None,
) -> AsyncIterator[BatchRun]:
    """A BatchRun on the engine's endpoint; its ledger is the store's ``batches`` table.
    ``model`` and ``mode`` override the endpoint's, as for an online run."""
    connections = max(1, min(concurrency, len(records) or 1))
    online = engine.extractor(schema, connections, mode=mode, model=model)
    price = engine.price(model)
    budget = engine.options.budget_usd
    if budget is not None and price is not None:
        estimate = estimated_cost(online, records, price.for_batch())
        if estimate > budget:
            await close_client(online.client)
            raise ConfigError(
                f"the batch would cost about ${estimate:.4f} (estimated tokens at batch "
                f"prices), over --budget ${budget:.4f}; nothing was sent"
            )
    api = build_openai(engine.endpoint, connections=2, timeout=max(120.0, engine.options.timeout))
    job: BatchJob | None = None
    try:
        await prime_client(online.client)
        job = BatchJob(
            api,
            online,
            records,
            settings,
            Ledger(None),  # until bind(): then the store's, which exists by then
            price=price.for_batch() if price is not None else None,
            secrets=engine.endpoint.secrets,
            concurrency=concurrency,
            store_path=store_path,
            on_change=on_change,
        )
        yield BatchRun(
            records,
            job,
            max_error_rate=max_error_rate,
            secrets=engine.endpoint.secrets,
            keep_values=keep_values,
        )
        # The run ended and its recorder has committed: the files are no longer needed.
        try:
            await asyncio.wait_for(job.clean_up(), CLEAN_UP_PATIENCE_S)
        except TimeoutError:
            job.warnings.append(
                "the batch files were not all deleted in time; they stay in the account's "
                "storage (a resume of this run tries again)"
            )
    finally:
        if job is not None:
            job.ledger.close()
        await close_client(online.client)
        await api.close()
