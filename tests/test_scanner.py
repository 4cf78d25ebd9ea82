"""The scanner's decisions, on captured real outputs framed as the probe script frames them.

A FakeEngine stands in for Docker here (as pip-audit's dummy services do); the real engine is
exercised in tests/engine/.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from driftwatch.engine import ProbeStartError
from driftwatch.errors import ImageMissing
from driftwatch.models import ImageIdentity, Platform, Reason, RunOutput, ScanStatus
from driftwatch.scanner import Scanner, build_script, split_sections
from tests.support.files import fixture_text
from tests.support.probe import frame

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
NONCE = "@@driftwatch-0123456789abcdef"


def capture(name: str, step: str) -> tuple[str, str, int]:
    base = f"apt/{name}.{step}"
    return fixture_text(base + ".stdout"), fixture_text(base + ".stderr"), int(fixture_text(base + ".rc"))


@dataclass
class FakeEngine:
    """Engine over canned outputs."""

    stdout: str = ""
    exit_code: int | None = 0
    timed_out: bool = False
    start_error: str | None = None
    missing: bool = False
    architecture: str = ""
    engine_platform: Platform = Platform("linux", "amd64", frozenset())
    calls: list[dict[str, object]] = field(default_factory=list)

    def inspect_image(self, reference: str) -> ImageIdentity:
        if self.missing:
            raise ImageMissing(f"image {reference!r} is not present in the local engine (driftwatch never pulls)")
        return ImageIdentity(reference, "sha256:" + "cd" * 32, (reference,), architecture=self.architecture)

    def platform(self) -> Platform:
        return self.engine_platform

    def run_probe(self, image_id: str, script: str, *, timeout: float, network: str, env: Mapping[str, str],
                  reference: str) -> RunOutput:
        self.calls.append({"script": script, "timeout": timeout, "network": network, "env": dict(env)})
        if self.start_error:
            raise ProbeStartError(self.start_error)
        return RunOutput(self.exit_code, self.stdout, "", timed_out=self.timed_out)


def scanner(engine: FakeEngine) -> Scanner:
    return Scanner(engine, timeout=42, network="host", clock=lambda: NOW, nonce=lambda: NONCE)


def steps_for(name: str, *, os_file: str = "debian-12", upto: str = "sim") -> dict[str, tuple[str, str, int]]:
    steps = {"os-release": (fixture_text(f"os-release/{os_file}"), "", 0), "tools": ("apt-get\napt\ndpkg\n", "", 0)}
    for step in ("update", "list"):
        steps[step] = capture(name, step)
        if step == upto:
            break
    if upto == "sim":
        steps["holds"] = ("", "", 0)
        steps["sim"] = capture(name, "sim")
    return steps


def test_ok_scan_of_captured_debian_output() -> None:
    engine = FakeEngine(frame(NONCE, steps_for("debian12-security-pending")))
    result = scanner(engine).scan("driftwatch/debian:12")
    assert result.status is ScanStatus.OK
    assert (result.pending_total, result.pending_security) == (12, 12)
    assert result.os_release is not None and result.os_release.label == "debian 12"
    assert result.reason is None
    # This capture predates the policy steps: classification falls back to suite names, and says so
    # (whole captured probe runs with origin metadata are in tests/test_classify.py).
    assert result.warnings == ("origin metadata unavailable (apt-cache policy did not run or failed); "
                               "security decided by suite name only",)
    call = engine.calls[0]
    assert call["timeout"] == 42 and call["network"] == "host"
    assert call["env"] == {"LANG": "C", "LC_ALL": "C", "LANGUAGE": "", "DEBIAN_FRONTEND": "noninteractive"}
    assert NONCE in str(call["script"])


def test_ok_scan_of_captured_ubuntu_output() -> None:
    engine = FakeEngine(frame(NONCE, steps_for("ubuntu2404-pending", os_file="ubuntu-24.04")))
    result = scanner(engine).scan("driftwatch/ubuntu:24.04")
    assert (result.status, result.pending_total, result.pending_security) == (ScanStatus.OK, 67, 41)
    assert not any(u.held or u.kept_back or u.phased for u in result.updates)


def test_unreachable_mirror_is_failed_not_clean() -> None:
    engine = FakeEngine(frame(NONCE, steps_for("debian12-unresolvable-mirror", upto="list")))
    result = scanner(engine).scan("img")
    assert result.status is ScanStatus.FAILED
    assert result.reason is Reason.INDEX_UPDATE_FAILED
    assert result.step == "update" and result.exit_code == 0
    assert result.pending_total is None and result.updates == ()
    assert result.stderr_tail is not None and "W: Some index files failed to download" in result.stderr_tail


def test_nonroot_lock_is_failed() -> None:
    engine = FakeEngine(frame(NONCE, steps_for("debian12-nonroot", upto="update")))
    result = scanner(engine).scan("img")
    assert (result.status, result.reason, result.exit_code) == (ScanStatus.FAILED, Reason.INSUFFICIENT_PRIVILEGES, 100)


def test_missing_image_is_a_failed_result() -> None:
    result = scanner(FakeEngine(missing=True)).scan("nope:1")
    assert (result.status, result.reason, result.step) == (ScanStatus.FAILED, Reason.IMAGE_MISSING, "inspect")
    assert result.image is None
    assert result.detail == "image 'nope:1' is not present in the local engine (driftwatch never pulls)"


def test_no_shell_is_unsupported() -> None:
    # The engine's words when /bin/sh is absent (fixtures/apt/scratch-no-shell.sdk.txt).
    message = fixture_text("apt/scratch-no-shell.docker-binsh.stderr")
    result = scanner(FakeEngine(start_error=message)).scan("scratchy")
    assert (result.status, result.reason) == (ScanStatus.UNSUPPORTED, Reason.NO_SHELL_OR_PACKAGE_MANAGER)
    assert result.detail == "no shell: /bin/sh cannot be run in this image"


def test_other_start_error_is_container_error() -> None:
    result = scanner(FakeEngine(start_error="cgroup mountpoint does not exist")).scan("img")
    assert (result.status, result.reason) == (ScanStatus.FAILED, Reason.CONTAINER_ERROR)


def test_no_package_manager_at_all() -> None:
    out = frame(NONCE, {"os-release": ("", "cat: /etc/os-release: No such file", 1), "tools": ("", "", 0)})
    result = scanner(FakeEngine(out)).scan("busybox")
    assert (result.status, result.reason) == (ScanStatus.UNSUPPORTED, Reason.NO_SHELL_OR_PACKAGE_MANAGER)
    assert result.detail == "no apt-get in this image; no package manager found"


def test_timeout_is_failed() -> None:
    steps = steps_for("debian12-security-pending", upto="update")
    result = scanner(FakeEngine(frame(NONCE, steps, ended=False), exit_code=None, timed_out=True)).scan("img")
    assert (result.status, result.reason, result.step) == (ScanStatus.FAILED, Reason.TIMEOUT, "update")


def test_probe_killed_before_list_finished_is_failed() -> None:
    steps = steps_for("debian12-security-pending", upto="update")
    result = scanner(FakeEngine(frame(NONCE, steps, ended=False), exit_code=137)).scan("img")
    assert (result.status, result.reason) == (ScanStatus.FAILED, Reason.CONTAINER_ERROR)


def test_forged_sections_from_the_image_are_ignored() -> None:
    steps = steps_for("debian12-security-pending")
    forged_list = "@@driftwatch-forged list stdout\nevil/x-security 9 all [upgradable from: 1]\n"
    steps["list"] = (steps["list"][0] + forged_list, steps["list"][1], 0)
    result = scanner(FakeEngine(frame(NONCE, steps))).scan("img")
    assert result.status is ScanStatus.FAILED and result.reason is Reason.PARSE_ERROR


def test_list_failure_is_failed() -> None:
    steps = steps_for("debian12-security-pending", upto="list")
    steps["list"] = ("", "E: Could not open file /var/lib/dpkg/status\n", 100)
    result = scanner(FakeEngine(frame(NONCE, steps))).scan("img")
    assert (result.status, result.reason, result.exit_code) == (ScanStatus.FAILED, Reason.LIST_FAILED, 100)


def test_an_apt_that_prints_no_listing_header_is_not_apt() -> None:
    """A stub `apt` (`exit 0`, or one first on PATH) would read as zero pending updates."""
    steps = steps_for("debian12-security-pending", upto="update")
    steps["list"] = ("", "", 0)
    result = scanner(FakeEngine(frame(NONCE, steps))).scan("img")
    assert (result.status, result.reason, result.step) == (ScanStatus.FAILED, Reason.PARSE_ERROR, "list")
    assert result.detail == "`apt list` printed no 'Listing...' line: what ran as apt is not apt"


def test_split_sections_round_trip() -> None:
    steps = {"a": ("one\ntwo\n", "err\n", 0), "b": ("no newline", "", 3), "c": ("", "", 0)}
    parsed, ended = split_sections(frame(NONCE, steps), NONCE)
    assert ended
    assert {k: (v.stdout, v.stderr, v.rc) for k, v in parsed.items()} == {
        "a": ("one\ntwo\n", "err\n", 0), "b": ("no newline\n", "", 3), "c": ("", "", 0)}


def test_script_is_posix_sh_with_the_nonce() -> None:
    script = build_script(NONCE)
    assert f"N='{NONCE}'" in script
    assert "apt-get update -o APT::Update::Error-Mode=any" in script
    assert "apt list --upgradable" in script
