"""CSV for spreadsheets: the report's documented fields, one row per reference.

Text from images (an os-release's ID and VERSION_ID, a detail) reaches the cells: control
characters are shown as '?', as on the terminal, and a cell a spreadsheet would run as a formula
(starting with = + - @, a tab or a carriage return) is prefixed with an apostrophe (OWASP's advice
against CSV injection). JSON carries the values exactly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from ..models import Assessment, HistoryPoint
from .interface import breach_text, flat, safe

COLUMNS = ("reference", "image_id", "os", "status", "reason", "verdict", "breaches", "pending_security",
           "pending_total", "oldest_security_age_days", "apt_layer_age_days", "has_upgrade_step", "image_age_days",
           "release_eol", "scanned_at")


class CsvFormat:
    """RFC 4180 CSV with a header row."""

    def report(self, rows: Sequence[Assessment], history: Mapping[str, Sequence[HistoryPoint]]) -> str:
        """One row per reference; ``breaches`` is the same text the table shows."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            data = flat(row) | {"breaches": breach_text(row)}
            writer.writerow([cell(data[c]) for c in COLUMNS])
        return out.getvalue()


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """A value as a spreadsheet may safely read it: numbers as they are, text without control
    characters and never starting a formula."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    return ("'" if value[:1] in _FORMULA else "") + safe(value)
