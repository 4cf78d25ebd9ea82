"""The run lock and the Prometheus textfile."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftwatch import metrics, policy
from driftwatch.config import Settings, Thresholds
from driftwatch.errors import LockHeld
from driftwatch.lock import RunLock
from driftwatch.models import RebuildRecord, RebuildResult
from driftwatch.store import Store
from tests.test_store import T0, UPDATES, failed_scan, ok_scan


def test_second_holder_is_told_who_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "d.db.lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from driftwatch.lock import RunLock
        with RunLock(Path({str(path)!r}), command="run"):
            print("held", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(LockHeld) as err, RunLock(path):
            pass
        assert str(err.value).startswith(f"another driftwatch run holds {path}: pid {holder.pid} on ")
        assert "(driftwatch run), started 20" in str(err.value)
        with pytest.raises(LockHeld, match=r"\(waited 0.5s\)"), RunLock(path, wait=0.5):
            pass
    finally:
        holder.communicate("")
    with RunLock(path) as lock:  # released on exit: the next one gets it, and nothing is stale
        assert lock.stale is None


def test_crashed_holder_leaves_a_stale_note_not_a_held_lock(tmp_path: Path) -> None:
    path = tmp_path / "d.db.lock"
    code = f"import os; from pathlib import Path; from driftwatch.lock import RunLock\n" \
           f"RunLock(Path({str(path)!r})).__enter__(); os._exit(9)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 9
    with RunLock(path) as lock:
        assert lock.stale is not None and lock.stale["command"] == "run"
    assert path.read_text() == ""  # a clean finish empties it


def test_metrics_file_parses_and_holds_the_right_values(store: Store, tmp_path: Path) -> None:
    store.save_scan(ok_scan("app:1", T0, UPDATES))
    store.save_scan(failed_scan('we"ird\\name:1'))
    now = T0 + timedelta(days=2, seconds=5)
    store.save_rebuild(RebuildRecord("app:1", "docker", "max_security_pending 1 > 0", now, now,
                                     RebuildResult.INEFFECTIVE, "no upgrade step"))
    rows = policy.assess(store.latest(), Settings(defaults=Thresholds(max_security_pending=0)), now)
    path = tmp_path / "driftwatch.prom"
    path.write_text("old content\n")
    metrics.write_atomically(path, metrics.render(rows, store.rebuild_counts(), now, 12.5))
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    samples = {(f.name, s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    assert samples[("driftwatch_pending_updates", "driftwatch_pending_updates",
                    (("image", "app:1"), ("kind", "security")))] == 1
    assert samples[("driftwatch_pending_updates", "driftwatch_pending_updates", (("image", "app:1"), ("kind", "all")))] == 2
    assert samples[("driftwatch_oldest_security_update_age_seconds", "driftwatch_oldest_security_update_age_seconds",
                    (("image", "app:1"),))] == 2 * 86400
    assert samples[("driftwatch_scan_status", "driftwatch_scan_status",
                    (("image", 'we"ird\\name:1'), ("status", "failed")))] == 1
    assert samples[("driftwatch_verdict", "driftwatch_verdict", (("image", "app:1"), ("verdict", "breach")))] == 1
    assert samples[("driftwatch_verdict", "driftwatch_verdict", (("image", "app:1"), ("verdict", "ok")))] == 0
    assert samples[("driftwatch_rebuilds", "driftwatch_rebuilds_total",
                    (("image", "app:1"), ("outcome", "ineffective")))] == 1
    assert samples[("driftwatch_run_duration_seconds", "driftwatch_run_duration_seconds", ())] == 12.5
    assert families["driftwatch_rebuilds"].type == "counter"
    assert not any(("image", 'we"ird\\name:1') in k[2] for k in samples if k[0] == "driftwatch_pending_updates")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driftwatch.db", "driftwatch.prom"]  # no temp file left


def test_metrics_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "x.prom"
    with pytest.raises(Exception, match="cannot write metrics"):
        metrics.write_atomically(target, "x 1\n")
    assert not target.exists()
    assert os.listdir(tmp_path) == []
