"""The ``driftwatch`` command. Ctrl-C or SIGTERM while driftwatch's modules load (docker, requests:
about half a second) ends it as one later does: one line and exit 130, not a traceback from an
import (Ctrl-C) or exit 143 (SIGTERM)."""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _interrupted(_signum: int, _frame: FrameType | None) -> None:
    sys.stderr.write("Error: interrupted\n")
    sys.exit(130)


def main() -> None:
    """Load the CLI with Ctrl-C and SIGTERM ending quietly, then run it with Python's own Ctrl-C
    handling (the CLI turns SIGTERM into it while a command runs)."""
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    from .cli import main as cli

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    cli()
