"""The ``dreamline`` console script's entry point (and ``python -m dreamline``).

Importing dreamline.cli imports torch (seconds).  Ctrl-C before the REPL or the batch run has
its own handling (while importing, reading the models file, loading the model at start) exits
quietly with status 130 and one short line, instead of a Python traceback.  This module imports
nothing heavy itself, so it is in place before the first import starts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

INTERRUPTED_STATUS = 130  # 128 + SIGINT, as a shell reports Ctrl-C
INTERRUPTED_LINE = "dreamline: stopped (Ctrl-C)"


def stopped() -> int:
    """Say the one line (when stderr still takes it) and return status 130."""
    try:
        print(INTERRUPTED_LINE, file=sys.stderr)
    except (OSError, ValueError):  # stderr closed or gone: stay quiet
        pass
    return INTERRUPTED_STATUS


def main(argv: Sequence[str] | None = None) -> int:
    """Import and run dreamline.cli.main; Ctrl-C while importing it is status 130."""
    try:
        from dreamline.cli import main as cli_main
    except KeyboardInterrupt:
        return stopped()
    return cli_main(argv)
