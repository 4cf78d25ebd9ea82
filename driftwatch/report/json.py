"""Machine-readable JSON. The shape is documented in the README; ``version`` changes on any break."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..models import ImageSummary, ScanResult

SCHEMA_VERSION = 1


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


class JsonFormat:
    """JSON documents for scripts and CI."""

    def report(self, rows: Sequence[ImageSummary]) -> str:
        """``{"version": 1, "images": [...]}``, one object per reference, stalest first."""
        return _dump({"version": SCHEMA_VERSION, "images": [
            {"reference": r.reference, "image_id": r.image_id, "os": r.os, "status": r.status.value,
             "reason": r.reason, "detail": r.detail, "pending_security": r.pending_security,
             "pending_total": r.pending_total, "scanned_at": r.scanned_at.isoformat(), "scan_id": r.scan_id}
            for r in rows
        ]})

    def updates(self, scan_id: int, scan: ScanResult) -> str:
        """One scan with its updates."""
        return _dump({
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
            "updates": [
                {"package": u.package, "arch": u.arch, "installed": u.installed, "candidate": u.candidate,
                 "suites": list(u.suites), "security": u.security, "held": u.held, "kept_back": u.kept_back,
                 "phased": u.phased}
                for u in scan.updates
            ],
        })
