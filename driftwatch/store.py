"""The only module with SQL: driftwatch's SQLite store, through sqlite-utils.

Schema changes go through ``Migrations("driftwatch")``, applied on every open. A scan and all its
pending updates are written in one transaction, so a crash never leaves half a scan.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations
from sqlite_utils.db import DescIndex

from . import __version__
from .errors import NotFound, StoreError
from .models import ImageIdentity, ImageSummary, OsRelease, PendingUpdate, Reason, ScanResult, ScanStatus

logger = logging.getLogger(__name__)

migrations = Migrations("driftwatch")
BUSY_TIMEOUT_MS = 10_000


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
            raise StoreError(f"could not record the scan of {result.reference!r} in {self.path}: {exc}") from exc

    def _save(self, result: ScanResult) -> int:
        image = result.image
        if image is not None:
            seen = _iso(result.finished_at)
            self.db.execute(
                "INSERT INTO images (image_id, repo_tags, repo_digests, created, os, architecture, first_seen,"
                " last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(image_id) DO UPDATE SET"
                " repo_tags = excluded.repo_tags, repo_digests = excluded.repo_digests, last_seen = excluded.last_seen",
                [image.image_id, json.dumps(list(image.repo_tags)), json.dumps(list(image.repo_digests)),
                 _iso(image.created), image.os, image.architecture, seen, seen],
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
            "driftwatch_version": __version__,
        }
        scan_id = self.db.table("scans").insert(row).last_pk
        self.db.table("updates").insert_all(
            {"scan_id": scan_id, "package": u.package, "arch": u.arch, "installed": u.installed,
             "candidate": u.candidate, "suites": ",".join(u.suites), "security": int(u.security),
             "held": int(u.held), "kept_back": int(u.kept_back), "phased": int(u.phased)}
            for u in result.updates
        )
        return int(scan_id)

    # -- reads -------------------------------------------------------------------------------------
    def latest(self) -> list[ImageSummary]:
        """The latest scan of every reference: failed first, then most security, then most pending."""
        sql = (
            "SELECT s.* FROM scans s JOIN (SELECT reference, MAX(id) AS id FROM scans GROUP BY reference) l"
            " ON s.id = l.id ORDER BY (s.status = 'ok') ASC, COALESCE(s.pending_security, -1) DESC,"
            " COALESCE(s.pending_total, -1) DESC, s.reference ASC"
        )
        return [_summary(row) for row in self._query(sql)]

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
                                      img["os"] or "", img["architecture"] or "")
        updates = tuple(
            PendingUpdate(u["package"], u["arch"], u["installed"], u["candidate"],
                          tuple(s for s in (u["suites"] or "").split(",") if s), bool(u["security"]),
                          bool(u["held"]), bool(u["kept_back"]), bool(u["phased"]))
            for u in self._query("SELECT * FROM updates WHERE scan_id = ? ORDER BY security DESC, package, arch",
                                 [row["id"]])
        )
        osr = OsRelease(row["os_id"], row["os_version_id"], row["os_codename"], row["os_pretty"]) if row["os_id"] else None
        return ScanResult(
            reference=row["reference"], status=ScanStatus(row["status"]), started_at=_time(row["started_at"]),  # type: ignore[arg-type]
            finished_at=_time(row["finished_at"]), image=image, os_release=osr, updates=updates,  # type: ignore[arg-type]
            reason=Reason(row["reason"]) if row["reason"] else None, detail=row["detail"], step=row["step"],
            exit_code=row["exit_code"], stderr_tail=row["stderr_tail"],
            warnings=tuple(json.loads(row["warnings"] or "[]")),
        )

    def _query(self, sql: str, params: list[Any] | None = None) -> Iterator[dict[str, Any]]:
        try:
            yield from self.db.query(sql, params or [])
        except sqlite3.Error as exc:
            raise StoreError(f"reading {self.path} failed: {exc}") from exc


def _summary(row: dict[str, Any]) -> ImageSummary:
    os_label = " ".join(p for p in (row["os_id"], row["os_version_id"]) if p) or None
    return ImageSummary(
        reference=row["reference"], scan_id=row["id"], image_id=row["image_id"], os=os_label,
        status=ScanStatus(row["status"]), reason=row["reason"], detail=row["detail"],
        pending_security=row["pending_security"], pending_total=row["pending_total"],
        scanned_at=datetime.fromisoformat(row["finished_at"]),
    )


def open_store(path: Path | None = None, *, memory: bool = False) -> Store:
    """Open (creating when absent) a driftwatch database and bring its schema up to date.

    Refuses, without writing anything, a file that is not SQLite or holds another program's tables.
    """
    if memory:
        db = Database(memory=True, execute_plugins=False)
        migrations.apply(db)
        return Store(db, None)
    path = path or default_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory for the database {path}: {exc.strerror}") from exc
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
        db = Database(conn, execute_plugins=False)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        tables = set(db.table_names())
        if tables and not _is_driftwatch(db, tables):
            db.close()
            raise StoreError(f"{path} is a SQLite database of another program; driftwatch will not write to it")
        migrations.apply(db)
        db.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot use {path} as driftwatch's database: {exc}") from exc
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
