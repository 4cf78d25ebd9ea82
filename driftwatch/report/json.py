"""Machine-readable JSON. The shape is documented in the README; ``version`` changes on any break."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..models import Assessment, HistoryPoint, ScanResult
from .interface import flat

SCHEMA_VERSION = 1


def dump(doc: dict[str, Any]) -> str:
    """Indented JSON with a trailing newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


class JsonFormat:
    """JSON documents for scripts and CI."""

    def report(self, rows: Sequence[Assessment], history: Mapping[str, Sequence[HistoryPoint]]) -> str:
        """``{"version": 1, "images": [...]}``, one object per reference, stalest first."""
        return dump({"version": SCHEMA_VERSION, "images": [flat(r) for r in rows]})

    def updates(self, scan_id: int, scan: ScanResult) -> str:
        """One scan with its updates."""
        return dump({
            "version": SCHEMA_VERSION,
            "scan_id": scan_id,
            "reference": scan.reference,
            "image_id": scan.image.image_id if scan.image else None,
            "os": scan.os_release.label if scan.os_release else None,
            "status": scan.status.value,
            "reason": scan.reason.value if scan.reason else None,
            "detail": scan.detail,
            "scanned_at": scan.finished_at.isoformat(),
            "pending_security": scan.pending_security,
            "pending_total": scan.pending_total,
            "probe_of": scan.probe_of,
            "warnings": list(scan.warnings),
            "updates": [
                {"package": u.package, "arch": u.arch, "installed": u.installed, "candidate": u.candidate,
                 "suites": list(u.suites), "security": u.security, "held": u.held, "kept_back": u.kept_back,
                 "phased": u.phased, "masked_security": u.masked_security, "esm": u.esm,
                 "security_origin": u.security_origin, "why": u.why}
                for u in scan.updates
            ],
        })

    def history(self, reference: str, points: Sequence[HistoryPoint]) -> str:
        """``{"version": 1, "reference": ..., "scans": [...]}``."""
        return dump({"version": SCHEMA_VERSION, "reference": reference, "scans": [
            {"scan_id": p.scan_id, "scanned_at": p.scanned_at.isoformat(), "image_id": p.image_id,
             "status": p.status.value, "pending_security": p.pending_security, "pending_total": p.pending_total}
            for p in points]})
