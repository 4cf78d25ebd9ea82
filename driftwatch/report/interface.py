"""The contract every output format implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..models import ImageSummary, ScanResult


class Formatter(Protocol):
    """Renders the report (one row per image) and one image's pending updates."""

    def report(self, rows: Sequence[ImageSummary]) -> str:
        """The latest scan of each image."""

    def updates(self, scan_id: int, scan: ScanResult) -> str:
        """The pending updates of one scan."""


def safe(text: object) -> str:
    """Text from images may carry terminal escape sequences; show control characters as '?'."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))
