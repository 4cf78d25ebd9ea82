"""Prometheus textfile-collector output, written atomically (temp file + rename in the same folder),
so node_exporter never reads half a file. Metric names follow Prometheus conventions: base units
(seconds), `_total` only on counters, one metric family per meaning, state sets as 0/1 gauges."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from .errors import StoreError
from .models import Assessment, ScanStatus, VerdictState

DAY = 86400.0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Families:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        samples = list(samples)
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        self.lines.extend(f"{name}{_labels(**labels) if labels else ''} {_num(value)}" for labels, value in samples)


def render(rows: Sequence[Assessment], rebuild_counts: Mapping[tuple[str, str], int], now: datetime,
           duration_seconds: float) -> str:
    """The textfile for one run."""
    f = _Families()
    ok = [r for r in rows if r.summary.status is ScanStatus.OK]
    f.family("driftwatch_pending_updates", "gauge", "Pending apt updates in the image's latest ok scan.",
             [({"image": r.summary.reference, "kind": kind}, value) for r in ok
              for kind, value in (("security", r.summary.pending_security or 0),
                                  ("all", r.summary.pending_total or 0))])
    f.family("driftwatch_oldest_security_update_age_seconds", "gauge",
             "Age of the oldest pending security update, from the first scan that saw it.",
             [({"image": r.summary.reference}, r.oldest_security_age_days * DAY) for r in ok
              if r.oldest_security_age_days is not None])
    f.family("driftwatch_apt_layer_age_seconds", "gauge",
             "Age of the newest image layer that upgraded packages (the base layer when none did).",
             [({"image": r.summary.reference}, r.apt_layer_age_days * DAY) for r in rows
              if r.apt_layer_age_days is not None])
    f.family("driftwatch_image_age_seconds", "gauge", "Age of the image itself.",
             [({"image": r.summary.reference}, r.image_age_days * DAY) for r in rows if r.image_age_days is not None])
    f.family("driftwatch_last_scan_timestamp_seconds", "gauge", "When the latest scan finished (Unix time).",
             [({"image": r.summary.reference}, round(r.summary.scanned_at.timestamp(), 3)) for r in rows])
    f.family("driftwatch_scan_status", "gauge", "Status of the latest scan: 1 for the current status.",
             [({"image": r.summary.reference, "status": s.value}, float(r.summary.status is s))
              for r in rows for s in ScanStatus])
    f.family("driftwatch_verdict", "gauge", "Policy verdict of the latest scan: 1 for the current verdict.",
             [({"image": r.summary.reference, "verdict": v.value}, float(r.verdict.state is v))
              for r in rows for v in VerdictState])
    f.family("driftwatch_rebuilds_total", "counter", "Rebuilds recorded, by outcome.",
             [({"image": image, "outcome": outcome}, n) for (image, outcome), n in sorted(rebuild_counts.items())])
    f.family("driftwatch_run_timestamp_seconds", "gauge", "When this driftwatch run finished (Unix time).",
             [({}, round(now.timestamp(), 3))])
    f.family("driftwatch_run_duration_seconds", "gauge", "How long this driftwatch run took.",
             [({}, round(duration_seconds, 3))])
    return "\n".join(f.lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename; the old file stays if anything fails."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"cannot write metrics to {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StoreError(f"cannot write metrics to {path}: {exc.strerror}") from exc
