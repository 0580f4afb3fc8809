"""The engine: an endpoint (the local simulator started if needed) and runs on it.

    async with Engine(choose_endpoint(), server=ServerConfig(latency=0.2)) as engine:
        await engine.preflight()
        async with engine.run(records, Person, strategy="gather", concurrency=8) as run:
            stats = await run.execute()

The CLI and the dashboard both go through here; neither talks to the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

import openai
from pydantic import BaseModel

from core.client import (
    MODES,
    Endpoint,
    EndpointChoice,
    build_openai,
    close_client,
    display_url,
    parse_mode,
    prime_client,
)
from core.cores import own_core
from core.dataset import Record
from core.errors import EndpointError
from core.extract import Extractor, RetryPolicy
from core.failures import classify
from core.fairshare import DEFAULT_BUDGET_S, FairShare
from core.localserver import LocalServer, ServerConfig
from core.localserver.profiles import PROFILES
from core.prepared import PreparedRequest, default_max_tokens
from core.prices import FREE, Price, load_prices, price_for, user_prices_path
from core.ratelimit import Budget, ClientRateLimit
from core.results import ErrorKind
from core.runner import Run
from core.strategies import USES_CONCURRENCY


@dataclass(frozen=True)
class ClientOptions:
    mode: str = "tools"
    timeout: float = 60.0
    """Seconds to wait for one attempt's answer."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    system_prompt: str | None = None
    rpm: int | None = None
    """Client-side requests per minute (a leaky bucket), or None."""
    tpm: int | None = None
    """Client-side tokens per minute (estimated before, corrected after), or None."""
    budget_usd: float | None = None
    """Stop a run before its spending would pass this."""
    prices: Path | None = None
    """A prices.toml adding to / overriding the bundled one."""
    max_answer_bytes: int = 10_000_000
    """An answer larger than this fails its row unread (memory stays bounded)."""
    max_tokens: int | None = None
    """``max_tokens`` sent with every request; None: derived from the schema
    (``default_max_tokens``), so no generation runs until the timeout."""
    lenient: bool = False
    """Accept answers instructor rejects for a think block, a json fence or numbers sent
    as strings; such rows are marked ``lenient``."""


def connections_for(strategy: str, concurrency: int, records: int) -> int:
    """How many connections a run can use at once: the pool is sized to that."""
    if strategy == "sequential":
        return 1
    if strategy in USES_CONCURRENCY:
        return min(concurrency, max(1, records))
    return max(1, records)


class Engine:
    def __init__(
        self,
        choice: EndpointChoice,
        *,
        server: ServerConfig | None = None,
        options: ClientOptions | None = None,
        pass_budget: float = DEFAULT_BUDGET_S,
    ) -> None:
        self.choice = choice
        self.server_config = server or ServerConfig()
        self.options = options or ClientOptions()
        self.pass_budget = pass_budget
        """How long a run's work may hold one pass of the event loop (see FairShare)."""
        self._server: LocalServer | None = None
        self._unpin: Callable[[], None] | None = None
        self._endpoint: Endpoint | None = None
        self._prices = load_prices(self.options.prices)

    @classmethod
    def attached(
        cls, endpoint: Endpoint, options: ClientOptions, pass_budget: float = DEFAULT_BUDGET_S
    ) -> Engine:
        """An engine on an endpoint another process started (a worker's; never started)."""
        engine = cls(
            EndpointChoice(endpoint.kind, endpoint.base_url, endpoint.model, endpoint.api_key),
            options=options,
            pass_budget=pass_budget,
        )
        engine._endpoint = endpoint
        return engine

    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            raise RuntimeError("the engine is not started; use `async with Engine(...)`")
        return self._endpoint

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if self._endpoint is not None:
            return
        if self.choice.kind == "local":
            server = LocalServer(self.server_config)
            await server.__aenter__()
            self._server = server
            if server.pid is not None and self.server_config.latency > 0:
                # A simulator that idles between answers gets a core of its own, this
                # (the loop's) thread the others; at zero latency it never idles, and
                # sharing measured faster (see core/cores.py).
                self._unpin = own_core(server.pid)
            self._endpoint = self.choice.with_url(server.base_url)
        else:
            assert self.choice.base_url is not None
            self._endpoint = self.choice.with_url(self.choice.base_url)

    async def close(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.__aexit__(None, None, None)
        if self._unpin is not None:
            unpin, self._unpin = self._unpin, None
            unpin()
        self._endpoint = None

    async def preflight(self, schema: type[BaseModel] | None = None) -> list[str]:
        """Check the endpoint answers and accepts the key before sending N requests.

        Raises EndpointError on a refused key or an unreachable server, and, given the
        run's schema, on a server that rejects the run's mode (naming the modes that
        work; see ``core.probe``). A slow answer or a 503 is "busy", a warning.
        Returns warnings (e.g. the model is not in the endpoint's list).
        """
        endpoint = self.endpoint
        raw = build_openai(endpoint, connections=1, timeout=min(self.options.timeout, 15.0))
        try:
            page = await raw.models.list()
            ids = [m.id for m in page.data]
            # fanout's own simulator behind --base-url serves every mode: no probe needed.
            ours = bool(page.data) and all(
                getattr(m, "owned_by", None) == "fanout" for m in page.data
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise EndpointError(
                f"{endpoint.label} refused the API key (HTTP {exc.status_code}); "
                "check OPENAI_API_KEY"
            ) from None
        except openai.NotFoundError:
            return []  # some OpenAI-compatible servers have no /models; that is fine
        except openai.APIConnectionError as exc:
            failure = classify(exc, endpoint.secrets)
            if failure.kind is ErrorKind.TIMEOUT:
                return [f"{endpoint.label} is busy: {failure.message}; going on"]
            raise EndpointError(
                f"cannot reach {display_url(endpoint.base_url)}: {failure.message}; "
                "is the server running and the URL right?"
            ) from None
        except openai.APIStatusError as exc:
            if exc.status_code in (429, 502, 503, 504):
                return [f"{endpoint.label} is busy (HTTP {exc.status_code} to /models); going on"]
            return [f"{endpoint.label}: /models answered HTTP {exc.status_code}; going on"]
        finally:
            await raw.close()
        warnings = []
        if ids and endpoint.model not in ids:
            shown = ", ".join(ids[:6]) + (" …" if len(ids) > 6 else "")
            warnings.append(f"model {endpoint.model!r} is not in {endpoint.label}'s list ({shown})")
        if self.price() is None:
            warnings.append(
                f"no price known for {endpoint.model!r}: costs show as 0; add it to "
                f"{user_prices_path()} or pass --prices"
            )
            if self.options.budget_usd is not None:
                raise EndpointError(
                    f"--budget needs a price for {endpoint.model!r}; add it to a prices.toml "
                    "(see --prices)"
                )
        if schema is not None and not endpoint.is_simulator and not ours:
            warnings.extend(await self._check_mode(schema))
        return warnings

    async def _check_mode(self, schema: type[BaseModel]) -> list[str]:
        """One request in the run's mode; a mode the server rejects stops the run here,
        with the modes that work (each probed once), instead of failing every row."""
        from core.probe import probe_modes, working

        label, mode = self.endpoint.label, self.options.mode
        (result,) = await probe_modes(self, schema, (mode,))
        if result.verdict == "rejected":
            others = await probe_modes(self, schema, [m for m in MODES if m != mode])
            names = working(others)
            if names:
                raise EndpointError(
                    f"{label} rejects --mode {mode} ({result.detail}); modes that work: "
                    f"{', '.join(names)} (fanout probe shows each)"
                )
            # No mode works: not a question of the mode (a failing server); the rows say.
            return [f"a probe request in --mode {mode} failed: {result.detail}; going on"]
        if result.verdict == "busy":
            return [f"{label} is busy ({result.detail}); going on"]
        if result.verdict == "invalid":
            return [f"a probe request in --mode {mode} did not validate: {result.detail}"]
        if result.verdict == "no answer":
            return [f"a probe request in --mode {mode} failed: {result.detail}; going on"]
        return []

    def price(self, model: str | None = None) -> Price | None:
        """The price of ``model`` (default: the endpoint's) on this endpoint (the simulator
        is free, but for its named profiles, which have made-up prices for the demo);
        None when unknown."""
        model = model or self.endpoint.model
        if self.endpoint.is_simulator:
            if model in PROFILES:
                return price_for(model, self._prices) or FREE
            return FREE
        return price_for(model, self._prices)

    def extractor(
        self,
        schema: type[BaseModel],
        connections: int,
        *,
        mode: str | None = None,
        retry: RetryPolicy | None = None,
        model: str | None = None,
    ) -> Extractor:
        """The run's extractor; ``mode`` and ``retry`` override the options (the probe),
        ``model`` the endpoint's model (a run parameter, like the strategy)."""
        endpoint = self.endpoint
        if model is not None and model != endpoint.model:
            endpoint = replace(endpoint, model=model)
        options = self.options
        fair = FairShare(self.pass_budget)
        client = build_openai(
            endpoint,
            connections=connections,
            timeout=options.timeout,
            pacer=fair,
            max_answer_bytes=options.max_answer_bytes,
        )
        prepared = PreparedRequest(
            schema,
            parse_mode(mode or options.mode),
            endpoint.model,
            options.system_prompt,
            max_tokens=options.max_tokens or default_max_tokens(schema),
            max_tokens_field="max_completion_tokens" if endpoint.kind == "openai" else "max_tokens",
            lenient=options.lenient,
        )
        return Extractor(
            client,
            prepared,
            retry=retry or options.retry,
            secrets=endpoint.secrets,
            limits=ClientRateLimit(options.rpm, options.tpm),
            price=self.price(endpoint.model),
            budget=Budget(options.budget_usd) if options.budget_usd is not None else None,
            fair=fair,
            deadline=options.timeout,
        )

    @asynccontextmanager
    async def run(
        self,
        records: Sequence[Record],
        schema: type[BaseModel],
        *,
        strategy: str,
        concurrency: int,
        max_error_rate: float | None = None,
        keep_values: bool = False,
        model: str | None = None,
        mode: str | None = None,
        workers: int = 1,
        ray: str | None = None,
    ) -> AsyncIterator[Run]:
        """A Run with its own client (pool sized to the run), closed afterwards. ``model``
        and ``mode`` override the endpoint's model and the options' mode for this run; with
        ``workers`` above 1, its requests are made by that many processes, and with ``ray``
        (an address, or "local") by that many Ray actors (``core.workers``)."""
        if workers != 1 or ray is not None:
            from core.workers import run_on_workers

            async with run_on_workers(
                self,
                records,
                schema,
                workers=workers,
                strategy=strategy,
                concurrency=concurrency,
                connections=connections_for(strategy, concurrency, len(records)),
                max_error_rate=max_error_rate,
                keep_values=keep_values,
                ray=ray,
                model=model,
                mode=mode,
            ) as run:
                yield run
            return
        extractor = self.extractor(
            schema,
            connections_for(strategy, concurrency, len(records)),
            mode=mode,
            model=model,
        )
        await prime_client(extractor.client)
        run = Run(
            records,
            extractor,
            strategy=strategy,
            concurrency=concurrency,
            max_error_rate=max_error_rate,
            secrets=self.endpoint.secrets,
            keep_values=keep_values,
            wire=extractor.wire,
            bare_429_delays=extractor.retry.bare_429_delays,
        )
        try:
            yield run
        finally:
            await close_client(extractor.client)
