"""Parser tests on real captured outputs (fixtures/apt, fixtures/os-release)."""

from __future__ import annotations

from driftwatch import aptparse
from driftwatch.models import PendingUpdate, Reason
from tests.support.files import fixture_text


def rc(name: str) -> int:
    return int(fixture_text(name).strip())


def test_debian12_list_parses_every_line_as_security() -> None:
    parsed = aptparse.parse_upgradable(fixture_text("apt/debian12-security-pending.list.stdout"))
    assert len(parsed.updates) == 12
    assert parsed.unparsed == () and parsed.errors == ()
    assert parsed.ignored == ("Listing...",)
    assert all(u.security and u.suites == ("oldstable-security",) for u in parsed.updates)
    assert parsed.updates[0] == PendingUpdate("apt", "amd64", "2.6.1", "2.6.2", ("oldstable-security",), True)
    zlib = next(u for u in parsed.updates if u.package == "zlib1g")
    assert (zlib.installed, zlib.candidate) == ("1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u1")


def test_ubuntu2404_list_counts_multi_suite_security() -> None:
    parsed = aptparse.parse_upgradable(fixture_text("apt/ubuntu2404-pending.list.stdout"))
    assert len(parsed.updates) == 67
    assert sum(u.security for u in parsed.updates) == 41
    both = [u for u in parsed.updates if u.suites == ("noble-updates", "noble-security")]
    only_sec = [u for u in parsed.updates if u.suites == ("noble-security",)]
    only_upd = [u for u in parsed.updates if u.suites == ("noble-updates",)]
    assert (len(both), len(only_sec), len(only_upd)) == (33, 8, 26)
    base_files = next(u for u in parsed.updates if u.package == "base-files")
    assert base_files == PendingUpdate("base-files", "amd64", "13ubuntu10", "13ubuntu10.5", ("noble-updates",), False)


def test_list_stderr_warning_is_noise_not_a_package() -> None:
    merged = fixture_text("apt/debian12-list-no-upgrades.list.stderr") + fixture_text(
        "apt/debian12-list-no-upgrades.list.stdout"
    )
    parsed = aptparse.parse_upgradable(merged)
    assert parsed.updates == () and parsed.unparsed == ()
    assert len(parsed.ignored) == 2


def test_security_pockets() -> None:
    for suite in ("bookworm-security", "oldstable-security", "noble-security", "noble-infra-security",
                  "noble-apps-security"):
        assert aptparse.is_security_suite(suite)
    for suite in ("bookworm-updates", "noble", "stable", "security", "jammy-securityfixes"):
        assert not aptparse.is_security_suite(suite)


def test_update_success_is_ok() -> None:
    out = aptparse.assess_update(fixture_text("apt/debian12-security-pending.update.stdout"),
                                 fixture_text("apt/debian12-security-pending.update.stderr"),
                                 rc("apt/debian12-security-pending.update.rc"))
    assert out.ok and out.reason is None


def test_update_unresolvable_mirror_exits_zero_but_failed() -> None:
    assert rc("apt/debian12-unresolvable-mirror.update.rc") == 0  # the evidence: apt says success
    out = aptparse.assess_update(fixture_text("apt/debian12-unresolvable-mirror.update.stdout"),
                                 fixture_text("apt/debian12-unresolvable-mirror.update.stderr"), 0)
    assert out.reason is Reason.INDEX_UPDATE_FAILED
    assert out.detail is not None and "Could not resolve 'mirror.driftwatch.invalid'" in out.detail


def test_update_closed_port_is_failed() -> None:
    out = aptparse.assess_update(fixture_text("apt/debian12-closed-port.update.stdout"),
                                 fixture_text("apt/debian12-closed-port.update.stderr"), 0)
    assert out.reason is Reason.INDEX_UPDATE_FAILED
    assert "Connection refused" in (out.detail or "")


def test_update_eol_404() -> None:
    args = (fixture_text("apt/debian10-eol-404.update.stdout"), fixture_text("apt/debian10-eol-404.update.stderr"),
            rc("apt/debian10-eol-404.update.rc"))
    assert args[2] == 100
    assert aptparse.assess_update(*args).reason is Reason.REPOSITORY_UNAVAILABLE
    eol = aptparse.assess_update(*args, eol=True)
    assert eol.reason is Reason.REPOSITORY_UNAVAILABLE_EOL
    assert eol.detail == "E: The repository 'http://deb.debian.org/debian buster Release' does not have a Release file."


def test_update_as_nobody_is_insufficient_privileges() -> None:
    out = aptparse.assess_update(fixture_text("apt/debian12-nonroot.update.stdout"),
                                 fixture_text("apt/debian12-nonroot.update.stderr"), 100)
    assert out.reason is Reason.INSUFFICIENT_PRIVILEGES
    assert out.detail == "E: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)"


def test_harmless_warning_does_not_fail_update() -> None:
    out = aptparse.assess_update("Hit:1 http://deb.debian.org/debian bookworm InRelease\n",
                                 "W: http://x/dists/y/InRelease: Key is stored in legacy trusted.gpg keyring\n", 0)
    assert out.ok
    assert out.warnings == ("W: http://x/dists/y/InRelease: Key is stored in legacy trusted.gpg keyring",)


def test_os_release_files() -> None:
    deb = aptparse.parse_os_release(fixture_text("os-release/debian-12"))
    ubu = aptparse.parse_os_release(fixture_text("os-release/ubuntu-24.04"))
    assert deb is not None and (deb.id, deb.version_id, deb.version_codename) == ("debian", "12", "bookworm")
    assert deb.pretty_name == "Debian GNU/Linux 12 (bookworm)" and deb.id_like == ()
    assert ubu is not None and (ubu.id, ubu.version_id, ubu.version_codename) == ("ubuntu", "24.04", "noble")
    assert ubu.id_like == ("debian",)
    assert aptparse.parse_os_release("NAME=thing\n") is None


def test_simulation_matches_list_on_captures() -> None:
    for name in ("debian12-security-pending", "ubuntu2404-pending"):
        listed = {u.package for u in aptparse.parse_upgradable(fixture_text(f"apt/{name}.list.stdout")).updates}
        sim = aptparse.parse_simulation(fixture_text(f"apt/{name}.sim.stdout"))
        upgrades = {i.package for i in sim.installs if i.installed is not None}
        assert upgrades == listed
    new = [i for i in aptparse.parse_simulation(fixture_text("apt/ubuntu2404-pending.sim.stdout")).installs
           if i.installed is None]
    assert [i.package for i in new] == ["libdb5.3t64"]
