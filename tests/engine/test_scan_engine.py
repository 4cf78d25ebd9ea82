"""The foundation scan on the real engine: the deterministic drift fixture, failures that must never
look clean, images that are not apt images, and hostile entrypoints and users."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftwatch.cli import main
from driftwatch.engine import DockerEngine
from driftwatch.models import Reason, ScanStatus
from driftwatch.scanner import Scanner
from driftwatch.store import open_store
from tests.engine.conftest import BASE, ImageBuilder

pytestmark = pytest.mark.docker


def test_drift_fixture_exact_updates(docker_engine: DockerEngine, drift_image: str, tmp_path: Path) -> None:
    result = Scanner(docker_engine, network="host", timeout=120).scan(drift_image)
    assert result.status is ScanStatus.OK, result.detail
    assert result.reason is None and result.warnings == ()
    assert result.os_release is not None and result.os_release.label == "debian 12"
    assert sorted((u.package, u.arch, u.installed, u.candidate, u.suites, u.security) for u in result.updates) == [
        ("demo-a", "all", "1.0", "1.1", ("bookworm-security",), True),
        ("demo-b", "all", "1.0", "2.0", ("bookworm-updates",), False),
    ]
    assert result.image is not None and result.image.image_id.startswith("sha256:")
    assert drift_image in result.image.repo_tags
    assert result.image.created is not None and result.image.history_known
    store = open_store(tmp_path / "d.db")
    scan_id = store.save_scan(result)
    assert store.latest_scan(drift_image) == (scan_id, result)
    store.close()


def test_user_nobody_and_failing_entrypoint_are_overridden(images: ImageBuilder, drift_image: str,
                                                           docker_engine: DockerEngine) -> None:
    tag = images.from_dockerfile("hostile", f'FROM {drift_image}\nUSER nobody\nENTRYPOINT ["/bin/false"]\nCMD ["x"]\n')
    result = Scanner(docker_engine, network="host", timeout=120).scan(tag)
    assert result.status is ScanStatus.OK, result.detail
    assert {(u.package, u.candidate, u.security) for u in result.updates} == {
        ("demo-a", "1.1", True), ("demo-b", "2.0", False)}


def test_unreachable_mirror_is_failed_never_clean(images: ImageBuilder, docker_engine: DockerEngine) -> None:
    tag = images.from_dockerfile("unreachable", (
        f"FROM {BASE}\nRUN rm -f /etc/apt/sources.list.d/* && "
        "echo 'deb http://mirror.driftwatch.invalid/debian bookworm main' > /etc/apt/sources.list\n"))
    result = Scanner(docker_engine, timeout=120).scan(tag)
    assert result.status is ScanStatus.FAILED
    assert result.reason is Reason.INDEX_UPDATE_FAILED
    assert result.step == "update" and result.exit_code is not None
    assert "mirror.driftwatch.invalid" in (result.detail or "")
    assert result.updates == () and result.pending_total is None


def test_no_shell_no_apt_is_unsupported(images: ImageBuilder, docker_engine: DockerEngine) -> None:
    tag = images.from_dockerfile("scratch", "FROM scratch\nCOPY hello.txt /hello.txt\n", {"hello.txt": "hi\n"})
    result = Scanner(docker_engine, timeout=60).scan(tag)
    assert result.status is ScanStatus.UNSUPPORTED
    assert result.reason is Reason.NO_SHELL_OR_PACKAGE_MANAGER
    assert result.detail == "no shell: /bin/sh cannot be run in this image"


def test_shell_without_apt_is_unsupported(images: ImageBuilder, docker_engine: DockerEngine) -> None:
    tag = images.from_dockerfile("noapt", f"FROM {BASE}\nRUN rm -f /usr/bin/apt-get /usr/bin/apt\n")
    result = Scanner(docker_engine, timeout=60).scan(tag)
    assert (result.status, result.reason) == (ScanStatus.UNSUPPORTED, Reason.NO_SHELL_OR_PACKAGE_MANAGER)
    assert result.detail == "no apt-get in this image; no package manager found"
    assert result.os_release is not None and result.os_release.id == "debian"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server on loopback that accepts and never answers: apt waits on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    sock.close()


def test_timeout_kills_and_removes_the_container(images: ImageBuilder, docker_engine: DockerEngine,
                                                 silent_server: int) -> None:
    tag = images.from_dockerfile("hang", (
        f"FROM {BASE}\nRUN rm -f /etc/apt/sources.list.d/* && "
        f"echo 'deb http://127.0.0.1:{silent_server}/debian bookworm main' > /etc/apt/sources.list\n"))
    result = Scanner(docker_engine, network="host", timeout=4).scan(tag)
    assert (result.status, result.reason) == (ScanStatus.FAILED, Reason.TIMEOUT)
    assert result.pending_total is None
    assert docker_engine.leftover_probes() == []


def test_cli_scan_records_every_image_and_exits_3(drift_image: str, tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    runner = CliRunner()
    result = runner.invoke(main, ["--db", str(db), "scan", "--network", "host", "--timeout", "120",
                                  drift_image, "driftwatch-test/absent:never"], catch_exceptions=False)
    assert result.exit_code == 3
    assert f"{drift_image}: ok, 2 pending, 1 security" in result.output
    assert "driftwatch-test/absent:never: failed (image_missing)" in result.output
    doc = json.loads(runner.invoke(main, ["--db", str(db), "report", "--format", "json"]).output)
    got = {i["reference"]: (i["status"], i["reason"], i["pending_security"], i["pending_total"]) for i in doc["images"]}
    assert got == {drift_image: ("ok", None, 1, 2), "driftwatch-test/absent:never": ("failed", "image_missing", None, None)}
    shown = json.loads(runner.invoke(main, ["--db", str(db), "show", "--format", "json", drift_image]).output)
    assert [(u["package"], u["installed"], u["candidate"], u["suites"], u["security"]) for u in shown["updates"]] == [
        ("demo-a", "1.0", "1.1", ["bookworm-security"], True), ("demo-b", "1.0", "2.0", ["bookworm-updates"], False)]
