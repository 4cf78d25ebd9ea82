"""`driftwatch run`: the nightly job in one call. Scan the configured images, store, evaluate,
rebuild what breached (where configured), re-scan what was rebuilt, alert, write metrics.

One image failing never stops the others. The caller holds the run lock, so probe containers left
behind by a crashed run are removed first. No docker, requests or SQL here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from . import metrics, policy
from .config import Settings
from .errors import StoreError
from .fleet import ScansLost
from .models import Assessment, ProbeVolume, RebuildRecord, RebuildResult, ScanResult, ScanStatus, VerdictState
from .rebuild import Builder, Rebuilder
from .report.interface import breach_text
from .store import Store

logger = logging.getLogger(__name__)


class NightlyEngine(Builder, Protocol):
    """The engine calls a run makes besides scanning."""

    def local_tags(self) -> list[str]:
        """Tagged local images."""

    def leftover_probes(self, *, this_run: bool = True) -> list[str]:
        """Probe containers present."""

    def remove_probes(self, ids: list[str]) -> list[str]:
        """Remove probe containers."""

    def find_volumes(self) -> list[ProbeVolume]:
        """driftwatch's package-lists volumes of this scope."""

    def remove_volumes(self, names: list[str]) -> list[str]:
        """Remove volumes."""


@dataclass
class RunSummary:
    """What one run did; ``exit_code`` follows the README's table."""

    scans: list[ScanResult] = field(default_factory=list)
    rebuilds: list[RebuildRecord] = field(default_factory=list)
    rows: list[Assessment] = field(default_factory=list)
    leftovers_removed: int = 0
    volumes_removed: int = 0  # package-lists volumes left by a crashed run
    alerts_sent: int = 0
    alert_errors: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def needs_a_person(self) -> bool:
        """Anything that a quiet cron run must still print."""
        return self.exit_code != 0 or self.leftovers_removed > 0 or self.volumes_removed > 0

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` summary."""
        return {
            "version": 1,
            "exit_code": self.exit_code,
            "scanned": len(self.scans),
            "scans_not_ok": [{"reference": s.reference, "status": s.status.value,
                              "reason": s.reason.value if s.reason else None, "detail": s.detail}
                             for s in self.scans if s.status is not ScanStatus.OK],
            "verdicts": {r.summary.reference: r.verdict.state.value for r in self.rows},
            "breaches": {r.summary.reference: breach_text(r) for r in self.rows if r.verdict.breaches},
            "rebuilds": [{"reference": r.reference, "outcome": r.outcome.value, "detail": r.detail}
                         for r in self.rebuilds],
            "alerts_sent": self.alerts_sent,
            "alert_errors": self.alert_errors,
            "leftovers_removed": self.leftovers_removed,
            "leftover_volumes_removed": self.volumes_removed,
        }


@dataclass
class Nightly:
    """One run's collaborators; ``scan`` scans one reference (a Scanner's ``scan``), ``scan_all`` many
    at once, yielding results as they finish (a Fleet's ``scan``; default: ``scan`` one by one)."""

    settings: Settings
    store: Store
    engine: NightlyEngine
    scan: Callable[[str], ScanResult]
    clock: Callable[[], datetime]
    post: Callable[..., tuple[bool, str]] | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    scan_all: Callable[[list[str]], Generator[ScanResult, None, None]] | None = None

    def run(self, *, rebuild: bool = True, notify: bool = True, metrics_path: Path | None = None) -> RunSummary:
        """The whole job."""
        started = time.monotonic()
        summary = RunSummary()
        leftovers = self.engine.leftover_probes(this_run=False)
        if leftovers:
            summary.leftovers_removed = len(self.engine.remove_probes(leftovers))
            logger.warning("removed %d probe container(s) left by an earlier run", summary.leftovers_removed)
        volumes = [v.name for v in self.engine.find_volumes()]
        if volumes:
            summary.volumes_removed = len(self.engine.remove_volumes(volumes))
            logger.warning("removed %d package-lists volume(s) left by an earlier run", summary.volumes_removed)
        targets = self.settings.select(self.engine.local_tags() if self.settings.has_patterns else [])
        scan_all = self.scan_all or (lambda refs: (self.scan(r) for r in refs))
        try:
            with contextlib.closing(scan_all(targets)) as results:
                for result in results:  # stored on this thread as each finishes
                    self.store.save_scan(result)
                    summary.scans.append(result)
                    logger.info("%s: %s", result.reference, result.status.value)
        except ScansLost as lost:  # recorded failed, as `driftwatch scan` records them; the run stops
            for result in lost.results(self.clock()):
                try:
                    self.store.save_scan(result)
                except StoreError as exc:
                    logger.warning("could not record the interrupted scan of %s: %s", result.reference, exc)
            raise
        rows = policy.assess(self.store.latest(targets), self.settings, self.clock())
        if rebuild:
            summary.rebuilds = self._rebuild(rows)
            if summary.rebuilds:
                rows = policy.assess(self.store.latest(targets), self.settings, self.clock())
        summary.rows = rows
        if notify and self.settings_has_targets:
            from .alerts import notify as send_alerts

            outcome = send_alerts(self.store, self.settings, rows, self.clock(), environ=self.environ,
                                  rebuilds={r.reference: r for r in summary.rebuilds})
            summary.alerts_sent = outcome.delivered
            summary.alert_errors = list(outcome.errors)
        summary.exit_code = self._exit_code(summary)
        if metrics_path is not None:
            text = metrics.render(rows, self.store.rebuild_counts(), self.clock(), time.monotonic() - started)
            metrics.write_atomically(metrics_path, text)
        return summary

    @property
    def settings_has_targets(self) -> bool:
        """True when ``[[notify]]`` targets are configured."""
        return bool(getattr(self.settings, "notify", ()))

    def _rebuild(self, rows: list[Assessment]) -> list[RebuildRecord]:
        rebuilder = Rebuilder(self.settings, self.store, self.engine, self.scan, self.post, self.clock,
                              self.environ)
        plans = []
        for row in rows:
            ref = row.summary.reference
            if row.verdict.state in (VerdictState.BREACH, VerdictState.EOL) and self.settings.rebuild_for(ref):
                plan = rebuilder.plan(ref, breach_text(row))
                if plan.skip:
                    logger.info("%s: rebuild skipped: %s", ref, plan.skip)
                else:
                    plans.append(plan)
        return rebuilder.run(plans, {r.summary.reference: r.summary for r in rows}) if plans else []

    @staticmethod
    def _exit_code(summary: RunSummary) -> int:
        code = policy.exit_code([r.verdict for r in summary.rows])
        if any(s.status is not ScanStatus.OK for s in summary.scans):
            code = max(code, 3)
        if summary.alert_errors or any(r.outcome is RebuildResult.FAILED for r in summary.rebuilds):
            code = 4  # an operational problem needs a person first
        return code
