"""`driftwatch run` on the real engine, as cron runs it: a real process, real signals."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftwatch.engine import PROBE_LABEL, SCOPE_LABEL, DockerEngine
from driftwatch.store import open_store
from tests.engine.conftest import BASE, ImageBuilder
from tests.engine.test_scan_engine import silent_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.docker


def driftwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "driftwatch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def probes(engine: DockerEngine, db: Path) -> list[str]:
    """Probe containers of runs on this database (the CLI scopes its probes by the database path)."""
    scope = hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:16]
    return [c.id for c in engine.client.containers.list(all=True, sparse=True,
                                                        filters={"label": [PROBE_LABEL, f"{SCOPE_LABEL}={scope}"]})]


def test_run_scans_evaluates_and_summarises(drift_image: str, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[defaults]\nmax_security_pending = 0\n\n[scan]\nnetwork = "host"\ntimeout = 120\n\n'
                   f'[[images]]\nreference = "{drift_image}"\n\n[[images]]\nreference = "driftwatch-test/absent:1"\n')
    proc = driftwatch("--db", str(tmp_path / "d.db"), "--config", str(cfg), "run", "--json",
                      "--metrics", str(tmp_path / "m.prom"))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    doc = json.loads(out)
    assert doc["scanned"] == 2 and doc["verdicts"] == {drift_image: "breach", "driftwatch-test/absent:1": "failed"}
    assert doc["breaches"] == {drift_image: "max_security_pending 1 > 0"}
    assert [s["reason"] for s in doc["scans_not_ok"]] == ["image_missing"]
    assert "driftwatch_pending_updates" in (tmp_path / "m.prom").read_text()

    quiet = driftwatch("--db", str(tmp_path / "d.db"), "--config", str(cfg), "run", "--quiet")
    out, _ = quiet.communicate(timeout=300)
    assert quiet.returncode == 3  # still needs a person: quiet still says why
    assert f"BREACH    {drift_image}: max_security_pending 1 > 0" in out
    assert "driftwatch-test/absent:1: failed (image_missing)" in out


def test_sigterm_mid_scan_removes_the_probe_and_stores_no_clean_scan(
    docker_engine: DockerEngine, images: ImageBuilder, silent_server: int, drift_image: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    hang = images.from_dockerfile("hang-run", (
        f"FROM {BASE}\nRUN rm -f /etc/apt/sources.list.d/* && "
        f"echo 'deb http://127.0.0.1:{silent_server}/debian bookworm main' > /etc/apt/sources.list\n"))
    db, cfg = tmp_path / "d.db", tmp_path / "c.toml"
    cfg.write_text(f'[scan]\nnetwork = "host"\ntimeout = 120\n\n[[images]]\nreference = "{drift_image}"\n\n'
                   f'[[images]]\nreference = "{hang}"\n')
    before = set(probes(docker_engine, db))
    proc = driftwatch("--db", str(db), "--config", str(cfg), "run")
    deadline = time.monotonic() + 120
    while not (set(probes(docker_engine, db)) - before) or not _scan_of(db, drift_image):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the hanging probe never started"
        time.sleep(0.2)
    time.sleep(1)  # the hang image's probe is now waiting on the silent server
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; finished scans are stored, interrupted ones are not" in err
    assert set(probes(docker_engine, db)) - before == set()
    assert _scan_of(db, drift_image) and not _scan_of(db, hang)
    assert (db.with_name("d.db.lock")).read_text() == ""  # released
    again = driftwatch("--db", str(db), "--config", str(cfg), "run", "--no-rebuild")
    cfg.write_text(f'[scan]\nnetwork = "host"\n\n[[images]]\nreference = "{drift_image}"\n')
    again.communicate(timeout=300)
    assert again.returncode in (0, 1)


def _scan_of(db: Path, reference: str) -> bool:
    if not db.exists():
        return False
    store = open_store(db)
    try:
        return any(r.reference == reference for r in store.latest())
    finally:
        store.close()
