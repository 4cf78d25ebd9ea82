"""Time `report` and `check` on a generated database of N image references x D daily scans.

    python benchmarks/report_speed.py            # 1,000 references x 365 days (the issue's size)
    python benchmarks/report_speed.py 100 30     # smaller

Prints the database size, the generation time, and the median of 5 runs of each command (the real
CLI, in-process through click's runner, so start-up of the interpreter is not counted) against the
target of 1 s. Each reference has 6 packages that drift in and out over time (2 security).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner

from driftwatch.cli import main
from driftwatch.models import ImageIdentity, OsRelease, PendingUpdate, ScanResult, ScanStatus
from driftwatch.store import open_store

START = datetime(2025, 12, 3, 3, 0, tzinfo=timezone.utc)
DEB = OsRelease("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")


def updates(ref: int, day: int) -> tuple[PendingUpdate, ...]:
    out = []
    for p in range(6):
        # each package is pending for a stretch of days, then a rebuild clears it
        if (day + ref * 7 + p * 11) % 60 < 40:
            out.append(PendingUpdate(f"pkg{p}", "amd64", "1.0", f"1.{1 + (day + p) // 90}",
                                     ("bookworm-security",) if p < 2 else ("bookworm-updates",), p < 2))
    return tuple(out)


def generate(path: Path, refs: int, days: int) -> float:
    began = time.perf_counter()
    store = open_store(path)
    for day in range(days):
        when = START + timedelta(days=day)
        with store.db.atomic():  # one transaction per night, as a nightly run of many images would be
            for ref in range(refs):
                image = ImageIdentity(f"org/app{ref}:latest", f"sha256:{ref:032x}{day // 7:032x}", created=when,
                                      history_known=True, apt_layer_created=when - timedelta(days=day % 30))
                store.save_scan(ScanResult(image.reference, ScanStatus.OK, when, when + timedelta(seconds=3),
                                           image=image, os_release=DEB, updates=updates(ref, day)))
    store.close()
    return time.perf_counter() - began


def timed(args: list[str], env: dict[str, str]) -> float:
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        result = CliRunner().invoke(main, args, env=env)
        runs.append(time.perf_counter() - began)
        assert result.exit_code in (0, 1), result.output[-500:]
    return statistics.median(runs)


def main_() -> None:
    refs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 365
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        gen = generate(db, refs, days)
        env = {"DRIFTWATCH_NOW": (START + timedelta(days=days)).isoformat()}
        size = db.stat().st_size / 1e6
        print(f"database: {refs} references x {days} scans = {refs * days:,} scans, {size:.1f} MB, "
              f"generated in {gen:.0f} s")
        for name, args in (("report", ["--db", str(db), "report"]),
                           ("report --format json", ["--db", str(db), "report", "--format", "json"]),
                           ("check", ["--db", str(db), "check"])):
            t = timed(args, env)
            print(f"{name:22} median of 5: {t:.3f} s (target < 1 s: {'met' if t < 1 else 'MISSED'})")


if __name__ == "__main__":
    main_()
