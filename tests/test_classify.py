"""Classification from apt's origin metadata (driftwatch.classify), on real captured outputs.

The captures in fixtures/apt/*-classify.* and *-fixture-phased* are whole probe runs (see
fixtures/README.md): the real archives for driftwatch/debian:12 and driftwatch/ubuntu:24.04, and the
deterministic loopback repositories of tests/engine/test_classification.py.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database, Migrations

from driftwatch import aptparse, classify, store
from driftwatch.classify import OriginPattern, OriginPatternError, PackageFile, SecurityRules
from driftwatch.models import ImageIdentity, OsRelease, PendingUpdate, RunOutput, ScanResult, ScanStatus
from driftwatch.scanner import Scanner, build_script, interpret
from tests.support.files import case, fixture_text
from tests.support.probe import frame

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
NONCE = "@@test-nonce"
IMAGE = ImageIdentity("example:1", "sha256:" + "ab" * 32)
DEBIAN_12 = OsRelease("debian", "12", "bookworm")
UBUNTU_2404 = OsRelease("ubuntu", "24.04", "noble")
STEPS = ("update", "list", "holds", "sim", "policy-files", "policy")
DEBIAN_SECURITY = "o=Debian,a=oldstable-security,n=bookworm-security,l=Debian-Security"
MIRROR = "o=driftwatch-fixture,l=Corp-Mirror"


def captured(name: str, step: str) -> tuple[str, str, int]:
    base = f"apt/{name}.{step}"
    return fixture_text(base + ".stdout"), fixture_text(base + ".stderr"), int(fixture_text(base + ".rc"))


def probe_output(name: str, os_file: str, *, drop: tuple[str, ...] = (),
                 replace: dict[str, tuple[str, str, int]] | None = None) -> RunOutput:
    """A whole captured probe run, framed as the probe script frames it."""
    steps = {"os-release": (fixture_text(f"os-release/{os_file}"), "", 0), "tools": ("apt-get\napt\ndpkg\n", "", 0)}
    steps.update({s: captured(name, s) for s in STEPS if s not in drop})
    steps.update(replace or {})
    return RunOutput(0, frame(NONCE, steps), "")


def scan(name: str, os_file: str, *, patterns: tuple[str, ...] = (), finished: datetime = NOW,
         **kw: object) -> ScanResult:
    return interpret("example:1", IMAGE, probe_output(name, os_file, **kw), NONCE, NOW, finished,  # type: ignore[arg-type]
                     security_origins=patterns)


def by_name(result: ScanResult) -> dict[str, PendingUpdate]:
    return {u.package: u for u in result.updates}


# -- parsing apt-cache policy ---------------------------------------------------------------------

def test_package_files_of_debian12_carry_release_fields() -> None:
    files = classify.parse_package_files(fixture_text("apt/debian12-classify.policy-files.stdout"))
    assert len(files) == 4
    status = files["/var/lib/dpkg/status"]
    assert status.is_status and status.priority == 100 and status.archive == "now"
    sec = files["http://deb.debian.org/debian-security bookworm-security/main amd64 Packages"]
    assert sec == PackageFile("http://deb.debian.org/debian-security bookworm-security/main amd64 Packages", 500,
                              version="12", origin="Debian", archive="oldstable-security",
                              codename="bookworm-security", label="Debian-Security", component="main",
                              architecture="amd64", site="deb.debian.org")
    assert sec.describe() == DEBIAN_SECURITY


def test_package_files_of_ubuntu_security_pocket_keep_the_plain_codename() -> None:
    files = classify.parse_package_files(fixture_text("apt/ubuntu2404-classify.policy-files.stdout"))
    assert len(files) == 16  # the status file + noble, -updates, -security (4 components each), -backports (3)
    sec = files["http://security.ubuntu.com/ubuntu noble-security/main amd64 Packages"]
    # Ubuntu's Release files say Codename: noble for every pocket; only the Suite names the pocket.
    assert (sec.origin, sec.archive, sec.codename, sec.label, sec.site) == (
        "Ubuntu", "noble-security", "noble", "Ubuntu", "security.ubuntu.com")
    backports = files["http://archive.ubuntu.com/ubuntu noble-backports/main amd64 Packages"]
    assert backports.priority == 100


def test_package_policies_of_ubuntu_with_a_phased_version() -> None:
    policies = classify.parse_package_policies(fixture_text("apt/ubuntu2404-classify.policy.stdout"))
    assert len(policies) == 67
    ssl = policies["libssl3t64"]
    assert (ssl.arch, ssl.installed, ssl.candidate) == (None, "3.0.13-0ubuntu3", "3.0.13-0ubuntu3.18")
    assert [(r.version, r.priority, r.installed, r.phased) for r in ssl.versions] == [
        ("3.0.13-0ubuntu3.18", 500, False, None),
        ("3.0.13-0ubuntu3.17", 500, False, 10),  # "(phased 10%)": an older -updates build, not the candidate
        ("3.0.13-0ubuntu3", 500, True, None),
    ]
    assert ssl.versions[2].files == ("http://archive.ubuntu.com/ubuntu noble/main amd64 Packages",
                                     "/var/lib/dpkg/status")


def test_foreign_architecture_header_and_none_candidate() -> None:
    text = ("libc6:i386:\n  Installed: (none)\n  Candidate: 2.36-9+deb12u4\n  Version table:\n"
            "     2.36-9+deb12u4 500\n        500 http://x bookworm/main i386 Packages\n"
            "zzz:\n  Installed: 1\n  Candidate: (none)\n  Version table:\n"
            " *** 1 100\n        100 /var/lib/dpkg/status\n")
    policies = classify.parse_package_policies(text)
    assert (policies["libc6:i386"].name, policies["libc6:i386"].arch, policies["libc6:i386"].installed) == (
        "libc6", "i386", None)
    assert policies["zzz"].candidate is None and policies["zzz"].versions[0].priority == 100


@pytest.mark.parametrize("text", [
    "Paketdateien:\n 100 /var/lib/dpkg/status\n",  # translated: never parsed as empty
    "Package files:\n 500 http://x y/main amd64 Packages\n     Freigabe a=x\n",
    "Package files:\n 500 http://x y/main amd64 Packages\n     release q=1\n",
])
def test_package_files_outside_the_c_locale_format_are_errors(text: str) -> None:
    with pytest.raises(classify.PolicyParseError):
        classify.parse_package_files(text)


def test_package_policy_outside_the_c_locale_format_is_an_error() -> None:
    with pytest.raises(classify.PolicyParseError):
        classify.parse_package_policies("apt:\n  Installiert: 2.6.1\n")


# -- origin patterns: unattended-upgrades' Origins-Pattern semantics ------------------------------

SEC = PackageFile("http://deb.debian.org/debian-security bookworm-security/main amd64 Packages", 500, "12",
                  "Debian", "oldstable-security", "bookworm-security", "Debian-Security", "main", "amd64",
                  "deb.debian.org")
VARS = {"distro_id": "Debian", "distro_codename": "bookworm"}


@pytest.mark.parametrize(("pattern", "matches"), [
    ("origin=Debian,codename=${distro_codename}-security,label=Debian-Security", True),  # Debian's default
    ("o=${distro_id},n=${distro_codename}-security", True),
    ("o=Debian,a=stable-security", False),  # the suite moved to oldstable-security
    ("a=*-security", True),
    ("suite=oldstable-*,component=main", True),
    ("archive=oldstable-security , l = Debian-Security", True),  # whitespace around keys and values
    ("site=deb.debian.org", True),
    ("site=*.debian.org,c=contrib", False),  # every term must match
    ("l=debian-security", False),  # case-sensitive, as fnmatch on Linux
    ("o=Deb?an", True),
    ("o=[CD]ebian", True),
    ("", False),  # an empty pattern matches nothing
    ("   ", False),
])
def test_origin_pattern_matching(pattern: str, matches: bool) -> None:
    assert OriginPattern.parse(pattern).matches(SEC, VARS) is matches


def test_escaped_comma_and_missing_fields() -> None:
    odd = PackageFile("http://x ./ Packages", 500, origin="Corp, Inc.", label="")
    assert OriginPattern.parse("o=Corp\\, Inc.").matches(odd, {})
    assert OriginPattern.parse("o=Corp\\, Inc.,l=*").matches(odd, {})  # a missing field matches only *
    assert not OriginPattern.parse("o=Corp\\, Inc.,l=?*").matches(odd, {})


@pytest.mark.parametrize("pattern", ["x=1", "o", "o=a=b", "o=Debian,", "o=${distro_release}", "o=$"])
def test_invalid_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(OriginPatternError):
        OriginPattern.parse(pattern)


def test_scanner_rejects_bad_patterns_before_scanning() -> None:
    with pytest.raises(OriginPatternError, match="unknown key 'label2'"):
        Scanner(engine=None, security_origins=("label2=Corp",))  # type: ignore[arg-type]


def test_distro_substitution_comes_from_os_release() -> None:
    rules = SecurityRules.build(("o=${distro_id},n=${distro_codename}-sec",), DEBIAN_12)
    mirror = PackageFile("http://m bookworm-sec/main amd64 Packages", 500, origin="Debian", codename="bookworm-sec")
    assert rules.match(mirror) is not None
    assert SecurityRules.build(("o=${distro_id},n=${distro_codename}-sec",), UBUNTU_2404).match(mirror) is None


# -- the masked-security rule, Debian version ordering ----------------------------------------------

def _policy(installed: str, candidate: str, rows: list[tuple[str, str]]) -> tuple[str, str]:
    """(package files text, package policy text) for one package 'p' with versions from archives."""
    archives = sorted({a for _, a in rows})
    files = "Package files:\n 100 /var/lib/dpkg/status\n     release a=now\n" + "".join(
        f" 500 http://m {a}/main amd64 Packages\n     release o=Debian,a={a},n={a},l="
        f"{'Debian-Security' if a.endswith('-security') else 'Debian'},c=main,b=amd64\n" for a in archives)
    table = "".join(f" {'***' if v == installed else '   '} {v} 500\n        500 http://m {a}/main amd64 Packages\n"
                    for v, a in rows)
    header = f"p:\n  Installed: {installed}\n  Candidate: {candidate}\n  Version table:\n"
    return files + "Pinned packages:\n", header + table


def _classify(installed: str, candidate: str, suite: str, rows: list[tuple[str, str]]) -> PendingUpdate:
    files, policy = _policy(installed, candidate, rows)
    update = PendingUpdate("p", "amd64", installed, candidate, (suite,), aptparse.is_security_suite(suite))
    out, warnings = classify.classify_updates([update], files_text=files, policy_text=policy,
                                              rules=SecurityRules.build((), DEBIAN_12))
    assert warnings == ()
    return out[0]


def test_masked_by_debian_version_order_not_by_string_order() -> None:
    # deb12u10 > deb12u4 for dpkg; as strings (and as PEP 440 local labels) they sort the other way.
    u = _classify("2.36-9+deb12u3", "2.36-9+deb12u10", "bookworm-updates",
                  [("2.36-9+deb12u10", "bookworm-updates"), ("2.36-9+deb12u4", "bookworm-security"),
                   ("2.36-9+deb12u3", "bookworm")])
    assert u.security and u.masked_security
    assert u.why == ("security: 2.36-9+deb12u4 from o=Debian,a=bookworm-security,n=bookworm-security,"
                     "l=Debian-Security (masked by 2.36-9+deb12u10 from bookworm-updates)")


def test_security_version_not_newer_than_installed_does_not_count() -> None:
    # Like libc6 in the debian12 capture: the security archive holds an older build than the installed one.
    u = _classify("2.36-9+deb12u14", "2.36-9+deb12u15", "bookworm-updates",
                  [("2.36-9+deb12u15", "bookworm-updates"), ("2.36-9+deb12u14", "bookworm"),
                   ("2.36-9+deb12u7", "bookworm-security")])
    assert not u.security and not u.masked_security


def test_epochs_and_tildes_order_the_window() -> None:
    # 1:1.0 is newer than 1.5 (epoch); 2.0~rc1 is older than 2.0 (tilde).
    u = _classify("1:1.0-1", "1:1.1-1", "bookworm-updates",
                  [("1:1.1-1", "bookworm-updates"), ("1.5-1", "bookworm-security"), ("1:1.0-1", "bookworm")])
    assert not u.security
    u = _classify("2.0~rc1", "2.0", "bookworm-updates",
                  [("2.0", "bookworm-updates"), ("2.0~rc2", "bookworm-security"), ("2.0~rc1", "bookworm")])
    assert u.security and u.masked_security


def test_security_version_newer_than_candidate_does_not_count() -> None:
    # A pinned-down candidate: the security version above it is not what this update installs.
    u = _classify("1.0", "1.1", "bookworm-updates",
                  [("1.2", "bookworm-security"), ("1.1", "bookworm-updates"), ("1.0", "bookworm")])
    assert not u.security


# -- whole captured scans -------------------------------------------------------------------------

def test_debian12_real_archive_every_update_security_by_origin() -> None:
    result = scan("debian12-classify", "debian-12")
    assert result.status is ScanStatus.OK and result.warnings == ()
    assert (result.pending_total, result.pending_security) == (12, 12)
    assert all(u.security_origin == DEBIAN_SECURITY and not u.masked_security for u in result.updates)
    apt = by_name(result)["apt"]
    assert apt.why == f"security: 2.6.2 from {DEBIAN_SECURITY}"
    assert result.release_eol is None


def test_ubuntu2404_real_archive_finds_masked_fixes() -> None:
    result = scan("ubuntu2404-classify", "ubuntu-24.04")
    assert result.status is ScanStatus.OK and result.warnings == ()
    suite_rule = sum(any(aptparse.is_security_suite(s) for s in u.suites) for u in result.updates)
    assert (result.pending_total, result.pending_security, suite_rule) == (67, 43, 41)
    masked = {u.package: u for u in result.updates if u.masked_security}
    assert set(masked) == {"libsystemd0", "libudev1"}
    assert masked["libsystemd0"].why == ("security: 255.4-1ubuntu8.18 from o=Ubuntu,a=noble-security,n=noble,"
                                         "l=Ubuntu (masked by 255.4-1ubuntu8.19 from noble-updates)")
    assert masked["libsystemd0"].suites == ("noble-updates",)
    updates = by_name(result)
    # apt-get upgrade (not dist-upgrade) keeps back two security updates that need the new libdb5.3t64.
    assert {n for n, u in updates.items() if u.kept_back} == {"libpam-modules", "libpam-modules-bin"}
    assert updates["libpam-modules"].security and "kept back" in updates["libpam-modules"].why
    assert not any(u.esm or u.phased or u.held for u in result.updates)


def test_deterministic_repo_capture_masked_oldstable_held_kept() -> None:
    updates = by_name(scan("debian12-fixture-classify", "debian-12"))
    assert {n for n, u in updates.items() if u.security} == {"demo-masked", "demo-sec"}
    assert updates["demo-masked"].masked_security and not updates["demo-sec"].masked_security
    assert updates["demo-held"].held and updates["demo-held"].kept_back
    assert updates["demo-kept"].kept_back and not updates["demo-kept"].held
    assert updates["demo-mirror"].why == ("not security: 1.1 from bookworm-sec; no version in (1.0, 1.1] "
                                          "comes from a security origin")


def test_mirror_pattern_on_captured_repo() -> None:
    updates = by_name(scan("debian12-fixture-classify", "debian-12", patterns=(MIRROR,)))
    mirror = updates["demo-mirror"]
    assert mirror.security
    assert mirror.security_origin == "o=driftwatch-fixture,a=bookworm-sec,n=bookworm-sec,l=Corp-Mirror"
    assert mirror.why.endswith(f"[pattern {MIRROR}]")
    assert {n for n, u in updates.items() if u.security} == {"demo-masked", "demo-sec", "demo-mirror"}


def test_phased_capture_without_and_with_machine_id() -> None:
    plain = by_name(scan("ubuntu2404-fixture-phased", "ubuntu-24.04"))
    assert not plain["demo-phased"].phased
    assert plain["demo-phased"].why.endswith("candidate is phased at 0%, but apt here does not defer it "
                                             "(a rebuild installs it)")
    with_id = by_name(scan("ubuntu2404-fixture-phased-machine-id", "ubuntu-24.04"))
    assert with_id["demo-phased"].phased and not with_id["demo-phased"].security
    assert with_id["demo-phased"].why.endswith("phased: apt defers it (Phased-Update-Percentage 0%)")
    assert not with_id["demo-phsec"].phased and with_id["demo-phsec"].security  # apt never phases security


def test_esm_and_ubuntu_masked_on_capture() -> None:
    updates = by_name(scan("ubuntu2404-fixture-phased", "ubuntu-24.04"))
    esm = updates["demo-esm"]
    assert esm.security and esm.esm and esm.security_origin == (
        "o=UbuntuESM,a=noble-infra-security,n=noble-infra-security,l=UbuntuESM")
    assert updates["demo-usec"].masked_security and not updates["demo-usec"].esm


def test_esm_only_masked_fix_is_esm() -> None:
    files = ("Package files:\n 500 http://esm.ubuntu.com/infra/ubuntu noble-infra-security/main amd64 Packages\n"
             "     release v=24.04,o=UbuntuESM,a=noble-infra-security,n=noble,l=UbuntuESM,c=main,b=amd64\n"
             " 500 http://archive.ubuntu.com/ubuntu noble-updates/main amd64 Packages\n"
             "     release v=24.04,o=Ubuntu,a=noble-updates,n=noble,l=Ubuntu,c=main,b=amd64\n")
    policy = ("p:\n  Installed: 1.0\n  Candidate: 1.2\n  Version table:\n     1.2 500\n"
              "        500 http://archive.ubuntu.com/ubuntu noble-updates/main amd64 Packages\n     1.1+esm1 510\n"
              "        510 http://esm.ubuntu.com/infra/ubuntu noble-infra-security/main amd64 Packages\n")
    update = PendingUpdate("p", "amd64", "1.0", "1.2", ("noble-updates",), False)
    out, _ = classify.classify_updates([update], files_text=files, policy_text=policy,
                                       rules=SecurityRules.build((), UBUNTU_2404))
    assert out[0].security and out[0].esm and out[0].masked_security


# -- never fewer security updates when classification fails -----------------------------------------

def test_missing_policy_steps_fall_back_to_suite_names_with_a_warning() -> None:
    result = scan("ubuntu2404-classify", "ubuntu-24.04", drop=("policy-files", "policy"))
    assert result.status is ScanStatus.OK
    assert result.pending_security == 41  # the suite rule: never fewer than before issue 4
    assert result.warnings == (
        "origin metadata unavailable (apt-cache policy did not run or failed); security decided by suite name only",)
    assert by_name(result)["apt"].why == ("security by suite name noble-updates,noble-security "
                                          "(apt-cache policy unreadable)")


def test_unparseable_policy_falls_back_never_fewer() -> None:
    garbage = ("Paketdateien:\n 100 /var/lib/dpkg/status\n", "", 0)
    result = scan("debian12-classify", "debian-12", replace={"policy-files": garbage})
    assert result.status is ScanStatus.OK and result.pending_security == 12
    assert len(result.warnings) == 1 and "no 'Package files:' section" in result.warnings[0]


def test_failed_policy_step_falls_back() -> None:
    result = scan("debian12-classify", "debian-12", replace={"policy": ("", "E: broken\n", 100)})
    assert result.pending_security == 12 and "suite name only" in result.warnings[0]


def test_package_missing_from_policy_output_falls_back_for_that_package() -> None:
    policy = fixture_text("apt/debian12-classify.policy.stdout")
    cut = policy.split("zlib1g:\n")[0]
    result = scan("debian12-classify", "debian-12", replace={"policy": (cut, "", 0)})
    assert result.pending_security == 12
    assert result.warnings == ("origin metadata incomplete for 1 update(s), classified by suite name: "
                               + "zlib1g (no apt-cache policy for zlib1g)",)
    assert by_name(result)["zlib1g"].why == "security by suite name oldstable-security (origin metadata incomplete)"


def test_suite_rule_is_a_floor_when_origins_disagree() -> None:
    files = "Package files:\n 500 http://m x/main amd64 Packages\n     release o=Corp,a=x,n=x,l=Corp,c=main,b=amd64\n"
    policy = ("p:\n  Installed: 1\n  Candidate: 2\n  Version table:\n"
              "     2 500\n        500 http://m x/main amd64 Packages\n")
    update = PendingUpdate("p", "amd64", "1", "2", ("corp-security",), True)
    out, warnings = classify.classify_updates([update], files_text=files, policy_text=policy,
                                              rules=SecurityRules.build((), DEBIAN_12))
    assert out[0].security and warnings == ()
    assert out[0].why.startswith("security by suite name corp-security")


def test_c01_multi_suite_list_without_policy_keeps_its_security_count() -> None:
    c = case("C01")
    parsed = aptparse.parse_upgradable(c["input"])
    out, warnings = classify.classify_updates(parsed.updates, files_text=None, policy_text=None,
                                              rules=SecurityRules.build((), UBUNTU_2404))
    assert sum(u.security for u in out) == c["expected"]["security_count"] and len(warnings) == 1


def test_c05_phased_updates_are_shown_apart_and_explained() -> None:
    c = case("C05")
    sim = aptparse.parse_simulation(c["input"])
    listed = tuple(PendingUpdate(n, "amd64", "1", "2", ("jammy-updates",), False)
                   for n in ["libnss-systemd", "libpam-systemd", "libsystemd0", "systemd", "tzdata"])
    out, _ = classify.classify_updates(aptparse.annotate(listed, frozenset(), sim), files_text=None,
                                       policy_text=None, rules=SecurityRules())
    assert [u.package for u in out if u.phased] == c["expected"]["deferred_by_phasing"]
    assert all("phased: apt defers it" in u.why for u in out if u.phased)
    assert sum(u.security for u in out) == c["expected"]["security_count"]


def test_no_updates_need_no_policy_and_warn_nothing() -> None:
    assert classify.classify_updates([], files_text=None, policy_text=None, rules=SecurityRules()) == ((), ())


# -- end of life ----------------------------------------------------------------------------------

BUSTER = 'ID=debian\nVERSION_ID="10"\nVERSION_CODENAME=buster\n'


def _bare_scan(os_release: str, finished: datetime) -> ScanResult:
    steps = {"os-release": (os_release, "", 0), "tools": ("apt-get\napt\ndpkg\n", "", 0),
             "update": ("Reading package lists...\n", "", 0), "list": ("Listing...\n", "", 0),
             "holds": ("", "", 0), "sim": ("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n", "", 0)}
    return interpret("old:1", IMAGE, RunOutput(0, frame(NONCE, steps), ""), NONCE, finished, finished)


def test_eol_release_with_zero_updates_is_ok_but_flagged() -> None:
    result = _bare_scan(BUSTER, NOW)  # frozen clock: 2026-12-03, buster's LTS ended 2024-06-30
    assert (result.status, result.pending_total, result.warnings) == (ScanStatus.OK, 0, ())
    assert result.release_eol == date(2024, 6, 30)


def test_eol_follows_the_clock() -> None:
    bookworm = 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
    assert _bare_scan(bookworm, NOW).release_eol is None
    assert _bare_scan(bookworm, datetime(2028, 6, 30, 23, 0, tzinfo=UTC)).release_eol is None
    assert _bare_scan(bookworm, datetime(2028, 7, 1, 0, 1, tzinfo=UTC)).release_eol == date(2028, 6, 30)
    assert _bare_scan("ID=alpine\nVERSION_ID=3.20.0\n", NOW).release_eol is None


def test_eol_release_whose_archive_404s_is_failed_with_eol() -> None:
    steps = {"os-release": (BUSTER, "", 0), "tools": ("apt-get\n", "", 0),
             "update": captured("debian10-eol-404", "update")}
    result = interpret("old:1", IMAGE, RunOutput(0, frame(NONCE, steps), ""), NONCE, NOW, NOW)
    assert result.status is ScanStatus.FAILED and result.release_eol == date(2024, 6, 30)


# -- probe script and storage ---------------------------------------------------------------------

def test_probe_script_reads_policy_only_when_something_is_upgradable() -> None:
    script = build_script(NONCE)
    assert 'if [ -n "$names" ]; then' in script
    assert "step policy-files apt-cache policy $C" in script
    assert "set -f\n  step policy apt-cache policy $names $C\n  set +f" in script


def test_store_round_trip_of_classification(tmp_path: Path) -> None:
    result = scan("debian12-fixture-classify", "debian-12", finished=datetime(2028, 7, 2, tzinfo=UTC))
    assert result.release_eol == date(2028, 6, 30)
    with store.opened(tmp_path / "c.db") as db:
        scan_id = db.save_scan(result)
        got_id, got = db.latest_scan("example:1")
    assert got_id == scan_id and got.release_eol == date(2028, 6, 30)
    assert sorted(got.updates, key=lambda u: u.package) == sorted(result.updates, key=lambda u: u.package)


def test_m002_upgrades_a_database_from_before_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Migrations("driftwatch")
    old()(store.m001_initial)
    with sqlite3.connect(path) as conn:
        db = Database(conn)
        old.apply(db)
        db["scans"].insert({"id": 1, "reference": "a:1", "status": "ok", "started_at": NOW.isoformat(),
                            "finished_at": NOW.isoformat(), "warnings": "[]"})
        db["updates"].insert({"scan_id": 1, "package": "p", "arch": "all", "installed": "1", "candidate": "2",
                              "suites": "x-security", "security": 1, "held": 0, "kept_back": 0, "phased": 0})
    with store.opened(path) as db2:
        _, got = db2.latest_scan("a:1")
    assert got.updates == (PendingUpdate("p", "all", "1", "2", ("x-security",), True),)
    assert got.release_eol is None
