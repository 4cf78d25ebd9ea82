"""Faults and bad input that need no engine: a database locked by another process, a full disk, a
corrupt or foreign database, hostile text in apt's output, truncated or killed probes, foreign
platforms, malformed references. The real-engine faults are in tests/engine/test_hardening.py.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests.exceptions
import urllib3.exceptions
from click.testing import CliRunner

from driftwatch.cli import main
from driftwatch.engine import (
    OUTPUT_CAP,
    _is_read_timeout,
    emulated_architectures,
    normalize_architecture,
    reference_problem,
)
from driftwatch.errors import ConfigError, StoreError
from driftwatch.models import ImageIdentity, PendingUpdate, Platform, Reason, RunOutput, ScanResult, ScanStatus
from driftwatch.scanner import platform_mismatch
from driftwatch.store import busy_timeout, open_store
from tests.support.probe import frame
from tests.test_scanner import NONCE, FakeEngine, scanner, steps_for

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def ok_result(reference: str, n: int, *, name: str = "pkg") -> ScanResult:
    """An OK scan with ``n`` pending updates."""
    image = ImageIdentity(reference, "sha256:" + "ab" * 32, (reference,), architecture="amd64")
    updates = tuple(PendingUpdate(f"{name}{i:05d}", "amd64", "1.0", "1.1", ("bookworm-security",), True)
                    for i in range(n))
    return ScanResult(reference, ScanStatus.OK, NOW, NOW, image=image, updates=updates)


# -- the database locked by another process -------------------------------------------------------

@pytest.fixture
def locker(tmp_path: Path) -> Iterator[object]:
    """Starts a second process that holds ``BEGIN EXCLUSIVE`` on a database until told to stop."""
    procs: list[subprocess.Popen[str]] = []

    def lock(path: Path) -> subprocess.Popen[str]:
        code = ("import sqlite3, sys\n"
                "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "c.execute('BEGIN EXCLUSIVE')\n"
                "print('locked', flush=True)\n"
                "sys.stdin.readline()\n"
                "c.execute('ROLLBACK')\n")
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        procs.append(proc)
        return proc

    yield lock
    for proc in procs:
        if proc.poll() is None:
            proc.communicate("\n", timeout=10)


def release(proc: subprocess.Popen[str]) -> None:
    proc.communicate("\n", timeout=10)


def test_locked_database_waits_its_timeout_then_says_so(tmp_path: Path, locker: object,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A real second process holds BEGIN EXCLUSIVE while driftwatch records a scan."""
    monkeypatch.setenv("DRIFTWATCH_DB_TIMEOUT", "1.5")
    path = tmp_path / "d.db"
    store = open_store(path)
    first = store.save_scan(ok_result("img:1", 2))
    proc = locker(path)  # type: ignore[operator]
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        store.save_scan(ok_result("img:1", 3))
    waited = time.monotonic() - started
    assert 1.4 <= waited < 10
    assert str(caught.value) == (
        f"could not record the scan of 'img:1' in {path}: the database is locked by another process; gave up "
        "after waiting 1.5 s (DRIFTWATCH_DB_TIMEOUT); nothing was written, try again when it is done")
    release(proc)
    assert [p.scan_id for p in store.history("img:1")] == [first]  # nothing lost, nothing half-written
    second = store.save_scan(ok_result("img:1", 3))  # and the same write succeeds once the lock is gone
    assert store.latest_scan("img:1")[0] == second and store.latest_scan("img:1")[1].pending_total == 3
    store.close()


def test_locked_database_cli_is_one_line_exit_4(tmp_path: Path, locker: object) -> None:
    path = tmp_path / "d.db"
    open_store(path).close()
    proc = locker(path)  # type: ignore[operator]
    result = CliRunner().invoke(main, ["--db", str(path), "report"], env={"DRIFTWATCH_DB_TIMEOUT": "0.5"},
                                catch_exceptions=False)
    release(proc)
    assert result.exit_code == 4
    assert result.output == (f"Error: cannot use {path} as driftwatch's database: the database is locked by another "
                             "process; gave up after waiting 0.5 s (DRIFTWATCH_DB_TIMEOUT); nothing was written, "
                             "try again when it is done\n")


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "1e9"])
def test_bad_db_timeout_is_a_config_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWATCH_DB_TIMEOUT", value)
    with pytest.raises(ConfigError, match="DRIFTWATCH_DB_TIMEOUT"):
        busy_timeout()


def test_db_timeout_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWATCH_DB_TIMEOUT", raising=False)
    assert busy_timeout() == 10.0
    monkeypatch.setenv("DRIFTWATCH_DB_TIMEOUT", "0.25")
    assert busy_timeout() == 0.25


# -- the disk fills during a write ------------------------------------------------------------------

def _fill_and_fail(path: Path, limit: object) -> None:
    """Record one scan, hit the limit with a big one, and check the first is intact and readable."""
    store = open_store(path)
    first = store.save_scan(ok_result("img:1", 3))
    before = store.latest_scan("img:1")
    limit(store)  # type: ignore[operator]
    with pytest.raises(StoreError) as caught:
        store.save_scan(ok_result("img:1", 20_000, name="a-rather-long-package-name-to-fill-pages-"))
    assert str(caught.value) == (
        f"could not record the scan of 'img:1' in {path}: the disk is full; the transaction was rolled back "
        "and the data recorded before it is intact: free some space and run again")
    assert store.latest_scan("img:1") == before and before[0] == first
    assert [r[0] for r in store.db.execute("PRAGMA integrity_check").fetchall()] == ["ok"]
    assert store.db.execute("SELECT COUNT(*) FROM updates").fetchone()[0] == 3
    store.close()
    reopened = open_store(path)
    assert reopened.latest_scan("img:1") == before
    reopened.close()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 600 KiB tmpfs (needs root and mount permission; skips loudly otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount(8): the real full-disk test cannot run; the max_page_count variant still runs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the real full-disk test cannot run; "
                    "the max_page_count variant still runs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_on_a_real_tmpfs_rolls_back(small_tmpfs: Path) -> None:
    """Simulation: a real 600 KiB tmpfs holding the database fills up (ENOSPC from the kernel) while
    SQLite writes the big scan's pages or its rollback journal."""
    _fill_and_fail(small_tmpfs / "d.db", lambda store: None)


def test_disk_full_by_max_page_count_rolls_back(tmp_path: Path) -> None:
    """Simulation: SQLite's ``PRAGMA max_page_count`` caps the file a few pages above its size, so the
    write fails with the same SQLITE_FULL a full disk gives (runs everywhere, no mount needed)."""
    def cap(store: object) -> None:
        db = store.db  # type: ignore[attr-defined]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 4}")

    _fill_and_fail(tmp_path / "d.db", cap)


# -- corrupt or foreign database files -------------------------------------------------------------

def test_foreign_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    result = CliRunner().invoke(main, ["--db", str(path), "report"], catch_exceptions=False)
    assert result.exit_code == 4
    assert result.output == f"Error: {path} is a SQLite database of another program; driftwatch will not write to it\n"
    assert path.read_bytes() == before


def test_truncated_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    store = open_store(path)
    store.save_scan(ok_result("img:1", 50))
    store.close()
    cut = path.read_bytes()[: 3 * 4096 + 100]  # a crash mid-copy: header intact, pages missing
    path.write_bytes(cut)
    result = CliRunner().invoke(main, ["--db", str(path), "report"], catch_exceptions=False)
    assert result.exit_code == 4 and result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert path.read_bytes() == cut


# -- hostile text in apt's output -------------------------------------------------------------------

EVIL = "evil\x1b]0;pwned\x07\x1b[2J"


def test_escape_sequences_in_package_names_are_shown_as_question_marks(tmp_path: Path) -> None:
    steps = steps_for("debian12-security-pending")
    steps["list"] = ("Listing...\n"
                     f"{EVIL}/bookworm-security 2.0\ufffd\ufffd amd64 [upgradable from: 1.0]\n", "", 0)
    result = scanner(FakeEngine(frame(NONCE, steps))).scan("hostile:1")
    assert result.status is ScanStatus.OK and [u.package for u in result.updates] == [EVIL]
    db = tmp_path / "d.db"
    store = open_store(db)
    store.save_scan(result)
    store.close()
    runner = CliRunner()
    for args in (["show", "hostile:1"], ["report"], ["report", "--format", "markdown"], ["history", "hostile:1"]):
        shown = runner.invoke(main, ["--db", str(db), *args], catch_exceptions=False)
        assert "\x1b" not in shown.output and "\x07" not in shown.output, args
    table = runner.invoke(main, ["--db", str(db), "show", "hostile:1"], catch_exceptions=False).output
    assert "evil?]0;pwned??[2J" in table and "2.0\ufffd\ufffd" in table  # replaced bytes stay visible
    as_json = runner.invoke(main, ["--db", str(db), "show", "--format", "json", "hostile:1"]).output
    assert "\\u001b]0;pwned\\u0007" in as_json and "\x1b" not in as_json


def test_escape_sequences_in_a_failed_detail_are_sanitised_on_the_terminal(tmp_path: Path) -> None:
    steps = steps_for("debian12-unresolvable-mirror", upto="update")
    update_out, update_err, _ = steps["update"]
    steps["update"] = (update_out, "E: \x1b[31mred\x1b[0m \x9b2J failure\n" + update_err, 100)
    result = scanner(FakeEngine(frame(NONCE, steps))).scan("img")
    assert (result.status, result.detail) == (ScanStatus.FAILED, "E: \x1b[31mred\x1b[0m \x9b2J failure")  # stored as is
    from driftwatch.cli import _describe

    assert _describe(result) == "failed (index_update_failed): E: ?[31mred?[0m ?2J failure"
    db = tmp_path / "d.db"
    store = open_store(db)
    store.save_scan(result)
    store.close()
    for args in (["show", "img"], ["report"], ["check"]):
        shown = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False).output
        assert "\x1b" not in shown and "\x9b" not in shown, args


# -- truncated, killed and foreign probes ----------------------------------------------------------

def _clean_output() -> str:
    return frame(NONCE, steps_for("debian12-security-pending"))


@dataclass
class ShapedEngine(FakeEngine):
    """FakeEngine whose RunOutput carries the flags and stderr a test needs."""

    truncated: bool = False
    oom_killed: bool = False
    stderr: str = ""

    def run_probe(self, image_id: str, script: str, *, timeout: float, network: str, env: Mapping[str, str],
                  reference: str) -> RunOutput:
        out = super().run_probe(image_id, script, timeout=timeout, network=network, env=env, reference=reference)
        return replace(out, truncated=self.truncated, oom_killed=self.oom_killed, stderr=self.stderr or out.stderr)


def test_truncated_output_is_failed_never_ok() -> None:
    result = scanner(ShapedEngine(_clean_output(), truncated=True)).scan("loud:1")
    assert (result.status, result.reason) == (ScanStatus.FAILED, Reason.CONTAINER_ERROR)
    assert result.detail == f"output exceeded {OUTPUT_CAP} bytes" and result.updates == ()


def test_out_of_memory_is_failed_never_ok() -> None:
    result = scanner(ShapedEngine(_clean_output(), exit_code=137, oom_killed=True)).scan("big:1")
    assert (result.status, result.reason) == (ScanStatus.FAILED, Reason.CONTAINER_ERROR)
    assert result.detail is not None and "out of memory" in result.detail


def test_foreign_architecture_is_unsupported_before_anything_runs() -> None:
    engine = FakeEngine(_clean_output(), architecture="arm64")
    result = scanner(engine).scan("arm:1")
    assert (result.status, result.reason, result.step) == (ScanStatus.UNSUPPORTED, Reason.WRONG_ARCHITECTURE,
                                                           "platform")
    assert result.detail == ("the image is built for linux/arm64; the engine runs linux/amd64 and has no emulator "
                             "for arm64 (binfmt_misc/QEMU): scan it on a arm64 engine")
    assert engine.calls == []


def test_emulated_or_unknown_emulation_is_tried() -> None:
    for emulated in (frozenset({"arm64"}), None):
        engine = FakeEngine(_clean_output(), architecture="arm64",
                            engine_platform=Platform("linux", "amd64", emulated))
        assert scanner(engine).scan("arm:1").status is ScanStatus.OK
        assert len(engine.calls) == 1


def test_exec_format_error_is_wrong_architecture() -> None:
    """What this engine does with an arm64 image when emulation is unknown (tests/engine: real)."""
    engine = ShapedEngine("", exit_code=1, architecture="arm64", engine_platform=Platform("linux", "amd64", None),
                          stderr="exec /bin/sh: exec format error\n")
    result = scanner(engine).scan("arm:1")
    assert (result.status, result.reason, result.step) == (ScanStatus.UNSUPPORTED, Reason.WRONG_ARCHITECTURE, "start")
    assert result.detail == ("the image is built for linux/arm64 and its /bin/sh cannot run on this engine "
                             "(exec format error: no emulator)")


@pytest.mark.parametrize(("image_os", "arch", "engine", "expected"), [
    ("linux", "amd64", Platform("linux", "amd64", frozenset()), None),
    ("linux", "", Platform("linux", "amd64", frozenset()), None),  # unknown: try
    ("linux", "386", Platform("linux", "amd64", frozenset()), None),  # x86-64 runs i386 natively
    ("linux", "arm", Platform("linux", "arm64", frozenset()), None),  # most arm64 CPUs run arm: try
    ("linux", "s390x", Platform("linux", "amd64", frozenset({"s390x"})), None),
    ("linux", "arm64", Platform("linux", "amd64", frozenset({"s390x"})), "no emulator for arm64"),
    ("windows", "amd64", Platform("linux", "amd64", None), "the image is for windows/amd64"),
])
def test_platform_mismatch(image_os: str, arch: str, engine: Platform, expected: str | None) -> None:
    got = platform_mismatch(ImageIdentity("r", "sha256:" + "0" * 64, os=image_os, architecture=arch), engine)
    assert got is None if expected is None else expected in (got or "")


def test_architecture_names_are_normalised() -> None:
    assert [normalize_architecture(a) for a in ("x86_64", "aarch64", "armv7l", "i686", "amd64", "ARM64", "riscv64")] \
        == ["amd64", "arm64", "arm", "386", "amd64", "arm64", "riscv64"]


def test_emulators_are_read_from_binfmt_misc(tmp_path: Path) -> None:
    assert emulated_architectures(tmp_path / "absent") is None  # not mounted: unknown
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "register").write_text("")
    assert emulated_architectures(tmp_path) == frozenset()
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\n")
    (tmp_path / "qemu-s390x").write_text("disabled\ninterpreter /usr/bin/qemu-s390x-static\n")
    (tmp_path / "python3.11").write_text("enabled\ninterpreter /usr/bin/python3.11\n")
    assert emulated_architectures(tmp_path) == frozenset({"arm64"})


def test_a_read_timeout_is_told_from_a_lost_engine() -> None:
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/wait", "Read timed out.")  # type: ignore[arg-type]
    wrapped = requests.exceptions.ConnectionError(timeout)
    assert _is_read_timeout(wrapped) and _is_read_timeout(requests.exceptions.ReadTimeout())
    assert not _is_read_timeout(requests.exceptions.ConnectionError(ConnectionResetError(104, "reset")))


# -- malformed references ---------------------------------------------------------------------------

@pytest.mark.parametrize("reference", ["UPPER CASE", "a b", "::", "", "x/../y", "Ubuntu:24.04", "a:b:c", "-rf",
                                       "héllo", "img:" + "t" * 129, "a" * 256, "evil\x1b[2J", "a/b?x=1", "a#b"])
def test_malformed_references_are_named(reference: str) -> None:
    assert reference_problem(reference) is not None


@pytest.mark.parametrize("reference", ["driftwatch/debian:12", "debian", "localhost:5000/a/b:1.0", "9e99d9eccd51",
                                       "sha256:" + "a" * 64, "ghcr.io/org/app@sha256:" + "b" * 64,
                                       "registry.example.com:443/ns/app_x--y.z:v1.2-rc_1", "[::1]:5000/x:y"])
def test_valid_references_pass(reference: str) -> None:
    assert reference_problem(reference) is None


def test_cleanup_without_an_engine_is_one_line_exit_4(tmp_path: Path) -> None:
    sock = tmp_path / "no-engine.sock"
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "d.db"), "cleanup"],
                                env={"DOCKER_HOST": f"unix://{sock}"}, catch_exceptions=False)
    assert result.exit_code == 4
    assert result.output.startswith(f"Error: no Docker engine answers at unix://{sock}")
    assert result.output.count("\n") == 1 and not (tmp_path / "d.db").exists()
