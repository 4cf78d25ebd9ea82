"""The contract every output format implements, and the flat row they share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..models import Assessment, HistoryPoint


class Formatter(Protocol):
    """Renders the report: one row per image (`updates` and `history` are DetailFormatter's)."""

    def report(self, rows: Sequence[Assessment], history: Mapping[str, Sequence[HistoryPoint]]) -> str:
        """The latest scan of each image with its verdict; ``history`` is used by charts only."""


def safe(text: object) -> str:
    """Text from images may carry terminal escape sequences; show control characters as '?'."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def _days(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def flat(row: Assessment) -> dict[str, Any]:
    """The documented fields of one report row (JSON, CSV and Markdown use these names)."""
    s, v = row.summary, row.verdict
    return {
        "reference": s.reference,
        "image_id": s.image_id,
        "os": s.os,
        "status": s.status.value,
        "reason": s.reason,
        "detail": s.detail,
        "verdict": v.state.value,
        "breaches": [{"threshold": b.threshold, "value": round(b.value, 1), "limit": b.limit} for b in v.breaches],
        "verdict_note": v.note,
        "pending_security": s.pending_security,
        "pending_total": s.pending_total,
        "oldest_security_age_days": _days(row.oldest_security_age_days),
        "apt_layer_age_days": _days(row.apt_layer_age_days),
        "apt_layer_command": s.apt_layer_command,
        "has_upgrade_step": (s.apt_layer_command is not None) if s.history_known else None,
        "image_created": s.image_created.isoformat() if s.image_created else None,
        "image_age_days": _days(row.image_age_days),
        "release_eol": s.release_eol.isoformat() if s.release_eol else None,
        "scanned_at": s.scanned_at.isoformat(),
        "scan_id": s.scan_id,
    }


def breach_text(row: Assessment) -> str:
    """``max_security_pending 12 > 0; ...`` or the verdict's note."""
    if row.verdict.breaches:
        return "; ".join(
            f"{b.threshold} {_num(b.value, b.threshold.endswith('_days'))} > {_num(b.limit)}"
            for b in row.verdict.breaches
        )
    return row.verdict.note or ""


def _num(value: float, days: bool = False) -> str:
    """Counts print as integers; measured ages always with one decimal."""
    return f"{value:.1f}" if days or not float(value).is_integer() else str(int(value))
