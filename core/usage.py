"""The argument parser every ``fanout`` command uses: usage errors are one line.

argparse prints the whole usage block before its error; fanout prints only::

    fanout: error: argument --concurrency/-c: 0 is too small; ... (see fanout run --help)

and exits with 2, like every other error a user can cause. ``--help`` is unchanged.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_USAGE = 2


def usage_error_line(message: str, prog: str) -> str:
    """The one line for a usage error of ``prog`` (e.g. ``fanout run``)."""
    return f"fanout: error: {' '.join(message.split())} (see {prog} --help)"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, usage_error_line(message, self.prog) + "\n")
