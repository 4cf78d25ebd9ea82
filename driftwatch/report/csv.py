"""CSV for spreadsheets: the report's documented fields, one row per reference."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from ..models import Assessment, HistoryPoint
from .interface import breach_text, flat

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
            writer.writerow(["" if data[c] is None else data[c] for c in COLUMNS])
        return out.getvalue()
