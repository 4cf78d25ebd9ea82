"""``python -m driftwatch``."""

from __future__ import annotations

from .entry import main

main()
