"""The SQLite store, on real files."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from driftwatch.errors import NotFound, StoreError
from driftwatch.models import ImageIdentity, OsRelease, PendingUpdate, Reason, ScanResult, ScanStatus
from driftwatch.store import Store, open_store

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)
IMG = ImageIdentity("app:1", "sha256:" + "11" * 32, ("app:1",), (), T0 - timedelta(days=40), "linux", "amd64")
DEB = OsRelease("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")
UPDATES = (
    PendingUpdate("libssl3", "amd64", "3.0.11-1~deb12u1", "3.0.15-1~deb12u1", ("bookworm-security",), True),
    PendingUpdate("tzdata", "all", "2024a-0+deb12u1", "2025b-0+deb12u1", ("bookworm-updates",), False, kept_back=True),
)


def ok_scan(reference: str = "app:1", when: datetime = T0, updates: tuple[PendingUpdate, ...] = UPDATES) -> ScanResult:
    return ScanResult(reference, ScanStatus.OK, when, when + timedelta(seconds=5), image=replace(IMG, reference=reference),
                      os_release=DEB, updates=updates)


def failed_scan(reference: str, when: datetime = T0) -> ScanResult:
    return ScanResult(reference, ScanStatus.FAILED, when, when + timedelta(seconds=7), image=None,
                      reason=Reason.IMAGE_MISSING, detail="not present", step="inspect")


def test_round_trip(store: Store) -> None:
    scan_id = store.save_scan(ok_scan())
    got_id, got = store.latest_scan("app:1")
    assert got_id == scan_id
    assert got.status is ScanStatus.OK and got.os_release == DEB
    assert got.image == IMG
    assert got.updates == UPDATES  # security first, then by name
    assert (got.pending_total, got.pending_security) == (2, 1)
    assert got.finished_at == T0 + timedelta(seconds=5)


def test_a_shared_probe_is_recorded_with_the_image_it_came_from(store: Store) -> None:
    import dataclasses

    store.save_scan(dataclasses.replace(ok_scan("app-b:1"), probe_of="app:1"))
    store.save_scan(ok_scan("app:1"))
    assert store.latest_scan("app-b:1")[1].probe_of == "app:1"
    assert store.latest_scan("app:1")[1].probe_of is None


def test_latest_orders_failed_then_security_then_total(store: Store) -> None:
    store.save_scan(ok_scan("quiet:1", updates=()))
    store.save_scan(ok_scan("noisy:1", updates=(UPDATES[1],)))
    store.save_scan(ok_scan("app:1"))
    store.save_scan(ok_scan("gone:1", when=T0 - timedelta(days=1)))
    store.save_scan(failed_scan("gone:1"))  # the latest scan of gone:1 failed: its drift is unknown
    rows = store.latest()
    assert [(r.reference, r.status.value, r.pending_security, r.pending_total) for r in rows] == [
        ("gone:1", "failed", None, None),
        ("app:1", "ok", 1, 2),
        ("noisy:1", "ok", 0, 1),
        ("quiet:1", "ok", 0, 0),
    ]


def test_failed_scan_stores_no_counts(store: Store) -> None:
    store.save_scan(failed_scan("gone:1"))
    (row,) = store.latest()
    assert (row.status, row.reason, row.pending_total, row.pending_security, row.image_id) == (
        ScanStatus.FAILED, "image_missing", None, None, None)


def test_latest_scan_of_unknown_reference(store: Store) -> None:
    with pytest.raises(NotFound, match="no scan of 'x:1' is recorded"):
        store.latest_scan("x:1")


def test_scan_is_atomic(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a.db")
    store.save_scan(ok_scan())
    dup = (UPDATES[0], UPDATES[0])  # violates the (scan, package, arch) key on the second row
    with pytest.raises(StoreError, match="could not record the scan of 'app:1'"):
        store.save_scan(ok_scan(when=T0 + timedelta(days=1), updates=dup))
    assert [r["n"] for r in store.db.query("select count(*) n from scans")] == [1]
    assert [r["n"] for r in store.db.query("select count(*) n from updates")] == [2]
    store.close()


def test_schema_is_versioned_by_migrations(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    def applied() -> list[str]:
        with sqlite3.connect(path) as conn:
            return [r[0] for r in conn.execute(
                "select name from _sqlite_migrations where migration_set='driftwatch' order by id")]

    open_store(path).close()
    first = applied()
    open_store(path).close()  # applying twice is a no-op
    assert applied() == first
    assert first[0] == "m001_initial" and "m003_drift" in first and len(set(first)) == len(first)


def test_refuses_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"my precious notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="cannot use .* as driftwatch's database"):
        open_store(path)
    assert path.read_bytes() == b"my precious notes, not a database\n" * 100


def test_refuses_another_programs_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table scans (id integer primary key, what text)")
        conn.execute("insert into scans (what) values ('theirs')")
    with pytest.raises(StoreError, match="database of another program"):
        open_store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("select what from scans").fetchall() == [("theirs",)]
        assert conn.execute("select name from sqlite_master where name='_sqlite_migrations'").fetchall() == []


def test_unwritable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the directory"):
        open_store(blocker / "sub" / "d.db")
