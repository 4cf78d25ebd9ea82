"""Plain-text tables for a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..models import ImageSummary, ScanResult, ScanStatus
from .interface import safe


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    cells = [list(header)] + [[safe(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells) + "\n"


class TableFormat:
    """Human-readable tables."""

    def report(self, rows: Sequence[ImageSummary]) -> str:
        """One line per image reference."""
        if not rows:
            return "No scans recorded yet. Run: driftwatch scan IMAGE\n"
        body = []
        for r in rows:
            status = r.status.value if r.reason is None else f"{r.status.value} ({r.reason})"
            body.append([r.reference, (r.image_id or "").removeprefix("sha256:")[:12] or "-", r.os or "-", status,
                         _count(r.pending_security), _count(r.pending_total), _stamp(r.scanned_at)])
        return render(["REFERENCE", "IMAGE ID", "OS", "STATUS", "SECURITY", "PENDING", "SCANNED"], body)

    def updates(self, scan_id: int, scan: ScanResult) -> str:
        """The pending updates of one scan, security first."""
        image = scan.image.short_id if scan.image else "-"
        osl = scan.os_release.label if scan.os_release else "unknown OS"
        head = f"{scan.reference} ({image}, {osl}) scanned {_stamp(scan.finished_at)}: {scan.status.value}"
        if scan.status is not ScanStatus.OK:
            return f"{head} ({scan.reason.value if scan.reason else '?'})\n  {safe(scan.detail or '')}\n"
        head += f", {scan.pending_total} pending, {scan.pending_security} security\n"
        if not scan.updates:
            return head
        rows = []
        for u in sorted(scan.updates, key=lambda u: (not u.security, u.package, u.arch)):
            flags = ",".join(f for f, on in (("held", u.held), ("kept-back", u.kept_back), ("phased", u.phased)) if on)
            rows.append(["S" if u.security else "", u.package, u.arch, f"{u.installed} -> {u.candidate}",
                         ",".join(u.suites), flags])
        return head + render(["SEC", "PACKAGE", "ARCH", "INSTALLED -> CANDIDATE", "ORIGIN", "FLAGS"], rows)
