"""The ``driftwatch`` command. Ctrl-C while driftwatch's modules load (docker, requests: about half a
second) ends it like a Ctrl-C later on: one line and exit 130, not a traceback from an import."""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _interrupted(_signum: int, _frame: FrameType | None) -> None:
    sys.stderr.write("Error: interrupted\n")
    sys.exit(130)


def main() -> None:
    """Load the CLI with Ctrl-C ending quietly, then run it with Python's own Ctrl-C handling."""
    signal.signal(signal.SIGINT, _interrupted)
    from .cli import main as cli

    signal.signal(signal.SIGINT, signal.default_int_handler)
    cli()
