"""``fanout serve``: run the local OpenAI-compatible simulator on its own."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable

from core.errors import ConfigError
from core.localserver.config import API_KEY_ENV, DEFAULT_MODEL, ServerConfig
from core.usage import OneLineParser, usage_error_line

_DESCRIPTION = """\
Run fanout's built-in OpenAI-compatible endpoint: a simulator, not a language
model. It answers Chat Completions in the shapes instructor uses (tool calls,
JSON mode, json_schema, fenced JSON), filling the requested schema from the
text with simple rules, with configurable latency, rate limits (real 429s with
retry-after and x-ratelimit-* headers), a concurrency cap and injected faults.

Point any OpenAI client at the printed URL with any API key (or the one given
with --api-key), e.g.
  OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="sk-local")
"""

_EPILOG = """\
examples:
  fanout serve --port 8000
  fanout serve --latency 0.2 --rpm 600 --max-concurrency 8
  fanout serve --latency 0 --error-rate 0.05 --invalid-rate 0.05 --seed 1
"""


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _seconds(text: str) -> float:
    value = _number(text, "a number of seconds >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _number(text, "a number of seconds above 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _number(text, "a fraction between 0 and 1")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _whole(minimum: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def _port(text: str) -> int:
    value = _whole(0, "a port number in 0-65535")(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in 0-65535, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def build_parser(prog: str = "fanout serve") -> argparse.ArgumentParser:
    """The argument parser of ``fanout serve``."""
    defaults = ServerConfig()
    parser = OneLineParser(
        prog=prog,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_argument_group("where it listens")
    where.add_argument(
        "--host",
        default=defaults.host,
        help=f"address to bind (default: {defaults.host}, this machine only)",
    )
    where.add_argument(
        "--port",
        type=_port,
        default=defaults.port,
        help="port to bind; 0 picks a free port (default: 0)",
    )
    where.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' on every route but /health; others get "
        f"OpenAI's 401 invalid_api_key (default: ${API_KEY_ENV}, else any key or none)",
    )
    where.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"model name listed by /v1/models; any requested name is echoed "
        f"(default: {DEFAULT_MODEL})",
    )
    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--latency",
        type=_seconds,
        default=defaults.latency,
        metavar="SECONDS",
        help=f"mean service time per request; 0 answers at once (default: {defaults.latency})",
    )
    timing.add_argument(
        "--jitter",
        type=_fraction,
        default=defaults.jitter,
        metavar="FRACTION",
        help="latency is uniform in [L*(1-j), L*(1+j)]; 0 makes it fixed "
        f"(default: {defaults.jitter})",
    )
    limits = parser.add_argument_group("limits (429 responses)")
    limits.add_argument(
        "--rpm",
        type=_whole(1, "a whole number of requests per minute >= 1"),
        default=None,
        metavar="N",
        help="requests per minute, as a sliding window (default: no limit)",
    )
    limits.add_argument(
        "--tpm",
        type=_whole(1, "a whole number of tokens per minute >= 1"),
        default=None,
        metavar="N",
        help="tokens per minute (prompt + completion estimate), sliding window (default: no limit)",
    )
    limits.add_argument(
        "--rate-window",
        type=_positive_seconds,
        default=defaults.rate_window,
        metavar="SECONDS",
        help="length of the sliding window; it allows rpm*window/60 requests "
        f"(default: {defaults.rate_window:g})",
    )
    limits.add_argument(
        "--max-concurrency",
        type=_whole(1, "a whole number >= 1"),
        default=None,
        metavar="N",
        help="requests served at once before answering 429 (default: no limit)",
    )
    faults = parser.add_argument_group("fault injection (one draw per request)")
    for name, what in (
        ("error", "answer 500 or 503"),
        ("timeout", "hang --timeout-seconds, then answer 504"),
        ("malformed", "answer 200 with truncated JSON"),
        ("invalid", "answer 200 with well-formed JSON of the wrong types"),
    ):
        faults.add_argument(
            f"--{name}-rate",
            type=_fraction,
            default=0.0,
            metavar="F",
            help=f"fraction of requests that {what} (default: 0)",
        )
    faults.add_argument(
        "--timeout-seconds",
        type=_seconds,
        default=defaults.timeout_seconds,
        metavar="SECONDS",
        help=f"how long a timeout fault hangs (default: {defaults.timeout_seconds:g})",
    )
    faults.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="seed for latency and fault draws, for repeatable runs (default: random)",
    )
    add_batch_arguments(parser, defaults)
    parser.add_argument(
        "--parent-watch",
        action="store_true",
        help="exit when stdin reaches end of file (for a server started by another process)",
    )
    return parser


def add_batch_arguments(parser: argparse.ArgumentParser, defaults: ServerConfig) -> None:
    group = parser.add_argument_group("Batch API (files and batches endpoints)")
    group.add_argument(
        "--batch-time-scale",
        type=_positive_seconds,
        default=defaults.batch_time_scale,
        metavar="X",
        help="simulated seconds per real second (default: "
        f"{defaults.batch_time_scale:g}, so the 24 h window lasts "
        f"{24 * 3600 / defaults.batch_time_scale:g} s)",
    )
    group.add_argument(
        "--batch-duration",
        type=_seconds,
        default=defaults.batch_duration,
        metavar="SECONDS",
        help=f"simulated seconds a batch takes (default: {defaults.batch_duration:g})",
    )
    for name, what in (
        ("expire", "expire with half their lines unanswered"),
        ("reject", "fail validation"),
    ):
        group.add_argument(
            f"--batch-{name}-rate",
            type=_fraction,
            default=0.0,
            metavar="F",
            help=f"fraction of batches that {what} (default: 0)",
        )
    group.add_argument(
        "--batch-line-error-rate",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="fraction of batch lines answered 500 (default: 0)",
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """A validated ServerConfig from parsed arguments (raises ConfigError)."""
    return ServerConfig(
        host=args.host,
        port=args.port,
        latency=args.latency,
        jitter=args.jitter,
        rpm=args.rpm,
        tpm=args.tpm,
        rate_window=args.rate_window,
        max_concurrency=args.max_concurrency,
        error_rate=args.error_rate,
        malformed_rate=args.malformed_rate,
        timeout_rate=args.timeout_rate,
        invalid_rate=args.invalid_rate,
        timeout_seconds=args.timeout_seconds,
        seed=args.seed,
        batch_time_scale=args.batch_time_scale,
        batch_duration=args.batch_duration,
        batch_expire_rate=args.batch_expire_rate,
        batch_reject_rate=args.batch_reject_rate,
        batch_line_error_rate=args.batch_line_error_rate,
        model=args.model,
        api_key=args.api_key,
    )


def main(argv: list[str] | None = None, prog: str = "fanout serve") -> int:
    """Run ``fanout serve``; returns the exit status (2 for bad options)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a bad option already reported by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(usage_error_line(str(exc), prog), file=sys.stderr)
        return 2
    from core.localserver.serve import serve

    try:
        serve(config, parent_watch=args.parent_watch)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"{prog}: error: cannot listen on {config.host}:{config.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    return 0
