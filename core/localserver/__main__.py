"""``python -m core.localserver [options]``: the same as ``fanout serve``."""

from __future__ import annotations

import sys

from core.localserver.cli import main

if __name__ == "__main__":
    try:
        sys.exit(main(prog="python -m core.localserver"))
    except KeyboardInterrupt:  # Ctrl-C before the server took over the signal
        sys.exit(0)
