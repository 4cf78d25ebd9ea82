"""Pure: thresholds + the latest facts about a reference -> a verdict. No I/O, no clock of its own.

A failed or unsupported latest scan is never "passing": its verdict is FAILED (exit 3).
An end-of-life release is a verdict of its own (EOL), because zero pending updates there means the
archive stopped, not that the image is fresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .config import Settings, Thresholds
from .models import Assessment, Breach, ImageSummary, ScanStatus, Verdict, VerdictState

DAY = 86400.0


def age_days(since: datetime | None, now: datetime) -> float | None:
    """Whole and fractional days from ``since`` to ``now``; None when unknown."""
    return None if since is None else max(0.0, (now - since).total_seconds() / DAY)


def evaluate(reference: str, summary: ImageSummary | None, limits: Thresholds, now: datetime) -> Verdict:
    """The verdict for one reference from its latest scan."""
    if summary is None:
        return Verdict(reference, VerdictState.UNSCANNED, note="no scan recorded")
    if summary.status is not ScanStatus.OK:
        return Verdict(reference, VerdictState.FAILED,
                       note=f"latest scan {summary.status.value}: {summary.reason or 'unknown'}")
    breaches = []
    checks: tuple[tuple[str, float | None, float | None], ...] = (
        ("max_security_pending", _first(summary.actionable_security, summary.pending_security),
         limits.max_security_pending),
        ("max_total_pending", _first(summary.actionable_total, summary.pending_total), limits.max_total_pending),
        ("max_security_age_days", age_days(summary.oldest_security_since, now), limits.max_security_age_days),
        ("max_apt_layer_age_days", age_days(summary.apt_layer_created, now), limits.max_apt_layer_age_days),
    )
    for name, value, limit in checks:
        if limit is not None and value is not None and value > limit:
            breaches.append(Breach(name, value, limit))
    if summary.release_eol is not None and now.date() > summary.release_eol:
        return Verdict(reference, VerdictState.EOL, tuple(breaches),
                       note=f"release ended {summary.release_eol.isoformat()}")
    return Verdict(reference, VerdictState.BREACH if breaches else VerdictState.OK, tuple(breaches))


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def exit_code(verdicts: list[Verdict]) -> int:
    """3 when any reference could not be decided, else 1 on any breach or EOL, else 0."""
    states = {v.state for v in verdicts}
    if states & {VerdictState.FAILED, VerdictState.UNSCANNED}:
        return 3
    if states & {VerdictState.BREACH, VerdictState.EOL}:
        return 1
    return 0


def assess(summaries: Sequence[ImageSummary], settings: Settings, now: datetime) -> list[Assessment]:
    """Verdicts and ages for each summary, in the summaries' order (stalest first)."""
    return [
        Assessment(
            s,
            evaluate(s.reference, s, settings.thresholds_for(s.reference), now),
            age_days(s.oldest_security_since, now),
            age_days(s.apt_layer_created, now),
            age_days(s.image_created, now),
        )
        for s in summaries
    ]
