"""The only module with SQL: driftwatch's SQLite store, through sqlite-utils.

Schema changes go through ``Migrations("driftwatch")``, applied on every open. A scan and all its
pending updates are written in one transaction, so a crash never leaves half a scan.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations
from sqlite_utils.db import DescIndex

from . import __version__
from .errors import ConfigError, NotFound, StoreError
from .models import (
    AlertState,
    DriftItem,
    HistoryPoint,
    ImageIdentity,
    ImageSummary,
    OsRelease,
    OutboxItem,
    PendingUpdate,
    Reason,
    RebuildRecord,
    RebuildResult,
    ScanResult,
    ScanStatus,
)

logger = logging.getLogger(__name__)

migrations = Migrations("driftwatch")
BUSY_TIMEOUT_MS = 10_000  # default; DRIFTWATCH_DB_TIMEOUT (seconds) overrides


def busy_timeout() -> float:
    """Seconds to wait for another process's lock on the database: ``DRIFTWATCH_DB_TIMEOUT`` or 10."""
    text = os.environ.get("DRIFTWATCH_DB_TIMEOUT", "").strip()
    if not text:
        return BUSY_TIMEOUT_MS / 1000
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise ConfigError(f"DRIFTWATCH_DB_TIMEOUT={text!r}: expected seconds between 0 and 86400")
    return seconds


def _why(exc: sqlite3.Error) -> str:
    """SQLite's error in words a user can act on: a lock held by another process, a full disk."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc):
        return ("the database is locked by another process; gave up after waiting "
                f"{busy_timeout():g} s (DRIFTWATCH_DB_TIMEOUT); nothing was written, try again when it is done")
    if name.startswith("SQLITE_FULL") or "disk is full" in str(exc):
        return ("the disk is full; the transaction was rolled back and the data recorded "
                "before it is intact: free some space and run again")
    return str(exc)


@migrations()
def m001_initial(db: Database) -> None:
    """images, scans, updates."""
    db.table("images").create(
        {"image_id": str, "repo_tags": str, "repo_digests": str, "created": str, "os": str,
         "architecture": str, "first_seen": str, "last_seen": str},
        pk="image_id", not_null={"first_seen", "last_seen"}, if_not_exists=True,
    )
    db.table("scans").create(
        {"id": int, "reference": str, "image_id": str, "status": str, "reason": str, "detail": str,
         "step": str, "exit_code": int, "stderr_tail": str, "warnings": str, "os_id": str,
         "os_version_id": str, "os_codename": str, "os_pretty": str, "started_at": str,
         "finished_at": str, "pending_total": int, "pending_security": int, "driftwatch_version": str},
        pk="id", not_null={"reference", "status", "started_at", "finished_at"},
        foreign_keys=[("image_id", "images", "image_id")], if_not_exists=True,
    )
    db.table("updates").create(
        {"scan_id": int, "package": str, "arch": str, "installed": str, "candidate": str, "suites": str,
         "security": int, "held": int, "kept_back": int, "phased": int},
        pk=("scan_id", "package", "arch"), not_null={"installed", "candidate", "security"},
        foreign_keys=[("scan_id", "scans", "id")], if_not_exists=True,
    )
    db.table("scans").create_index(["reference", DescIndex("id")], if_not_exists=True)
    db.table("scans").create_index(["image_id"], if_not_exists=True)
    db.table("updates").create_index(["package"], if_not_exists=True)


@migrations()
def m002_classification(db: Database) -> None:
    """How each update was classified (origin, masked, ESM, why) and the release's end of life."""
    updates = db.table("updates")
    updates.add_column("security_origin", str)
    updates.add_column("masked_security", int, not_null_default=0)
    updates.add_column("esm", int, not_null_default=0)
    updates.add_column("why", str, not_null_default="")
    db.table("scans").add_column("release_eol", str)


@migrations()
def m003_drift(db: Database) -> None:
    """The apt layer of each image, and the drift table: when each pending update was first seen
    for a reference, last seen, and when it went away (across scans and rebuilds)."""
    images = db.table("images")
    images.add_column("history_known", int)
    images.add_column("apt_layer_created", str)
    images.add_column("apt_layer_command", str)
    db.table("drift").create(
        {"id": int, "reference": str, "package": str, "arch": str, "candidate": str, "security": int,
         "first_seen": str, "last_seen": str, "first_scan_id": int, "last_scan_id": int,
         "resolved_at": str, "resolved_scan_id": int},
        pk="id", not_null={"reference", "package", "arch", "candidate", "first_seen", "last_seen"},
        foreign_keys=[("first_scan_id", "scans", "id"), ("last_scan_id", "scans", "id"),
                      ("resolved_scan_id", "scans", "id")],
        if_not_exists=True,
    )
    db.table("drift").create_index(["reference", "resolved_at"], if_not_exists=True)


@migrations()
def m004_rebuilds(db: Database) -> None:
    """One row per rebuild: why, old and new image, drift before and after, outcome."""
    db.table("rebuilds").create(
        {"id": int, "reference": str, "trigger": str, "why": str, "requested_at": str, "finished_at": str,
         "outcome": str, "detail": str, "old_image_id": str, "new_image_id": str, "before_security": int,
         "before_total": int, "after_security": int, "after_total": int, "log_tail": str},
        pk="id", not_null={"reference", "trigger", "requested_at", "finished_at", "outcome"}, if_not_exists=True,
    )
    db.table("rebuilds").create_index(["reference", DescIndex("id")], if_not_exists=True)


@migrations()
def m005_notify(db: Database) -> None:
    """The notification outbox (every alert, written before it is sent) and, per notify target and
    reference, what that target was last told. Targets are stored by name: never a webhook URL."""
    db.table("outbox").create(
        {"id": int, "target": str, "reference": str, "kind": str, "fingerprint": str, "payload": str,
         "created_at": str, "attempts": int, "last_attempt_at": str, "last_error": str, "delivered_at": str,
         "dead_at": str},
        pk="id", not_null={"target", "reference", "kind", "fingerprint", "payload", "created_at", "attempts"},
        defaults={"attempts": 0}, if_not_exists=True,
    )
    db.table("outbox").create_index(["target", "delivered_at", "dead_at"], if_not_exists=True)
    db.table("alert_state").create(
        {"target": str, "reference": str, "state": str, "fingerprint": str, "last_alert_at": str},
        pk=("target", "reference"), not_null={"state", "fingerprint"}, if_not_exists=True,
    )


@migrations()
def m006_actionable(db: Database) -> None:
    """Pending counts without held and phased updates: what the thresholds count."""
    scans = db.table("scans")
    scans.add_column("actionable_security", int)
    scans.add_column("actionable_total", int)
    db.execute("UPDATE scans SET actionable_security = pending_security, actionable_total = pending_total")


@migrations()
def m007_probe_of(db: Database) -> None:
    """Which image's probe a scan reused, when its apt inputs were identical (fleet.py)."""
    db.table("scans").add_column("probe_of", str)


def default_path() -> Path:
    """``$DRIFTWATCH_DB``, else ``$XDG_DATA_HOME/driftwatch/driftwatch.db`` (~/.local/share)."""
    if env := os.environ.get("DRIFTWATCH_DB"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "driftwatch" / "driftwatch.db"


def _iso(stamp: datetime | None) -> str | None:
    return stamp.isoformat() if stamp else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class Store:
    """A driftwatch database file. Open with :func:`open_store`."""

    def __init__(self, db: Database, path: Path | None) -> None:
        self.db = db
        self.path = path

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # -- writes -----------------------------------------------------------------------------------
    def save_scan(self, result: ScanResult) -> int:
        """Store one scan with its updates atomically; returns the scan's id."""
        try:
            with self.db.atomic():
                return self._save(result)
        except sqlite3.Error as exc:
            raise StoreError(f"could not record the scan of {result.reference!r} in {self.path}: "
                             f"{_why(exc)}") from exc

    def _save(self, result: ScanResult) -> int:
        image = result.image
        if image is not None:
            seen = _iso(result.finished_at)
            self.db.execute(
                "INSERT INTO images (image_id, repo_tags, repo_digests, created, os, architecture, first_seen,"
                " last_seen, history_known, apt_layer_created, apt_layer_command)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(image_id) DO UPDATE SET"
                " repo_tags = excluded.repo_tags, repo_digests = excluded.repo_digests, last_seen = excluded.last_seen,"
                " history_known = excluded.history_known, apt_layer_created = excluded.apt_layer_created,"
                " apt_layer_command = excluded.apt_layer_command",
                [image.image_id, json.dumps(list(image.repo_tags)), json.dumps(list(image.repo_digests)),
                 _iso(image.created), image.os, image.architecture, seen, seen, int(image.history_known),
                 _iso(image.apt_layer_created), image.apt_layer_command],
            )
        osr = result.os_release
        row = {
            "reference": result.reference,
            "image_id": image.image_id if image else None,
            "status": result.status.value,
            "reason": result.reason.value if result.reason else None,
            "detail": result.detail,
            "step": result.step,
            "exit_code": result.exit_code,
            "stderr_tail": result.stderr_tail,
            "warnings": json.dumps(list(result.warnings)),
            "os_id": osr.id if osr else None,
            "os_version_id": osr.version_id if osr else None,
            "os_codename": osr.version_codename if osr else None,
            "os_pretty": osr.pretty_name if osr else None,
            "started_at": _iso(result.started_at),
            "finished_at": _iso(result.finished_at),
            "pending_total": result.pending_total,
            "pending_security": result.pending_security,
            "actionable_security": result.actionable[0] if result.actionable else None,
            "actionable_total": result.actionable[1] if result.actionable else None,
            "driftwatch_version": __version__,
            "release_eol": result.release_eol.isoformat() if result.release_eol else None,
            "probe_of": result.probe_of,
        }
        scan_id = self._insert("scans", row)
        update_rows = [
            {"scan_id": scan_id, "package": u.package, "arch": u.arch, "installed": u.installed,
             "candidate": u.candidate, "suites": ",".join(u.suites), "security": int(u.security),
             "held": int(u.held), "kept_back": int(u.kept_back), "phased": int(u.phased),
             "security_origin": u.security_origin, "masked_security": int(u.masked_security), "esm": int(u.esm),
             "why": u.why}
            for u in result.updates
        ]
        if update_rows:
            columns = list(update_rows[0])
            self.db.conn.executemany(
                f"INSERT INTO updates ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [[r[c] for c in columns] for r in update_rows],
            )
        if result.status is ScanStatus.OK:
            self._track_drift(result, int(scan_id))
        return int(scan_id)

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """A plain INSERT: table.insert() re-reads the schema on every call, which dominated the cost
        of saving a scan (measured by benchmarks/report_speed.py)."""
        columns = list(row)
        cursor = self.db.execute(
            f"INSERT INTO [{table}] ({', '.join(f'[{c}]' for c in columns)}) VALUES ({', '.join('?' * len(columns))})",
            [row[c] for c in columns],
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _track_drift(self, result: ScanResult, scan_id: int) -> None:
        """Extend open drift rows still pending, open new ones, close the ones that went away.

        Only OK scans move drift: a failed scan knows nothing, so it neither ends nor starts any.
        """
        when = _iso(result.finished_at)
        open_rows = {
            (r["package"], r["arch"], r["candidate"]): r["id"]
            for r in self.db.query("SELECT id, package, arch, candidate FROM drift"
                                   " WHERE reference = ? AND resolved_at IS NULL", [result.reference])
        }
        for u in result.updates:
            key = (u.package, u.arch, u.candidate)
            if key in open_rows:
                self.db.execute("UPDATE drift SET last_seen = ?, last_scan_id = ?, security = ? WHERE id = ?",
                                [when, scan_id, int(u.security), open_rows.pop(key)])
            else:
                self.db.execute(
                    "INSERT INTO drift (reference, package, arch, candidate, security, first_seen, last_seen,"
                    " first_scan_id, last_scan_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [result.reference, u.package, u.arch, u.candidate, int(u.security), when, when, scan_id, scan_id])
        for row_id in open_rows.values():
            self.db.execute("UPDATE drift SET resolved_at = ?, resolved_scan_id = ? WHERE id = ?",
                            [when, scan_id, row_id])

    def save_rebuild(self, record: RebuildRecord) -> int:
        """Record a rebuild; returns its id."""
        row = {k: getattr(record, k) for k in RebuildRecord.__slots__}  # type: ignore[attr-defined]
        row.update(outcome=record.outcome.value, requested_at=_iso(record.requested_at),
                   finished_at=_iso(record.finished_at))
        try:
            with self.db.atomic():
                return self._insert("rebuilds", row)
        except sqlite3.Error as exc:
            raise StoreError(f"could not record the rebuild of {record.reference!r} in {self.path}: {exc}") from exc

    def rebuilds(self, reference: str | None = None, limit: int = 50) -> list[RebuildRecord]:
        """Recorded rebuilds, newest first."""
        where, params = ("WHERE reference = ?", [reference]) if reference else ("", [])
        rows = self._query(f"SELECT * FROM rebuilds {where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [RebuildRecord(**{k: r[k] for k in RebuildRecord.__slots__  # type: ignore[attr-defined]
                                 if k not in ("outcome", "requested_at", "finished_at")},
                              outcome=RebuildResult(r["outcome"]),
                              requested_at=datetime.fromisoformat(r["requested_at"]),
                              finished_at=datetime.fromisoformat(r["finished_at"])) for r in rows]

    def rebuild_counts(self) -> dict[tuple[str, str], int]:
        """How many rebuilds each reference had, by outcome."""
        rows = self._query("SELECT reference, outcome, COUNT(*) AS n FROM rebuilds GROUP BY reference, outcome")
        return {(r["reference"], r["outcome"]): r["n"] for r in rows}

    # -- reads -------------------------------------------------------------------------------------
    def latest(self, references: Iterable[str] | None = None) -> list[ImageSummary]:
        """The latest scan of every reference (or of those given): failed first, then most security,
        then most pending. Carries the drift ages the policy and reports need."""
        sql = (
            "SELECT s.*, i.created AS image_created, i.history_known, i.apt_layer_created, i.apt_layer_command,"
            " (SELECT MIN(d.first_seen) FROM drift d WHERE d.reference = s.reference AND d.resolved_at IS NULL"
            "  AND d.security = 1) AS oldest_security_since"
            " FROM scans s JOIN (SELECT reference, MAX(id) AS id FROM scans GROUP BY reference) l ON s.id = l.id"
            " LEFT JOIN images i ON i.image_id = s.image_id"
            " ORDER BY (s.status = 'ok') ASC, COALESCE(s.pending_security, -1) DESC,"
            " COALESCE(s.pending_total, -1) DESC, s.reference ASC"
        )
        wanted = set(references) if references is not None else None
        return [_summary(row) for row in self._query(sql) if wanted is None or row["reference"] in wanted]

    def references(self) -> list[str]:
        """Every reference that has a recorded scan."""
        return [r["reference"] for r in self._query("SELECT DISTINCT reference FROM scans ORDER BY reference")]

    def history(self, reference: str) -> list[HistoryPoint]:
        """Every scan of a reference, oldest first; raises NotFound."""
        rows = list(self._query("SELECT id, finished_at, image_id, status, pending_security, pending_total"
                                " FROM scans WHERE reference = ? ORDER BY id", [reference]))
        if not rows:
            raise NotFound(f"no scan of {reference!r} is recorded in {self.path}; run: driftwatch scan {reference}")
        return [HistoryPoint(r["id"], datetime.fromisoformat(r["finished_at"]), r["image_id"],
                             ScanStatus(r["status"]), r["pending_security"], r["pending_total"]) for r in rows]

    def drift(self, reference: str) -> list[DriftItem]:
        """Every pending update ever seen for a reference: open ones first, oldest first."""
        rows = self._query("SELECT * FROM drift WHERE reference = ?"
                           " ORDER BY resolved_at IS NOT NULL, first_seen, package", [reference])
        return [DriftItem(r["package"], r["arch"], r["candidate"], bool(r["security"]),
                          datetime.fromisoformat(r["first_seen"]), datetime.fromisoformat(r["last_seen"]),
                          _time(r["resolved_at"])) for r in rows]

    def latest_scan(self, reference: str) -> tuple[int, ScanResult]:
        """The latest scan of one reference, with its updates; raises NotFound."""
        rows = list(self._query("SELECT * FROM scans WHERE reference = ? ORDER BY id DESC LIMIT 1", [reference]))
        if not rows:
            raise NotFound(f"no scan of {reference!r} is recorded in {self.path}; run: driftwatch scan {reference}")
        return rows[0]["id"], self._result(rows[0])

    def _result(self, row: dict[str, Any]) -> ScanResult:
        image = None
        if row["image_id"]:
            img = next(iter(self._query("SELECT * FROM images WHERE image_id = ?", [row["image_id"]])), None)
            if img:
                image = ImageIdentity(row["reference"], img["image_id"], tuple(json.loads(img["repo_tags"] or "[]")),
                                      tuple(json.loads(img["repo_digests"] or "[]")), _time(img["created"]),
                                      img["os"] or "", img["architecture"] or "", bool(img["history_known"]),
                                      _time(img["apt_layer_created"]), img["apt_layer_command"])
        updates = tuple(
            PendingUpdate(u["package"], u["arch"], u["installed"], u["candidate"],
                          tuple(s for s in (u["suites"] or "").split(",") if s), bool(u["security"]),
                          bool(u["held"]), bool(u["kept_back"]), bool(u["phased"]), u["security_origin"],
                          bool(u["masked_security"]), bool(u["esm"]), u["why"] or "")
            for u in self._query("SELECT * FROM updates WHERE scan_id = ? ORDER BY security DESC, package, arch",
                                 [row["id"]])
        )
        osr = (OsRelease(row["os_id"], row["os_version_id"], row["os_codename"], row["os_pretty"])
               if row["os_id"] else None)
        return ScanResult(
            reference=row["reference"], status=ScanStatus(row["status"]), started_at=_time(row["started_at"]),  # type: ignore[arg-type]
            finished_at=_time(row["finished_at"]), image=image, os_release=osr, updates=updates,  # type: ignore[arg-type]
            reason=Reason(row["reason"]) if row["reason"] else None, detail=row["detail"], step=row["step"],
            exit_code=row["exit_code"], stderr_tail=row["stderr_tail"],
            warnings=tuple(json.loads(row["warnings"] or "[]")),
            release_eol=date.fromisoformat(row["release_eol"]) if row["release_eol"] else None,
            probe_of=row.get("probe_of"),
        )

    # -- notification outbox -------------------------------------------------------------------------
    def alert_state(self, target: str, reference: str) -> AlertState | None:
        """What the target was last told about the reference; None before the first evaluation."""
        rows = list(self._query("SELECT * FROM alert_state WHERE target = ? AND reference = ?", [target, reference]))
        if not rows:
            return None
        r = rows[0]
        return AlertState(r["target"], r["reference"], r["state"], r["fingerprint"], _time(r["last_alert_at"]))

    def set_alert_state(self, state: AlertState) -> None:
        """Record the target's state for a reference without queueing an alert."""
        try:
            with self.db.atomic():
                self._put_state(state)
        except sqlite3.Error as exc:
            raise StoreError(f"could not record the alert state of {state.reference!r} in {self.path}: {exc}") from exc

    def enqueue(self, state: AlertState, kind: str, payload: str, created_at: datetime) -> int:
        """Write an alert to the outbox *and* the target's new state, in one transaction; returns its id.

        ``payload`` is the JSON body to send. Either both rows are written or neither: an alert is
        never lost between deciding it and queueing it, and never queued twice for one change.
        """
        try:
            with self.db.atomic():
                self._put_state(state)
                inserted = self.db.table("outbox").insert(
                    {"target": state.target, "reference": state.reference, "kind": kind,
                     "fingerprint": state.fingerprint, "payload": payload, "created_at": _iso(created_at),
                     "attempts": 0}).last_pk
                assert inserted is not None
                return int(inserted)
        except sqlite3.Error as exc:
            raise StoreError(f"could not queue the {kind} alert of {state.reference!r} in {self.path}: {exc}") from exc

    def _put_state(self, state: AlertState) -> None:
        self.db.execute(
            "INSERT INTO alert_state (target, reference, state, fingerprint, last_alert_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(target, reference) DO UPDATE SET state = excluded.state,"
            " fingerprint = excluded.fingerprint, last_alert_at = excluded.last_alert_at",
            [state.target, state.reference, state.state, state.fingerprint, _iso(state.last_alert_at)],
        )

    def undelivered(self, target: str | None = None) -> list[OutboxItem]:
        """Alerts neither delivered nor dead-lettered (of one target, or all), oldest first."""
        where, params = ("AND target = ?", [target]) if target is not None else ("", [])
        return [_outbox(r) for r in self._query(
            f"SELECT * FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL {where} ORDER BY id", params)]

    def dead_letters(self) -> list[OutboxItem]:
        """Alerts given up on after their target's max_attempts, oldest first."""
        return [_outbox(r) for r in self._query("SELECT * FROM outbox WHERE dead_at IS NOT NULL ORDER BY id")]

    def requeue(self, ids: Iterable[int] | None = None) -> list[OutboxItem]:
        """Give dead-lettered alerts (these ``ids``, or all) a new set of attempts: queued again, their
        last error kept. All or nothing: an id that is not a dead letter raises NotFound, and nothing
        changes. Returns the alerts requeued."""
        dead = {item.id: item for item in self.dead_letters()}
        wanted = sorted(set(ids)) if ids is not None else sorted(dead)
        if missing := [i for i in wanted if i not in dead]:
            known = ", ".join(f"#{i}" for i in dead) or "none"
            raise NotFound(f"alert {', '.join(f'#{i}' for i in missing)} is not dead-lettered in {self.path} "
                           f"(dead letters: {known})")
        try:
            with self.db.atomic():
                for item_id in wanted:
                    self.db.execute("UPDATE outbox SET dead_at = NULL, attempts = 0 WHERE id = ?", [item_id])
        except sqlite3.Error as exc:
            raise StoreError(f"could not requeue alerts in {self.path}: {_why(exc)}") from exc
        return [dead[i] for i in wanted]

    def outbox(self) -> list[OutboxItem]:
        """Every alert ever queued, oldest first."""
        return [_outbox(r) for r in self._query("SELECT * FROM outbox ORDER BY id")]

    def mark_delivered(self, item_id: int, when: datetime, *, attempts: int = 1) -> None:
        """The target answered 2xx, after ``attempts`` requests in this delivery."""
        self._write(f"could not mark alert #{item_id} delivered in {self.path}",
                    "UPDATE outbox SET delivered_at = ?, last_attempt_at = ?, attempts = attempts + ? WHERE id = ?",
                    [_iso(when), _iso(when), attempts, item_id])

    def mark_attempt_failed(self, item_id: int, error: str, when: datetime, *, attempts: int = 1,
                            max_attempts: int) -> bool:
        """Count ``attempts`` more failed requests and keep ``error`` (already redacted by the caller);
        dead-letter the alert once it has had ``max_attempts`` in all. Returns True when it is now dead."""
        self._write(f"could not record a failed delivery of alert #{item_id} in {self.path}",
                    "UPDATE outbox SET attempts = attempts + ?, last_attempt_at = ?, last_error = ?,"
                    " dead_at = CASE WHEN attempts + ? >= ? THEN ? ELSE NULL END WHERE id = ?",
                    [attempts, _iso(when), error, attempts, max_attempts, _iso(when), item_id])
        rows = list(self._query("SELECT dead_at FROM outbox WHERE id = ?", [item_id]))
        return bool(rows and rows[0]["dead_at"])

    def _write(self, what: str, sql: str, params: list[Any]) -> None:
        try:
            with self.db.atomic():
                self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"{what}: {exc}") from exc

    def _query(self, sql: str, params: list[Any] | None = None) -> Iterator[dict[str, Any]]:
        try:
            yield from self.db.query(sql, params or [])
        except sqlite3.Error as exc:
            raise StoreError(f"reading {self.path} failed: {_why(exc)}") from exc


def _outbox(row: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        id=row["id"], target=row["target"], reference=row["reference"], kind=row["kind"],
        fingerprint=row["fingerprint"], payload=row["payload"], created_at=datetime.fromisoformat(row["created_at"]),
        attempts=row["attempts"] or 0, last_attempt_at=_time(row["last_attempt_at"]), last_error=row["last_error"],
        delivered_at=_time(row["delivered_at"]), dead_at=_time(row["dead_at"]),
    )


def _summary(row: dict[str, Any]) -> ImageSummary:
    os_label = " ".join(p for p in (row["os_id"], row["os_version_id"]) if p) or None
    return ImageSummary(
        reference=row["reference"], scan_id=row["id"], image_id=row["image_id"], os=os_label,
        status=ScanStatus(row["status"]), reason=row["reason"], detail=row["detail"],
        pending_security=row["pending_security"], pending_total=row["pending_total"],
        actionable_security=row.get("actionable_security"), actionable_total=row.get("actionable_total"),
        scanned_at=datetime.fromisoformat(row["finished_at"]),
        image_created=_time(row.get("image_created")),
        apt_layer_created=_time(row.get("apt_layer_created")),
        apt_layer_command=row.get("apt_layer_command"),
        history_known=bool(row.get("history_known")),
        oldest_security_since=_time(row.get("oldest_security_since")),
        release_eol=date.fromisoformat(row["release_eol"]) if row.get("release_eol") else None,
    )


def open_store(path: Path | None = None, *, memory: bool = False, create: bool = True) -> Store:
    """Open (creating when absent) a driftwatch database and bring its schema up to date.

    Refuses, without writing anything, a file that is not SQLite or holds another program's tables.
    With ``create=False`` (read-only commands) a missing file reads as an empty store and nothing is
    created, so a mistyped --db never leaves a new database behind.
    """
    if memory or (not create and path is not None and not path.exists()):
        db = Database(memory=True, execute_plugins=False)
        migrations.apply(db)
        return Store(db, path)
    path = path or default_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory for the database {path}: {exc.strerror}") from exc
    try:
        timeout = busy_timeout()
        conn = sqlite3.connect(str(path), timeout=timeout)
        db = Database(conn, execute_plugins=False)
        db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        tables = set(db.table_names())
        if tables and not _is_driftwatch(db, tables):
            db.close()
            raise StoreError(f"{path} is a SQLite database of another program; driftwatch will not write to it")
        migrations.apply(db)
        db.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot use {path} as driftwatch's database: {_why(exc)}") from exc
    return Store(db, path)


def _is_driftwatch(db: Database, tables: set[str]) -> bool:
    if "_sqlite_migrations" not in tables:
        return False
    return bool(list(db.query("SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'driftwatch' LIMIT 1")))


@contextmanager
def opened(path: Path | None = None) -> Iterator[Store]:
    """``with opened(path) as store:`` closes the connection afterwards."""
    store = open_store(path)
    try:
        yield store
    finally:
        store.close()
