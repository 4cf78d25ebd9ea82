"""Parallel scans and shared package lists on the real engine (issue 8).

The decisive test scans the same images both ways, one refresh per group and one per image, and
compares every field of every result. The autouse gate (tests/conftest.py) checks after each test
that no probe container and no package-lists volume was left behind.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from driftwatch.cli import main
from driftwatch.engine import DEADLINE_LABEL, LISTS_DIR, PROBE_LABEL, RUN_LABEL, SCOPE_LABEL, DockerEngine
from driftwatch.fleet import Fleet, fingerprint_image
from driftwatch.lock import RunLock
from driftwatch.models import Reason, RunOutput, ScanResult, ScanStatus
from driftwatch.scanner import Scanner
from driftwatch.store import open_store
from tests.engine.conftest import BASE, TEST_LABEL, ImageBuilder
from tests.engine.test_scan_engine import silent_server  # noqa: F401  (fixture)
from tests.support.aptrepo import Pkg
from tests.support.images import prepare_drift_context

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


class Recording:
    """The real engine, with every probe's image, lists volume and mode recorded."""

    def __init__(self, engine: DockerEngine) -> None:
        self.engine = engine
        self.probes: list[tuple[str, str | None, bool]] = []

    def run_probe(self, image_id: str, script: str, *, timeout: float, network: str, env: Mapping[str, str],
                  reference: str, lists_volume: str | None = None, lists_writable: bool = False) -> RunOutput:
        self.probes.append((reference, lists_volume, lists_writable))
        return self.engine.run_probe(image_id, script, timeout=timeout, network=network, env=env,
                                     reference=reference, lists_volume=lists_volume, lists_writable=lists_writable)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def everything(result: ScanResult) -> tuple[Any, ...]:
    """Every field of a result but its times: the image, the release, the status and each update."""
    return (result.reference, result.status, result.reason, result.detail, result.step, result.exit_code,
            result.stderr_tail, result.warnings, result.release_eol, result.os_release, result.image,
            tuple(sorted(result.updates, key=lambda u: (u.package, u.arch))))


@pytest.fixture(scope="module")
def drift_variants(images: ImageBuilder, drift_repo: tuple[Path, str], drift_image: str,
                   tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Images with the drift fixture's sources but other packages: demo-a 1.1 already installed (no
    security update pending), and demo-b held."""
    repo, url = drift_repo
    newer = images.build(prepare_drift_context(tmp_path_factory.mktemp("newer"), repo, url,
                                               [Pkg("demo-a", "1.1"), Pkg("demo-b", "1.0")]), "drift-newer")
    held = images.from_dockerfile("drift-held", f"FROM {drift_image}\nRUN apt-mark hold demo-b\n")
    return [newer, held]


def scanned_both_ways(docker_engine: DockerEngine, refs: list[str]) -> tuple[Recording, dict[str, ScanResult]]:
    """Scan ``refs`` sharing lists and probes, then each on its own; assert every result is the same
    both ways. Returns the shared run's recorded engine and results."""
    engine = Recording(docker_engine)
    shared = {r.reference: r for r in Fleet(Scanner(engine, network="host", timeout=300), engine,  # type: ignore[arg-type]
                                            jobs=2).scan(refs)}  # type: ignore[arg-type]
    alone = {r.reference: r for r in Fleet(Scanner(docker_engine, network="host", timeout=300), docker_engine,
                                           jobs=2, share_lists=False).scan(refs)}
    for ref in refs:
        assert everything(shared[ref]) == everything(alone[ref]), ref
    return engine, shared


def test_shared_lists_give_exactly_the_per_image_results(docker_engine: DockerEngine, images: ImageBuilder,
                                                         drift_image: str, drift_variants: list[str]) -> None:
    twin = images.tag("debian-twin")
    docker_engine.tag(docker_engine.inspect_image(BASE).image_id, [twin])
    images.tags.append(twin)
    refs = [drift_image, *drift_variants, BASE, twin]

    shared_engine = Recording(docker_engine)
    shared_scanner = Scanner(shared_engine, network="host", timeout=300)  # type: ignore[arg-type]
    shared = {r.reference: r for r in Fleet(shared_scanner, shared_engine, jobs=2).scan(refs)}  # type: ignore[arg-type]
    alone_engine = Recording(docker_engine)
    alone_scanner = Scanner(alone_engine, network="host", timeout=300)  # type: ignore[arg-type]
    alone = {r.reference: r for r in Fleet(alone_scanner, alone_engine, jobs=2, share_lists=False).scan(refs)}  # type: ignore[arg-type]

    refreshes = [(ref, vol) for ref, vol, rw in shared_engine.probes if rw]
    assert len(refreshes) == 2  # one per group, in whichever of its images was fingerprinted first
    assert {ref in (drift_image, *drift_variants) for ref, _ in refreshes} == {True, False}
    by_volume = {vol: sorted(ref for ref, v, rw in shared_engine.probes if v == vol and not rw) for _, vol in refreshes}
    # BASE and its twin tag are one image, so one apt state: one probed over the lists, the other confirmed
    probed_base = next(ref for ref in (BASE, twin) if shared[ref].probe_of is None)
    assert sorted(by_volume.values()) == sorted([sorted([drift_image, *drift_variants]), [probed_base]])
    assert shared[twin if probed_base == BASE else BASE].probe_of == probed_base
    assert all(vol is None for _, vol, _ in alone_engine.probes) and len(alone_engine.probes) == len(refs)

    for ref in refs:
        assert shared[ref].status is ScanStatus.OK, (ref, shared[ref].detail)
        assert everything(shared[ref]) == everything(alone[ref]), ref
    assert {(u.package, u.candidate, u.security) for u in shared[drift_image].updates} == {
        ("demo-a", "1.1", True), ("demo-b", "2.0", False)}
    newer, held = drift_variants
    assert {(u.package, u.candidate) for u in shared[newer].updates} == {("demo-b", "2.0")}
    assert {(u.package, u.held) for u in shared[held].updates} == {("demo-a", False), ("demo-b", True)}
    assert shared[BASE].pending_total == shared[twin].pending_total


def test_one_probe_per_apt_state_gives_exactly_the_per_image_results(
        docker_engine: DockerEngine, images: ImageBuilder, drift_image: str, drift_variants: list[str]) -> None:
    """Application layers that leave apt's state alone (files, ENV) share the drift image's probe; a
    layer that deletes apt-get, or one that installs a package, does not. Same results as per image."""
    app_a = images.from_dockerfile("app-a", f"FROM {drift_image}\nRUN echo a > /app\nENV APP_VERSION=1\n")
    app_b = images.from_dockerfile("app-b", f"FROM {drift_image}\nCOPY --from={BASE} /etc/hostname /app\n")
    stripped = images.from_dockerfile("stripped", f"FROM {drift_image}\nRUN rm /usr/bin/apt-get\n")
    refs = [drift_image, app_a, app_b, stripped, drift_variants[0]]
    engine, shared = scanned_both_ways(docker_engine, refs)
    same_state = (drift_image, app_a, app_b, stripped)
    first = next(ref for ref, vol, rw in engine.probes if vol is not None and not rw and ref in same_state)
    confirmed = {ref: shared[ref].probe_of for ref in refs if shared[ref].probe_of is not None}
    assert set(confirmed) | set(confirmed.values()) <= {drift_image, app_a, app_b}
    if first != stripped:  # (a stripped image probed first shares nothing: its scan is not OK)
        assert len(confirmed) == 2 and set(confirmed.values()) == {first}
    assert (shared[stripped].status, shared[stripped].reason) == (ScanStatus.UNSUPPORTED,
                                                                   Reason.NO_SHELL_OR_PACKAGE_MANAGER)
    over_lists = [ref for ref, vol, rw in engine.probes if vol is not None and not rw]
    assert sorted(over_lists) == sorted(set(refs) - set(confirmed))
    assert {(u.package, u.candidate, u.security) for u in shared[app_b].updates} == {
        ("demo-a", "1.1", True), ("demo-b", "2.0", False)}


def test_apt_configuration_outside_etc_apt_is_never_shared(docker_engine: DockerEngine, images: ImageBuilder,
                                                           drift_image: str) -> None:
    """The second review's case: APT_CONFIG (or an #include) names a file the fingerprint does not
    read; with Default-Release there, a shared answer hid the drift image's updates. Such images are
    scanned on their own: the same results as per image, no lists or probe shared."""
    plain = images.from_dockerfile("cfg-plain", f"FROM {drift_image}\nRUN echo '// nothing' > /opt/apt.conf\n"
                                   "ENV APT_CONFIG=/opt/apt.conf\n")
    pinned = images.from_dockerfile("cfg-pinned", f"FROM {drift_image}\n"
                                    "RUN echo 'APT::Default-Release \"nosuchrelease\";' > /opt/apt.conf\n"
                                    "ENV APT_CONFIG=/opt/apt.conf\n")
    included = images.from_dockerfile("cfg-include", f"FROM {drift_image}\n"
                                      "RUN echo '#include \"/opt/inc.conf\";' > /etc/apt/apt.conf.d/99inc "
                                      "&& touch /opt/inc.conf\n")
    refs = [plain, pinned, included, drift_image]
    engine, shared = scanned_both_ways(docker_engine, refs)
    assert all(shared[ref].probe_of is None for ref in refs)
    # (the drift image shares its base layer with the others, so its refresh may start at once, for a
    # group that turns out to be itself alone)
    others = [(ref, vol) for ref, vol, _ in engine.probes if ref != drift_image]
    assert sorted(others) == sorted((ref, None) for ref in (plain, pinned, included))  # one own probe each
    assert shared[plain].pending_total == 2


def test_a_failed_group_refresh_fails_each_image_like_its_own(images: ImageBuilder,
                                                               docker_engine: DockerEngine) -> None:
    dockerfile = (f"FROM {BASE}\nRUN rm -f /etc/apt/sources.list.d/* && "
                  "echo 'deb http://127.0.0.1:9/debian bookworm main' > /etc/apt/sources.list\n")
    first = images.from_dockerfile("closed-a", dockerfile)
    second = images.from_dockerfile("closed-b", dockerfile + "RUN echo b > /b\n")
    engine = Recording(docker_engine)
    scanner = Scanner(engine, network="host", timeout=120)  # type: ignore[arg-type]
    shared = {r.reference: r for r in Fleet(scanner, engine, jobs=2).scan([first, second])}  # type: ignore[arg-type]
    # the refresh, then the same in the other image before the group fails: nobody scans over failed lists
    assert sorted((ref, rw) for ref, _, rw in engine.probes) == [(first, True), (second, True)]
    for ref in (first, second):
        own = Scanner(docker_engine, network="host", timeout=120).scan(ref)
        assert (own.status, own.reason, own.step) == (ScanStatus.FAILED, Reason.INDEX_UPDATE_FAILED, "update")
        assert own.detail is not None and "127.0.0.1:9" in own.detail
        assert everything(shared[ref]) == everything(own)


def test_an_image_that_cannot_refresh_fails_alone_not_its_group(images: ImageBuilder,
                                                                 docker_engine: DockerEngine) -> None:
    """A layer removed gpgv: the fingerprint (the sources) cannot see it, and that image's refresh fails
    to verify the archive's signatures. Another member refreshes, the others are scanned over its lists,
    and the broken image fails exactly as its own scan does."""
    broken = images.from_dockerfile("nogpgv", f"FROM {BASE}\nRUN rm /usr/bin/gpgv\n")
    app = images.from_dockerfile("nogpgv-twin", f"FROM {BASE}\nRUN echo app > /app\n")
    engine = Recording(docker_engine)
    scanner = Scanner(engine, network="host", timeout=300)  # type: ignore[arg-type]
    shared = {r.reference: r for r in Fleet(scanner, engine, jobs=1).scan([broken, app])}  # type: ignore[arg-type]
    assert [ref for ref, _, rw in engine.probes if rw] == [broken, app]
    own = Scanner(docker_engine, network="host", timeout=300).scan(broken)
    assert (own.status, own.reason) == (ScanStatus.FAILED, Reason.INDEX_UPDATE_FAILED)
    assert everything(shared[broken]) == everything(own)
    assert shared[app].status is ScanStatus.OK and shared[app].pending_total is not None


def test_fingerprint_reads_the_files_of_a_container_that_never_starts(docker_engine: DockerEngine,
                                                                      drift_image: str) -> None:
    image = docker_engine.inspect_image(drift_image)
    with docker_engine.image_files(image.image_id, reference=drift_image) as reader:
        states = [c.status for c in docker_engine.client.containers.list(
            all=True, filters={"label": f"{RUN_LABEL}={docker_engine.run_id}"})]
        entries = {e.path: e for e in reader.read("/etc/apt")}
        assert reader.read("/no/such/path") == ()
    assert states == ["created"]
    assert b"deb [trusted=yes] http://127.0.0.1:" in entries["/etc/apt/sources.list"].data
    assert entries["/etc/apt"].kind == "dir"
    base = fingerprint_image(docker_engine, docker_engine.inspect_image(BASE))
    drift = fingerprint_image(docker_engine, image)
    assert base is not None and drift is not None and base.key != drift.key
    assert drift.os_release is not None and drift.os_release.label == "debian 12"


def scope_of(db: Path) -> str:
    return hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:16]


def test_cli_scan_with_jobs_shares_and_stores_each_result(drift_image: str, drift_variants: list[str],
                                                          tmp_path: Path, docker_engine: DockerEngine) -> None:
    db = tmp_path / "d.db"
    refs = [drift_image, *drift_variants]
    result = CliRunner().invoke(main, ["-v", "--db", str(db), "scan", "--network", "host", "--jobs", "2", *refs,
                                       "driftwatch-test/absent:never"], catch_exceptions=False)
    assert result.exit_code == 3, result.output
    assert "3 image(s) in 1 group(s) share package lists: debian 12, 3 images; 1 scanned on their own" in result.output
    assert f"{drift_image}: ok, 2 pending, 1 security" in result.output
    assert "driftwatch-test/absent:never: failed (image_missing)" in result.output
    store = open_store(db)
    assert sorted(store.references()) == sorted([*refs, "driftwatch-test/absent:never"])
    store.close()
    assert docker_engine.client.volumes.list(filters={"label": f"{SCOPE_LABEL}={scope_of(db)}"}) == []


def test_cleanup_removes_stale_lists_volumes_and_keeps_live_ones(docker_engine: DockerEngine, tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    scope = scope_of(db)
    now = datetime.now(timezone.utc)
    made = []
    for name, deadline in (("stale", now - timedelta(minutes=5)), ("live", now + timedelta(minutes=30))):
        volume = docker_engine.client.volumes.create(
            name=f"driftwatch-lists-test-{name}-{uuid.uuid4().hex[:6]}",
            labels={PROBE_LABEL: "1", SCOPE_LABEL: scope, DEADLINE_LABEL: deadline.isoformat(timespec="seconds"),
                    "io.driftwatch.reference": f"{name}:1", **TEST_LABEL})
        made.append(volume.name)
    try:
        dry = CliRunner().invoke(main, ["--db", str(db), "cleanup", "--dry-run"], catch_exceptions=False)
        assert f"would remove volume {made[0]} (stale:1, created " in dry.output
        assert f"kept volume {made[1]} (live:1, created " in dry.output
        done = CliRunner().invoke(main, ["--db", str(db), "cleanup"], catch_exceptions=False)
        assert done.exit_code == 0 and f"removed volume {made[0]} (stale:1" in done.output
        assert "Removed 1 package-lists volume(s)." in done.output
        left = {v.name for v in docker_engine.client.volumes.list(filters={"label": f"{SCOPE_LABEL}={scope}"})}
        assert left == {made[1]}
        # Once a run of this database has taken its lock, a free lock means no scan of it is alive:
        # the live-looking volume is a killed run's and goes now. While the lock is held it stays.
        lock = RunLock(db.with_name(db.name + ".lock"), command="scan")
        with lock:
            held = CliRunner().invoke(main, ["--db", str(db), "cleanup"], catch_exceptions=False)
            assert held.exit_code == 0 and f"kept volume {made[1]} (live:1, created " in held.output
        freed = CliRunner().invoke(main, ["--db", str(db), "cleanup"], catch_exceptions=False)
        assert freed.exit_code == 0 and f"removed volume {made[1]} (live:1" in freed.output
        assert docker_engine.client.volumes.list(filters={"label": f"{SCOPE_LABEL}={scope}"}) == []
    finally:
        for name in made:
            try:
                docker_engine.client.volumes.get(name).remove(force=True)
            except Exception:  # noqa: BLE001  (already removed)
                pass


def test_sigterm_mid_refresh_removes_the_probes_and_the_volume(images: ImageBuilder, drift_image: str,
                                                                silent_server: int,  # noqa: F811
                                                                docker_engine: DockerEngine, tmp_path: Path) -> None:
    hang = (f"FROM {BASE}\nRUN rm -f /etc/apt/sources.list.d/* && "
            f"echo 'deb http://127.0.0.1:{silent_server}/debian bookworm main' > /etc/apt/sources.list\n")
    hangs = [images.from_dockerfile("hang-a", hang), images.from_dockerfile("hang-b", hang + "RUN echo b > /b\n")]
    db = tmp_path / "d.db"
    scope = scope_of(db)
    proc = subprocess.Popen([sys.executable, "-m", "driftwatch", "--db", str(db), "scan", "--network", "host",
                             "--jobs", "2", drift_image, *hangs], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def volumes() -> list[str]:
        return [v.name for v in docker_engine.client.volumes.list(filters={"label": f"{SCOPE_LABEL}={scope}"})]

    def stored(ref: str) -> bool:
        if not db.exists():
            return False
        store = open_store(db)
        try:
            return ref in store.references()
        finally:
            store.close()

    deadline = time.monotonic() + 120
    while not (volumes() and stored(drift_image)):  # the hanging group's refresh is waiting on the server
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the hanging refresh never started"
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; finished scans are stored, interrupted ones are not" in err
    assert docker_engine.client.containers.list(all=True, filters={"label": f"{SCOPE_LABEL}={scope}"}) == []
    assert volumes() == []
    assert not any(stored(h) for h in hangs)
    mounted = [m for c in docker_engine.client.containers.list(all=True) for m in c.attrs.get("Mounts", [])
               if m.get("Destination") == LISTS_DIR and m.get("Type") == "volume"]
    assert mounted == []
