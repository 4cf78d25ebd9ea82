"""Plain-text tables for a terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ..models import Assessment, HistoryPoint, ScanResult, ScanStatus
from .interface import breach_text, safe


def stamp(when: datetime) -> str:
    """``2026-12-03 16:27 UTC``."""
    return when.strftime("%Y-%m-%d %H:%M UTC")


def count(value: int | float | None, digits: int = 0) -> str:
    """A number, or ``-`` when unknown."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if digits else str(value)


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    cells = [list(header)] + [[safe(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells) + "\n"


def apt_layer(row: Assessment) -> str:
    """Age of the apt layer in days, marked ``(base)`` when no layer upgrades packages."""
    if not row.summary.history_known:
        return "-"
    days = count(row.apt_layer_age_days, 1)
    return days if row.summary.apt_layer_command else f"{days} (base)"


class TableFormat:
    """Human-readable tables."""

    def report(self, rows: Sequence[Assessment], history: Mapping[str, Sequence[HistoryPoint]]) -> str:
        """One line per image reference, then one line per breach."""
        if not rows:
            return "No scans recorded yet. Run: driftwatch scan IMAGE\n"
        body = []
        for row in rows:
            s = row.summary
            status = s.status.value if s.reason is None else f"{s.status.value} ({s.reason})"
            body.append([s.reference, (s.image_id or "").removeprefix("sha256:")[:12] or "-", s.os or "-", status,
                         row.verdict.state.value, count(s.pending_security), count(s.pending_total),
                         count(row.oldest_security_age_days, 1), apt_layer(row), stamp(s.scanned_at)])
        out = render(["REFERENCE", "IMAGE ID", "OS", "STATUS", "VERDICT", "SECURITY", "PENDING", "SEC AGE (d)",
                      "APT LAYER (d)", "SCANNED"], body)
        notes = [f"  {safe(r.summary.reference)}: {safe(breach_text(r))}" for r in rows if breach_text(r)]
        return out + ("\n" + "\n".join(notes) + "\n" if notes else "")

    def updates(self, scan_id: int, scan: ScanResult) -> str:
        """The pending updates of one scan, security first."""
        image = scan.image.short_id if scan.image else "-"
        osl = scan.os_release.label if scan.os_release else "unknown OS"
        head = f"{safe(scan.reference)} ({image}, {safe(osl)}) scanned {stamp(scan.finished_at)}: {scan.status.value}"
        if scan.status is not ScanStatus.OK:
            return f"{head} ({scan.reason.value if scan.reason else '?'})\n  {safe(scan.detail or '')}\n"
        head += f", {scan.pending_total} pending, {scan.pending_security} security"
        head += f" (same apt state as {safe(scan.probe_of)}: its probe's answer)\n" if scan.probe_of else "\n"
        head += "".join(f"  warning: {safe(w)}\n" for w in scan.warnings)
        if not scan.updates:
            return head
        rows = []
        for u in sorted(scan.updates, key=lambda u: (not u.security, u.package, u.arch)):
            flags = ",".join(f for f, on in (("masked", u.masked_security), ("esm", u.esm), ("held", u.held),
                                             ("kept-back", u.kept_back), ("phased", u.phased)) if on)
            rows.append(["S" if u.security else "", u.package, u.arch, f"{u.installed} -> {u.candidate}",
                         ",".join(u.suites), flags])
        return head + render(["SEC", "PACKAGE", "ARCH", "INSTALLED -> CANDIDATE", "ORIGIN", "FLAGS"], rows)

    def history(self, reference: str, points: Sequence[HistoryPoint]) -> str:
        """Every scan of one reference, oldest first."""
        rows = [[stamp(p.scanned_at), (p.image_id or "").removeprefix("sha256:")[:12] or "-", p.status.value,
                 count(p.pending_security), count(p.pending_total)] for p in points]
        return render(["SCANNED", "IMAGE ID", "STATUS", "SECURITY", "PENDING"], rows)
