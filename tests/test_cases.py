"""Every real-world case in fixtures/cases/cases.json, each with its right value."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from driftwatch import aptparse
from driftwatch.models import ImageIdentity, PendingUpdate, Reason, RunOutput, ScanStatus
from driftwatch.scanner import interpret
from tests.support.files import case
from tests.support.probe import frame

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
IMAGE = ImageIdentity("example:1", "sha256:" + "ab" * 32)
DEBIAN_12 = 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
UBUNTU_2204 = 'ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'


def as_dicts(updates: tuple[PendingUpdate, ...], keys: list[str]) -> list[dict[str, Any]]:
    out = []
    for u in updates:
        row = {"name": u.package, "arch": u.arch, "installed": u.installed, "candidate": u.candidate,
               "suites": list(u.suites), "security": u.security, "held": u.held, "kept_back": u.kept_back}
        out.append({k: row[k] for k in keys})
    return out


def strip_annotations(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


def scan_of(os_release: str, steps: dict[str, tuple[str, str, int]], *, ended: bool = True):  # type: ignore[no-untyped-def]
    nonce = "@@test-nonce"
    output = RunOutput(0, frame(nonce, {"os-release": (os_release, "", 0), "tools": ("apt-get\napt\ndpkg\n", "", 0),
                                        **steps}, ended=ended), "")
    return interpret("example:1", IMAGE, output, nonce, NOW, NOW)


def test_c01_multi_suite_origin_list() -> None:
    c = case("C01")
    parsed = aptparse.parse_upgradable(c["input"])
    exp = c["expected"]
    assert len(parsed.updates) == exp["upgradable_count"]
    assert sum(u.security for u in parsed.updates) == exp["security_count"]
    assert as_dicts(parsed.updates, ["name", "arch", "installed", "candidate", "suites", "security"]) == exp["packages"]


def test_c02_localized_output_is_parse_error_never_clean() -> None:
    c = case("C02")
    parsed = aptparse.parse_upgradable(c["input"])
    assert parsed.updates == ()
    # Both the translated header and the translated package line are unknown text: reported, not dropped.
    assert parsed.unparsed == (
        "Auflistung...",
        "initramfs-tools-bin/focal-updates 0.136ubuntu6.7 amd64 [aktualisierbar von: 0.136ubuntu6.6]",
    )
    # The whole scan: the status vocabulary is ok/failed/unsupported, so the case's
    # "parse_error" status is a failed scan whose reason is parse_error; never ok with 0 updates.
    result = scan_of(DEBIAN_12, {"update": ("", "", 0), "list": (c["input"], "", 0)})
    assert result.status is ScanStatus.FAILED
    assert result.reason is Reason.PARSE_ERROR
    assert result.pending_total is None and result.updates == ()


def test_c03_noise_lines_are_not_packages() -> None:
    c = case("C03")
    parsed = aptparse.parse_upgradable(c["input"])
    exp = c["expected"]
    assert len(parsed.updates) == exp["upgradable_count"] == 1
    assert sum(u.security for u in parsed.updates) == exp["security_count"]
    assert as_dicts(parsed.updates, ["name", "arch", "installed", "candidate", "suites", "security"]) == exp["packages"]
    assert [line[:20] for line in parsed.ignored] == [line[:20] for line in exp["ignored_lines"]]
    for listing in ("Listing... Done\n", "Listing...\n", ""):
        assert aptparse.parse_upgradable(listing).updates == ()


def test_c05_phased_updates_are_flagged_not_dropped() -> None:
    c = case("C05")
    sim = aptparse.parse_simulation(c["input"])
    exp = c["expected"]
    assert [i.package for i in sim.installs] == exp["will_install"]
    assert list(sim.deferred_phasing) == exp["deferred_by_phasing"]
    listed = tuple(PendingUpdate(n, "amd64", "1", "2", ("jammy-updates",), False)
                   for n in ["libnss-systemd", "libpam-systemd", "libsystemd0", "systemd", "tzdata"])
    annotated = aptparse.annotate(listed, frozenset(), sim)
    assert len(annotated) == exp["upgradable_count_apt_list_view"]
    assert [u.package for u in annotated if u.phased] == exp["deferred_by_phasing"]
    assert sum(u.security for u in annotated) == exp["security_count"]
    apt3 = aptparse.parse_simulation("Not upgrading yet due to phasing:\n  systemd udev\n")
    assert apt3.deferred_phasing == ("systemd", "udev")


def test_c06_update_warning_is_failed() -> None:
    c = case("C06")
    text = strip_annotations(c["input"])
    update_out, _, listing = text.partition("Listing...")
    outcome = aptparse.assess_update(update_out, "", 0)
    assert outcome.reason is Reason.INDEX_UPDATE_FAILED == Reason(c["expected"]["reason"])
    result = scan_of(UBUNTU_2204, {"update": (update_out, "", 0), "list": ("Listing...\n", "", 0)})
    assert result.status is ScanStatus.FAILED
    assert result.reason is Reason.INDEX_UPDATE_FAILED
    assert result.pending_total is None  # expected upgradable_count: null, never 0
    assert result.detail == ("W: Failed to fetch http://archive.mirror.example/ubuntu/dists/jammy/InRelease  "
                             "Temporary failure resolving 'archive.mirror.example'")


def test_c07_eol_release_404_is_failed_with_eol_reason() -> None:
    c = case("C07")
    text = strip_annotations(c["input"])
    os_release = 'ID=debian\nVERSION_ID="10"\nVERSION_CODENAME=buster\n'
    result = scan_of(os_release, {"update": (text, "", 100)}, ended=True)
    exp = c["expected"]
    assert result.status is ScanStatus.FAILED
    assert result.reason is Reason(exp["reason"]) is Reason.REPOSITORY_UNAVAILABLE_EOL
    assert result.os_release is not None
    assert (result.os_release.id, result.os_release.version_id, result.os_release.version_codename) == (
        exp["os"]["id"], exp["os"]["version_id"], exp["os"]["codename"])
    assert result.updates == () and result.pending_total is None
    # The same 404 on a supported release is a plain unavailable repository.
    assert scan_of(DEBIAN_12, {"update": (text, "", 100)}).reason is Reason.REPOSITORY_UNAVAILABLE


def test_c09_inst_lines_with_odd_origin_labels() -> None:
    c = case("C09")
    sim = aptparse.parse_simulation(c["input"])
    exp = c["expected"]
    assert len(sim.installs) == exp["upgrade_count"]
    assert sum(i.security for i in sim.installs) == exp["security_count"]
    got = [{"name": i.package, "arch": i.arch, "installed": i.installed, "candidate": i.candidate,
            "origins": [{"label": o.label, "version": o.version, "archive": o.archive} for o in i.origins],
            "security": i.security} for i in sim.installs]
    assert got == exp["packages"]


def test_c11_pro_hook_line_is_not_a_package() -> None:
    c = case("C11")
    sim = aptparse.parse_simulation(c["input"])
    exp = c["expected"]
    assert [i.package for i in sim.installs] == ["cpio"]
    assert sum(i.security for i in sim.installs) == exp["security_count"] == 1
    cpio = sim.installs[0]
    assert (cpio.installed, cpio.candidate, cpio.arch) == ("2.13+dfsg-2", "2.13+dfsg-2ubuntu0.3", "amd64")
    assert [o.archive for o in cpio.origins] == exp["packages"][0]["archives"]
    assert all(i.package != exp["must_not_contain_package"] for i in sim.installs)


def test_c13_held_and_kept_back_are_flagged() -> None:
    c = case("C13")
    sections: dict[str, str] = {}
    current = ""
    for line in c["input"].splitlines(keepends=True):
        if line.startswith("# "):
            current = line[2:].strip()
            sections[current] = ""
        else:
            sections[current] += line
    parsed = aptparse.parse_upgradable(sections["apt list --upgradable"])
    holds = aptparse.parse_holds(sections["apt-mark showhold"])
    sim = aptparse.parse_simulation(sections["apt-get -s upgrade"])
    annotated = aptparse.annotate(parsed.updates, holds, sim)
    exp = c["expected"]
    assert len(annotated) == exp["upgradable_count"]
    assert sum(u.security for u in annotated) == exp["security_count"]
    keys = ["name", "candidate", "installed", "suites", "security", "held", "kept_back"]
    assert as_dicts(annotated, keys) == exp["packages"]
    # Inventory comes from apt list (3), not from Inst lines (1).
    assert len(sim.installs) == 1


def test_c18_no_apt_in_image_is_unsupported() -> None:
    nonce = "@@test-nonce"
    output = RunOutput(0, frame(nonce, {"os-release": ("ID=alpine\nVERSION_ID=3.20.0\n", "", 0),
                                        "tools": ("apk\n", "", 0)}), "")
    result = interpret("alpine:3", IMAGE, output, nonce, NOW, NOW)
    assert result.status is ScanStatus.UNSUPPORTED
    assert result.reason is Reason(case("C18")["expected"]["reason"])
    assert result.detail == "no apt-get in this image; found apk"
    assert result.pending_total is None


def test_c20_nonroot_lock_failure_is_failed_not_stale_list() -> None:
    c = case("C20")
    text = c["input"].split("# case B")[1]
    update_part = text.split("# then apt list")[0]
    lines = [line for line in update_part.splitlines() if not line.startswith(("#", ":")) and line.strip()]
    err = "\n".join(line for line in lines if line.startswith("E:")) + "\n"
    result = scan_of(DEBIAN_12, {"update": ("Reading package lists...\n", err, 100)})
    assert result.status is ScanStatus.FAILED
    assert result.reason is Reason(c["expected"]["reason_case_B"]) is Reason.INSUFFICIENT_PRIVILEGES
    assert result.updates == ()
