"""Command-line options shared by ``fanout`` (the dashboard) and its headless commands.

Parsing turns every bad value into one clear message (argparse's exit 2);
``*_from_args`` turn a namespace into the engine's typed configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from urllib.parse import urlsplit

from core.client import MODES, EndpointChoice, choose_endpoint
from core.engine import ClientOptions
from core.extract import RetryPolicy
from core.localserver import ServerConfig
from core.strategies import STRATEGIES

DEFAULT_CONCURRENCY = 8
DEFAULT_STRATEGY = "as_completed_semaphore"


def bundled_datasets_dir() -> Path:
    """Where the bundled datasets are: inside the wheel, or the repo when editable."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "bundled_datasets", here.parent / "datasets"):
        if (candidate / "people.csv").is_file():
            return candidate
    return here.parent / "datasets"


def default_dataset() -> Path:
    return bundled_datasets_dir() / "people.csv"


def resolve_dataset(value: str | None) -> Path:
    """A dataset path; a bare bundled name (``people_1000.csv``) also works from anywhere."""
    if value is None:
        return default_dataset()
    path = Path(value).expanduser()
    if not path.exists() and not path.is_absolute() and len(path.parts) == 1:
        bundled = bundled_datasets_dir() / path
        if bundled.exists():
            return bundled
    return path


# -- value parsers: each raises ArgumentTypeError with the fix ----------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small; it must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; it must be 0 or more")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("it must be more than 0")
    return value


def fraction(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def strategy_name(text: str) -> str:
    name = text.strip().lower().replace("-", "_")
    if name not in STRATEGIES:
        raise argparse.ArgumentTypeError(
            f"unknown strategy {text!r}; choose one of: {', '.join(STRATEGIES)}"
        )
    return name


def mode_name(text: str) -> str:
    name = text.strip().lower()
    if name not in MODES:
        raise argparse.ArgumentTypeError(
            f"unknown mode {text!r}; choose one of: {', '.join(MODES)}"
        )
    return name


def base_url_option(text: str) -> str:
    """A --base-url that parses and holds no credentials; the rest is checked by the client.

    The messages never repeat the value: it may hold a password or a key.
    """
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            "not a URL; expected http(s)://host[:port]/v1, e.g. http://127.0.0.1:8000/v1"
        ) from None
    if "@" in parts.netloc:
        raise argparse.ArgumentTypeError(
            "credentials in the URL (user:password@host) are not supported; "
            "put the key in OPENAI_API_KEY"
        )
    return text


# -- option groups ----------------------------------------------------------


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset")
    group.add_argument(
        "--text-column",
        metavar="NAME",
        help="CSV column / JSON key holding the text (default: text)",
    )
    group.add_argument(
        "--id-column",
        metavar="NAME",
        help="CSV column / JSON key holding each row's id, to join results back to the "
        "input (default: id, when present; else the line number)",
    )
    group.add_argument(
        "--schema",
        default="Person",
        metavar="SPEC",
        help="response model: Person, Contact, Review, path/to/file.py:Class or "
        "package.module:Class (default: Person)",
    )


def add_strategy_options(
    parser: argparse.ArgumentParser, *, default: str | None, choose: bool = True
) -> None:
    """--strategy (unless ``choose`` is False: bench has its own --strategies) and limits."""
    group = parser.add_argument_group("strategy")
    if choose:
        group.add_argument(
            "--strategy",
            "-s",
            type=strategy_name,
            default=default,
            metavar="NAME",
            help=f"one of {', '.join(STRATEGIES)}" + (f" (default: {default})" if default else ""),
        )
    group.add_argument(
        "--concurrency",
        "-c",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="semaphore size for the *_semaphore strategies, ceiling for adaptive "
        f"(default: {DEFAULT_CONCURRENCY})",
    )
    group.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="make the requests from N worker processes (default 1: this process); "
        "concurrency, --rpm/--tpm and adaptive's limit stay limits for the whole run",
    )
    group.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="make the requests from Ray actors (--workers of them) on the cluster at "
        "ADDRESS (ray://host:10001 or host:6379), or on a local Ray instance when no address "
        "is given; needs pip install 'fanout[ray]'",
    )
    group.add_argument(
        "--rpm",
        type=positive_int,
        metavar="N",
        help="client-side limit: at most N requests per minute (leaky bucket)",
    )
    group.add_argument(
        "--tpm",
        type=positive_int,
        metavar="N",
        help="client-side limit: at most N tokens per minute (estimated, then corrected)",
    )
    group.add_argument(
        "--budget",
        type=positive_float,
        metavar="USD",
        help="stop cleanly before the run's cost would pass this many dollars",
    )
    group.add_argument(
        "--prices",
        type=Path,
        metavar="PATH",
        help="a prices.toml adding to or overriding the bundled price table",
    )
    group.add_argument(
        "--max-error-rate",
        type=fraction,
        default=None,
        metavar="F",
        help="stop the run early when more than this share of finished rows failed "
        "(judged after 20 rows), e.g. 0.5",
    )


def add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "endpoint",
        "With no --base-url and no OPENAI_API_KEY, fanout starts its built-in local "
        "simulator (no key, no network). With OPENAI_API_KEY set it uses OpenAI.",
    )
    group.add_argument(
        "--base-url",
        type=base_url_option,
        metavar="URL",
        help="any OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
        "(vLLM, Ollama, llama.cpp); 'local' forces the simulator",
    )
    group.add_argument("--local", action="store_true", help="use the built-in simulator")
    group.add_argument("--model", metavar="NAME", help="model name (default depends on endpoint)")
    group.add_argument(
        "--mode",
        type=mode_name,
        default="tools",
        metavar="MODE",
        help=f"instructor mode: {', '.join(MODES)} (default: tools)",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="seconds to wait for one attempt (default: 60)",
    )
    group.add_argument(
        "--max-answer-mb",
        type=positive_float,
        default=10.0,
        metavar="MB",
        help="an answer larger than this fails its row, unread (default: 10)",
    )
    group.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=3,
        metavar="N",
        help="retries of 5xx / timeouts / dropped connections per row, with "
        "jittered backoff honouring retry-after (default: 3); 429s get at least 6 "
        "(0: no retries at all)",
    )
    group.add_argument(
        "--validation-retries",
        type=non_negative_int,
        default=1,
        metavar="N",
        help="instructor re-asks when the answer does not validate (default: 1)",
    )
    group.add_argument(
        "--system-prompt", metavar="TEXT", help="a system message sent before each text"
    )
    group.add_argument(
        "--max-tokens",
        type=positive_int,
        default=None,
        metavar="N",
        help="max_tokens of every answer (default: derived from the schema, at least 256); "
        "an answer cut there fails as 'truncated at N tokens'",
    )
    group.add_argument(
        "--lenient",
        action="store_true",
        help="accept answers instructor rejects for a <think> block, a json fence or "
        "numbers sent as strings; such rows are marked lenient (default: strict)",
    )


def add_simulator_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "local simulator", "Only used when fanout starts its built-in endpoint."
    )
    group.add_argument(
        "--latency",
        type=non_negative_float,
        default=None,
        metavar="SECONDS",
        help="mean simulated latency per request (default: 0.8)",
    )
    group.add_argument(
        "--jitter",
        type=fraction,
        default=None,
        metavar="F",
        help="latency varies uniformly by ±F of the mean; 0 = fixed (default: 0.25)",
    )
    group.add_argument("--sim-rpm", type=positive_int, metavar="N", help="server requests/minute")
    group.add_argument("--sim-tpm", type=positive_int, metavar="N", help="server tokens/minute")
    group.add_argument(
        "--sim-max-concurrency", type=positive_int, metavar="N", help="server 429s beyond N at once"
    )
    group.add_argument("--sim-error-rate", type=fraction, metavar="F", help="share of 5xx answers")
    group.add_argument(
        "--sim-malformed-rate", type=fraction, metavar="F", help="share of broken-JSON answers"
    )
    group.add_argument(
        "--sim-invalid-rate", type=fraction, metavar="F", help="share of wrong-type answers"
    )
    group.add_argument(
        "--sim-timeout-rate", type=fraction, metavar="F", help="share of requests that hang"
    )
    group.add_argument(
        "--sim-rate-window",
        type=positive_float,
        metavar="SECONDS",
        help="the simulator's rate-limit window (default 60; allowance scales with it)",
    )
    group.add_argument("--sim-seed", type=int, metavar="N", help="seed for the simulator")


def endpoint_from_args(args: argparse.Namespace) -> EndpointChoice:
    return choose_endpoint(args.base_url, args.model, local=args.local)


def client_options_from_args(args: argparse.Namespace) -> ClientOptions:
    return ClientOptions(
        mode=args.mode,
        timeout=args.timeout,
        retry=RetryPolicy(max_retries=args.max_retries, validation_retries=args.validation_retries),
        system_prompt=args.system_prompt,
        rpm=args.rpm,
        tpm=args.tpm,
        budget_usd=args.budget,
        prices=args.prices,
        max_answer_bytes=int(args.max_answer_mb * 1_000_000),
        max_tokens=args.max_tokens,
        lenient=args.lenient,
    )


def server_config_from_args(args: argparse.Namespace) -> ServerConfig:
    changes = {
        "latency": args.latency,
        "jitter": args.jitter,
        "rpm": args.sim_rpm,
        "tpm": args.sim_tpm,
        "max_concurrency": args.sim_max_concurrency,
        "error_rate": args.sim_error_rate,
        "malformed_rate": args.sim_malformed_rate,
        "invalid_rate": args.sim_invalid_rate,
        "timeout_rate": args.sim_timeout_rate,
        "seed": args.sim_seed,
        "rate_window": args.sim_rate_window,
    }
    kwargs = {name: value for name, value in changes.items() if value is not None}
    return dataclasses.replace(ServerConfig(), **kwargs)


def add_store_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run store", "Every run is recorded, so it can be resumed.")
    group.add_argument(
        "--store",
        metavar="PATH",
        help="the run store (default: $FANOUT_STORE, else runs.sqlite3 in the user data folder)",
    )
    group.add_argument("--no-store", action="store_true", help="do not record runs")


def store_path_from_args(args: argparse.Namespace) -> Path | None:
    from core.store import resolve_store_path

    return None if args.no_store else resolve_store_path(args.store)
