"""``fanout``: the dashboard, or a headless command (run, bench, serve, ...).

Textual is imported only when the dashboard opens, so headless commands
start fast and need no terminal. Everything heavy is imported inside
``main``, so a Ctrl-C while Python is still loading is one line, not a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_INTERRUPTED = 130


def dashboard_parser() -> argparse.ArgumentParser:
    from core.cli import COMMANDS
    from core.cli_quality import add_gold_option
    from core.options import (
        DEFAULT_STRATEGY,
        add_dataset_options,
        add_endpoint_options,
        add_simulator_options,
        add_store_options,
        add_strategy_options,
    )
    from core.usage import OneLineParser

    commands = "\n".join(f"  {name:<8} {help_text}" for name, (_, help_text) in COMMANDS.items())
    parser = OneLineParser(
        prog="fanout",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A live dashboard for concurrent structured LLM extraction: run a dataset "
        "through for loop, gather, as_completed (with or without a semaphore) and see what each "
        "does to time, order and load.\n\nWith no arguments it opens the bundled people.csv on "
        "the built-in local simulator (no key, no network).",
        epilog=f"commands (fanout COMMAND --help for each):\n{commands}",
    )
    parser.add_argument(
        "dataset", nargs="?", help="CSV, JSONL, JSON or text file (default: bundled people.csv)"
    )
    add_dataset_options(parser)
    add_gold_option(parser)
    add_strategy_options(parser, default=DEFAULT_STRATEGY)
    add_endpoint_options(parser)
    add_simulator_options(parser)
    add_store_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        print("fanout: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(args_list: list[str]) -> int:
    from core.cli import COMMANDS, fail
    from core.cli import main as run_command
    from core.errors import FanoutError
    from core.options import resolve_dataset

    if args_list and args_list[0] in COMMANDS:
        return run_command(args_list)
    args = dashboard_parser().parse_args(args_list)
    try:
        from tui.app import app_from_args

        app = app_from_args(args, resolve_dataset(args.dataset))
    except FanoutError as exc:
        return fail(str(exc))
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    raise SystemExit(main())
