"""Markdown for pull requests, wikis and CI job summaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..models import Assessment, HistoryPoint
from .interface import breach_text, safe
from .table import apt_layer, count


def cell(text: object) -> str:
    """Escape what would break a Markdown table cell or inject markup."""
    out = safe(text)
    for ch in "\\|*_`[]<>":
        out = out.replace(ch, "\\" + ch)
    return out


class MarkdownFormat:
    """A GitHub-flavoured Markdown table."""

    def report(self, rows: Sequence[Assessment], history: Mapping[str, Sequence[HistoryPoint]]) -> str:
        """One table row per reference."""
        lines = ["| reference | os | status | verdict | security | pending | oldest security (d) | apt layer (d) |"
                 " breaches |", "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
        for row in rows:
            s = row.summary
            status = s.status.value if s.reason is None else f"{s.status.value} ({s.reason})"
            lines.append("| " + " | ".join(cell(c) for c in (
                s.reference, s.os or "-", status, row.verdict.state.value, count(s.pending_security),
                count(s.pending_total), count(row.oldest_security_age_days, 1), apt_layer(row), breach_text(row),
            )) + " |")
        return "\n".join(lines) + "\n"
