"""Hardened, fault-tolerant scanning on the real engine (issue 9).

The least-privilege probe (read-only root, tmpfs only where apt writes, five capabilities,
no-new-privileges, limits), why each capability and mount is needed, foreign-architecture images,
hostile and enormous output, the engine going away mid-run, leftovers and `driftwatch cleanup`,
malformed references and a dropped network.
"""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker
import pytest
from click.testing import CliRunner

from driftwatch import engine as engine_module
from driftwatch.cli import main
from driftwatch.engine import DEADLINE_LABEL, OUTPUT_CAP, PROBE_LABEL, SCOPE_LABEL, DockerEngine, MiB
from driftwatch.models import Reason, ScanResult, ScanStatus
from driftwatch.scanner import Scanner
from driftwatch.store import open_store
from tests.engine.conftest import BASE, TEST_LABEL, ImageBuilder
from tests.support.sockproxy import EngineProxy

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def scope_of(db: Path) -> str:
    """The scope label the CLI gives the probes of a database (cli._engine)."""
    return hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:16]


def probes_of(client: docker.DockerClient, scope: str) -> list[docker.models.containers.Container]:
    found: list[docker.models.containers.Container] = client.containers.list(
        all=True, filters={"label": f"{SCOPE_LABEL}={scope}"})
    return found


@pytest.fixture
def no_leftovers(docker_engine: DockerEngine) -> Iterator[list[str]]:
    """Scopes a test used; every probe of them is removed afterwards, whatever happened."""
    scopes: list[str] = []
    yield scopes
    for scope in scopes:
        for c in probes_of(docker_engine.client, scope):
            c.remove(force=True, v=True)


# -- the least-privilege probe ----------------------------------------------------------------------

PRIVILEGE_SCRIPT = r"""
touch /driftwatch-write-test 2>&1; echo "rc-root=$?"
touch /usr/bin/driftwatch-write-test 2>&1; echo "rc-usr=$?"
for d in /var/lib/apt/lists /var/cache/apt /tmp /var/tmp; do : > "$d/x" && echo "rw $d"; done
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status
grep -E ' (/var/lib/apt/lists|/var/cache/apt|/tmp|/var/tmp|/) ' /proc/mounts
echo "pids $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
echo "mem $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/memory.max)"
echo "cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max)"
printf 'bytes \377\376 and \033[31mred\n'
"""


def test_probe_is_read_only_with_five_capabilities_and_limits(docker_engine: DockerEngine) -> None:
    engine = DockerEngine(pids_limit=100, mem_limit=300 * MiB, cpus=0.5)
    image_id = engine.inspect_image(BASE).image_id
    out = engine.run_probe(image_id, PRIVILEGE_SCRIPT, timeout=60, network="none", env={}, reference=BASE)
    lines = out.stdout.splitlines()
    assert "touch: cannot touch '/driftwatch-write-test': Read-only file system" in lines
    assert "rc-root=1" in lines and "rc-usr=1" in lines
    assert [line for line in lines if line.startswith("rw ")] == [
        "rw /var/lib/apt/lists", "rw /var/cache/apt", "rw /tmp", "rw /var/tmp"]
    # CHOWN(0) DAC_OVERRIDE(1) FOWNER(3) SETGID(6) SETUID(7): 0xcb, in the bounding set too.
    assert "CapEff:\t00000000000000cb" in lines and "CapBnd:\t00000000000000cb" in lines
    assert "NoNewPrivs:\t1" in lines
    mounts = {line.split()[1]: line.split()[3].split(",") for line in lines if line.startswith(("overlay ", "tmpfs "))}
    assert mounts["/"][0] == "ro"
    for path in ("/var/lib/apt/lists", "/var/cache/apt", "/tmp", "/var/tmp"):
        assert {"rw", "nosuid", "nodev", "noexec"} <= set(mounts[path]), path
    assert "pids 100" in lines and f"mem {300 * MiB}" in lines and "cpu 50000" in lines
    assert "bytes \ufffd\ufffd and \x1b[31mred" in lines  # non-UTF-8 decoded with U+FFFD, never an exception
    assert engine.leftover_probes() == []


def test_scan_leaves_the_image_unchanged(docker_engine: DockerEngine, drift_image: str) -> None:
    before = docker_engine.client.images.get(drift_image).attrs
    result = Scanner(docker_engine, network="host", timeout=120).scan(drift_image)
    assert result.status is ScanStatus.OK and result.warnings == (), (result.detail, result.warnings)
    after = docker_engine.client.images.get(drift_image).attrs
    keys = ("Id", "RootFS", "Size", "Created", "Config", "RepoTags")
    assert {k: after[k] for k in keys} == {k: before[k] for k in keys}
    assert docker_engine.leftover_probes() == []


@pytest.mark.network
@pytest.mark.parametrize("image", [BASE, "driftwatch/ubuntu:24.04"])
def test_base_images_scan_clean_under_the_hardened_probe(image: str, docker_engine: DockerEngine) -> None:
    """The live archives (the lists are 84 MiB and 200 MiB, in tmpfs, under the 1 GiB limit)."""
    result = Scanner(docker_engine, timeout=300).scan(image)
    assert result.status is ScanStatus.OK, (result.reason, result.detail)
    assert not any(word in w for w in result.warnings for word in ("_apt", "chmod", "chown", "Read-only")), \
        result.warnings


@pytest.mark.parametrize("dropped", engine_module.PROBE_CAPABILITIES)
def test_each_capability_is_needed(dropped: str, docker_engine: DockerEngine, drift_image: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With all five the drift scan is ok without a warning (above); without any one it is not."""
    monkeypatch.setattr(engine_module, "PROBE_CAPABILITIES", tuple(c for c in engine_module.PROBE_CAPABILITIES
                                                                   if c != dropped))
    result = Scanner(docker_engine, network="host", timeout=120).scan(drift_image)
    if dropped in ("SETUID", "SETGID", "DAC_OVERRIDE"):
        assert result.status is ScanStatus.FAILED, result
        assert result.reason in (Reason.INDEX_UPDATE_FAILED, Reason.INSUFFICIENT_PRIVILEGES)
    else:  # CHOWN, FOWNER: apt carries on, but warns (and without CHOWN runs its downloads as root)
        assert result.status is ScanStatus.OK
        word = {"CHOWN": "chown to _apt", "FOWNER": "chmod"}[dropped]
        assert any(word in w for w in result.warnings), result.warnings


@pytest.fixture(scope="module")
def cache_keeping_image(images: ImageBuilder, drift_image: str) -> str:
    """The drift image without docker-clean and with a stale pkgcache.bin from its build."""
    return images.from_dockerfile("keepcache", f"FROM {drift_image}\nRUN rm -f /etc/apt/apt.conf.d/docker-clean && "
                                  "apt-cache stats >/dev/null && ls /var/cache/apt/pkgcache.bin\n")


@pytest.mark.parametrize(("mount", "outcome"), [("/var/lib/apt/lists", "failed"), ("/tmp", "failed"),
                                                ("/var/cache/apt", "warns"), ("/var/tmp", "clean")])
def test_what_each_tmpfs_is_for(mount: str, outcome: str, docker_engine: DockerEngine, cache_keeping_image: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """All four: ok, no warning. Without the lists or /tmp the scan fails; without /var/cache/apt apt
    cannot remove the image's stale pkgcache.bin, warns, and builds its cache in memory; /var/tmp only
    serves a TMPDIR pointing there."""
    ok = Scanner(docker_engine, network="host", timeout=120).scan(cache_keeping_image)
    assert ok.status is ScanStatus.OK and ok.warnings == () and ok.pending_total == 2, ok
    kept = {k: v for k, v in engine_module.PROBE_TMPFS.items() if k != mount}
    monkeypatch.setattr(engine_module, "PROBE_TMPFS", kept)
    result = Scanner(docker_engine, network="host", timeout=120).scan(cache_keeping_image)
    if outcome == "failed":
        assert result.status is ScanStatus.FAILED, (mount, result)
    elif outcome == "warns":
        assert result.status is ScanStatus.OK and any("Read-only file system" in w for w in result.warnings), result
    else:
        assert result.status is ScanStatus.OK and result.warnings == (), result


def test_memory_limit_kills_and_is_reported(docker_engine: DockerEngine) -> None:
    """Any process of the probe killed at the limit marks the run (the scanner then fails the scan)."""
    engine = DockerEngine(mem_limit=64 * MiB)
    image_id = engine.inspect_image(BASE).image_id
    out = engine.run_probe(image_id, "head -c 200000000 /dev/zero | tail -c 200000000 >/dev/null",
                           timeout=60, network="none", env={}, reference=BASE)
    assert out.oom_killed and out.exit_code == 137 and "Killed" in out.stderr


def test_pids_limit_stops_a_fork_flood(docker_engine: DockerEngine) -> None:
    engine = DockerEngine(pids_limit=32)
    image_id = engine.inspect_image(BASE).image_id
    out = engine.run_probe(image_id, "i=0; while [ $i -lt 64 ]; do sleep 3 & i=$((i+1)); done; echo started $i",
                           timeout=60, network="none", env={}, reference=BASE)
    assert (out.exit_code, out.stdout, out.stderr) == (2, "", "/bin/sh: 0: Cannot fork\n")


def test_enormous_output_is_truncated_and_the_scan_failed(images: ImageBuilder, drift_image: str,
                                                          docker_engine: DockerEngine) -> None:
    tag = images.from_dockerfile("loud", f"FROM {drift_image}\n"
                                 "RUN head -c 20000000 /dev/zero | tr '\\0' A > /usr/lib/os-release\n")
    result = Scanner(docker_engine, network="host", timeout=120).scan(tag)
    assert (result.status, result.reason) == (ScanStatus.FAILED, Reason.CONTAINER_ERROR)
    assert result.detail == f"output exceeded {OUTPUT_CAP} bytes" and result.updates == ()


def test_image_volume_does_not_outlive_the_probe(images: ImageBuilder, drift_image: str,
                                                 docker_engine: DockerEngine) -> None:
    tag = images.from_dockerfile("volume", f"FROM {drift_image}\nVOLUME /data\n")
    before = {v.name for v in docker_engine.client.volumes.list()}
    assert Scanner(docker_engine, network="host", timeout=120).scan(tag).status is ScanStatus.OK
    assert {v.name for v in docker_engine.client.volumes.list()} - before == set()


# -- wrong architecture -----------------------------------------------------------------------------

def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def arm64_image(docker_engine: DockerEngine) -> Iterator[str]:
    """An arm64 image, loaded from a hand-built `docker save` archive (this engine ignores
    `docker import --platform`). Its /bin/sh is an ELF header for AArch64 (e_machine 183): the kernel
    refuses it with ENOEXEC exactly as it refuses a real arm64 shell when no emulator is registered."""
    import struct

    elf = (b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
           + struct.pack("<HHIQQQIHHHHHH", 2, 183, 1, 0x400000, 64, 0, 0, 64, 56, 0, 64, 0, 0))
    layer = _tar({"bin/sh": elf, "etc/os-release": b"ID=debian\nVERSION_ID=12\n"})
    config = json.dumps({
        "architecture": "arm64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Labels": TEST_LABEL}, "rootfs": {"type": "layers", "diff_ids": [
            "sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "hand-built arm64 test image"}],
    }).encode()
    tag = f"driftwatch-test/arm64:{uuid.uuid4().hex[:8]}"
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]).encode()
    docker_engine.client.images.load(_tar({config_name: config, "layer/layer.tar": layer, "manifest.json": manifest}))
    yield tag
    docker_engine.remove_image(tag)


def test_arm64_image_without_emulation_is_unsupported_before_running(arm64_image: str, tmp_path: Path) -> None:
    (tmp_path / "status").write_text("enabled\n")  # binfmt_misc mounted, no qemu-aarch64 registered
    engine = DockerEngine(binfmt_dir=tmp_path)
    assert engine.inspect_image(arm64_image).architecture == "arm64"
    result = Scanner(engine, timeout=60).scan(arm64_image)
    assert (result.status, result.reason, result.step) == (ScanStatus.UNSUPPORTED, Reason.WRONG_ARCHITECTURE,
                                                           "platform")
    assert result.detail == ("the image is built for linux/arm64; the engine runs linux/amd64 and has no emulator "
                             "for arm64 (binfmt_misc/QEMU): scan it on a arm64 engine")


def test_arm64_image_with_unknown_emulation_is_tried_and_judged(arm64_image: str, tmp_path: Path) -> None:
    engine = DockerEngine(binfmt_dir=tmp_path / "not-mounted")
    assert engine.platform().emulated is None
    result = Scanner(engine, timeout=60).scan(arm64_image)
    assert (result.status, result.reason, result.step) == (ScanStatus.UNSUPPORTED, Reason.WRONG_ARCHITECTURE, "start")
    assert result.stderr_tail is not None and "exec format error" in result.stderr_tail
    assert engine.leftover_probes() == []


def test_cli_arm64_is_one_unsupported_line(arm64_image: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "d.db"), "scan", arm64_image], catch_exceptions=False)
    assert result.exit_code == 3
    assert f"{arm64_image}: unsupported (wrong_architecture): the image is built for linux/arm64" in result.output
    assert "Traceback" not in result.output


# -- the engine goes away mid-run -------------------------------------------------------------------

def test_engine_gone_between_inspect_and_run(images: ImageBuilder, drift_image: str, tmp_path: Path,
                                             no_leftovers: list[str]) -> None:
    """A proxy in front of the engine dies when the second probe container is to be created: the
    first scan is stored, the second is recorded failed, one Error line, exit 4."""
    second = images.from_dockerfile("second", f"FROM {drift_image}\n")
    db = tmp_path / "d.db"
    no_leftovers.append(scope_of(db))
    with EngineProxy(tmp_path / "engine.sock", stop_on=b"/containers/create", nth=2) as proxy:
        # One probe at a time, each image its own refresh: the second create is the second probe.
        result = CliRunner().invoke(main, ["--db", str(db), "scan", "--network", "host", "--timeout", "120",
                                           "--jobs", "1", "--no-share-lists", drift_image, second],
                                    env={"DOCKER_HOST": proxy.url}, catch_exceptions=False)
    assert result.exit_code == 4, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{drift_image}: ok, 2 pending, 1 security"
    assert lines[-1].startswith(f"Error: engine at {proxy.url} stopped answering: ")
    assert len(lines) == 2 and "Traceback" not in result.output
    store = open_store(db)
    assert store.latest_scan(drift_image)[1].pending_total == 2
    lost = store.latest_scan(second)[1]
    assert (lost.status, lost.reason, lost.step) == (ScanStatus.FAILED, Reason.CONTAINER_ERROR, "engine")
    assert lost.detail is not None and lost.detail.startswith("the engine stopped answering during the scan: ")
    store.close()


def test_engine_gone_during_the_nightly_run_records_the_lost_scan(images: ImageBuilder, drift_image: str,
                                                                  tmp_path: Path, no_leftovers: list[str]) -> None:
    """`driftwatch run` too: the scan the engine took with it is recorded failed, never left at its last
    good state; the run stops with one Error line and exit 4 (nothing is evaluated on half the fleet)."""
    second = images.from_dockerfile("second-run", f"FROM {drift_image}\n")
    db, cfg = tmp_path / "d.db", tmp_path / "c.toml"
    cfg.write_text(f'[scan]\nnetwork = "host"\ntimeout = 120\n\n[[images]]\nreference = "{drift_image}"\n\n'
                   f'[[images]]\nreference = "{second}"\n')
    no_leftovers.append(scope_of(db))
    store = open_store(db)
    store.save_scan(ScanResult(second, ScanStatus.OK, datetime.now(timezone.utc) - timedelta(days=1),
                               datetime.now(timezone.utc) - timedelta(days=1)))  # yesterday: clean
    store.close()
    with EngineProxy(tmp_path / "engine.sock", stop_on=b"/containers/create", nth=2) as proxy:
        result = CliRunner().invoke(main, ["--db", str(db), "--config", str(cfg), "run", "--jobs", "1",
                                           "--no-share-lists", "--no-rebuild", "--no-notify"],
                                    env={"DOCKER_HOST": proxy.url}, catch_exceptions=False)
    assert result.exit_code == 4, result.output
    assert result.output.splitlines()[-1].startswith(f"Error: engine at {proxy.url} stopped answering: ")
    assert "Traceback" not in result.output
    store = open_store(db)
    assert store.latest_scan(drift_image)[1].pending_total == 2
    lost = store.latest_scan(second)[1]
    assert (lost.status, lost.reason, lost.step) == (ScanStatus.FAILED, Reason.CONTAINER_ERROR, "engine")
    store.close()


def test_engine_gone_while_the_probe_runs_then_cleanup(drift_image: str, tmp_path: Path, docker_engine: DockerEngine,
                                                       no_leftovers: list[str]) -> None:
    """The proxy dies as the client starts waiting for the running probe: a lost engine, not a timeout (exit 4).
    The probe it left on the real engine is then removed by `driftwatch cleanup`."""
    db = tmp_path / "d.db"
    scope = scope_of(db)
    no_leftovers.append(scope)
    with EngineProxy(tmp_path / "engine.sock", stop_on=b"/wait") as proxy:
        result = CliRunner().invoke(main, ["--db", str(db), "scan", "--network", "host", "--timeout", "120",
                                           drift_image], env={"DOCKER_HOST": proxy.url}, catch_exceptions=False)
    assert result.exit_code == 4, result.output
    assert result.output.startswith(f"Error: engine at {proxy.url} stopped answering: ")
    assert result.output.count("\n") == 1 and "timeout" not in result.output
    store = open_store(db)
    assert store.latest_scan(drift_image)[1].status is ScanStatus.FAILED
    store.close()
    left = probes_of(docker_engine.client, scope)
    assert len(left) == 1
    left[0].wait(timeout=120)  # it finishes its scan; nobody is left to read it
    runner = CliRunner()
    dry = runner.invoke(main, ["--db", str(db), "cleanup", "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0 and dry.output.startswith(f"would remove {left[0].id[:12]} ({drift_image}, exited, ")
    assert len(probes_of(docker_engine.client, scope)) == 1
    done = runner.invoke(main, ["--db", str(db), "cleanup"], catch_exceptions=False)
    assert done.exit_code == 0 and done.output.startswith(f"removed {left[0].id[:12]} ({drift_image}, exited, ")
    assert "Removed 1 probe container(s)." in done.output
    assert probes_of(docker_engine.client, scope) == []


def test_killed_scan_leaves_a_probe_that_cleanup_removes(images: ImageBuilder, tmp_path: Path,
                                                         docker_engine: DockerEngine, no_leftovers: list[str]) -> None:
    """SIGKILL of a real `driftwatch scan` process mid-probe (no finally runs): its probe is left.
    The image's apt-get (first on PATH) waits 8 s first, so the kill always lands mid-probe (a probe
    that finished in the poll's 50 ms was being removed by the killed process's last request)."""
    slow = images.from_dockerfile("slowapt", f"FROM {BASE}\nRUN printf '#!/bin/sh\\nsleep 8\\nexec /usr/bin/apt-get \"$@\"\\n'"
                                  " > /usr/local/bin/apt-get && chmod 755 /usr/local/bin/apt-get\n")
    db = tmp_path / "d.db"
    scope = scope_of(db)
    no_leftovers.append(scope)
    proc = subprocess.Popen([sys.executable, "-m", "driftwatch", "--db", str(db), "scan", "--network", "none",
                             slow], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not probes_of(docker_engine.client, scope) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    left = probes_of(docker_engine.client, scope)
    assert len(left) == 1, "the scan ended before it could be killed mid-probe"
    left[0].wait(timeout=120)
    done = CliRunner().invoke(main, ["--db", str(db), "cleanup"], catch_exceptions=False)
    assert done.exit_code == 0 and f"removed {left[0].id[:12]}" in done.output
    assert probes_of(docker_engine.client, scope) == []


def test_cleanup_keeps_live_probes_and_honours_scope(docker_engine: DockerEngine, images: ImageBuilder,
                                                     tmp_path: Path, no_leftovers: list[str]) -> None:
    """Probe-labelled containers as crashed runs leave them: one still within its scan's deadline
    (kept), one past it (removed, with the anonymous volume of its image's VOLUME), one exited
    (removed), one of another database (left alone, unless --all)."""
    db = tmp_path / "d.db"
    scope, other = scope_of(db), f"other-{uuid.uuid4().hex[:8]}"
    no_leftovers += [scope, other]
    with_volume = images.from_dockerfile("probevol", f"FROM {BASE}\nVOLUME /data\n")
    now = datetime.now(timezone.utc)

    def probe(name: str, image: str, deadline: datetime, scope_label: str, command: str = "sleep 300") -> str:
        c = docker_engine.client.containers.run(image, ["sh", "-c", command], detach=True, labels={
            PROBE_LABEL: "1", SCOPE_LABEL: scope_label, DEADLINE_LABEL: deadline.isoformat(timespec="seconds"),
            "io.driftwatch.reference": name, **TEST_LABEL})
        return str(c.id)

    live = probe("live:1", BASE, now + timedelta(minutes=10), scope)
    stale = probe("stale:1", with_volume, now - timedelta(minutes=10), scope)
    exited = probe("exited:1", BASE, now + timedelta(minutes=10), scope, "true")
    foreign = probe("other:1", BASE, now - timedelta(minutes=10), other)
    docker_engine.client.containers.get(exited).wait(timeout=30)
    volume = docker_engine.client.containers.get(stale).attrs["Mounts"][0]["Name"]
    result = CliRunner().invoke(main, ["--db", str(db), "cleanup"], catch_exceptions=False)
    assert result.exit_code == 0
    out = result.output.splitlines()
    assert [line.split(" (")[0] for line in out if not line.startswith("Removed")] == [
        f"kept {live[:12]}", f"removed {stale[:12]}", f"removed {exited[:12]}"]
    assert {c.id for c in probes_of(docker_engine.client, scope)} == {live}
    assert volume not in {v.name for v in docker_engine.client.volumes.list()}
    assert {c.id for c in probes_of(docker_engine.client, other)} == {foreign}
    everything = CliRunner().invoke(main, ["--db", str(db), "cleanup", "--all", "--dry-run"], catch_exceptions=False)
    assert f"would remove {foreign[:12]} (other:1, running, " in everything.output
    assert {c.id for c in probes_of(docker_engine.client, other)} == {foreign}  # dry run: nothing removed


# -- bad input and a dropped network ----------------------------------------------------------------

def test_malformed_references_are_failed_scans_not_tracebacks(tmp_path: Path) -> None:
    refs = ["UPPER CASE", "a b", "::", "", "x/../y", "evil\x1b[2J"]
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "d.db"), "scan", *refs], catch_exceptions=False)
    assert result.exit_code == 3 and "Traceback" not in result.output and "\x1b" not in result.output
    lines = result.output.splitlines()
    assert sorted(lines[:6]) == sorted([  # in the order the (parallel) scans finished
        "UPPER CASE: failed (image_missing): image 'UPPER CASE': not a valid image reference (expected "
        "[registry/]name[:tag][@digest], name in lower case, no spaces)",
        "a b: failed (image_missing): image 'a b': not a valid image reference (expected [registry/]name[:tag]"
        "[@digest], name in lower case, no spaces)",
        "::: failed (image_missing): image '::': not a valid image reference (expected [registry/]name[:tag]"
        "[@digest], name in lower case, no spaces)",
        ": failed (image_missing): image '': the image reference is empty",
        "x/../y: failed (image_missing): image 'x/../y': not a valid image reference (expected [registry/]name[:tag]"
        "[@digest], name in lower case, no spaces)",
        "evil?[2J: failed (image_missing): image 'evil\\x1b[2J': not a valid image reference (expected "
        "[registry/]name[:tag][@digest], name in lower case, no spaces)",
    ])


def test_dropped_network_is_failed_never_clean(drift_image: str, docker_engine: DockerEngine) -> None:
    result = Scanner(docker_engine, network="none", timeout=120).scan(drift_image)
    assert (result.status, result.reason, result.step) == (ScanStatus.FAILED, Reason.INDEX_UPDATE_FAILED, "update")
    assert result.updates == () and result.pending_total is None
