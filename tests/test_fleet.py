"""Parallel scans and shared package lists (driftwatch/fleet.py), without an engine.

Fingerprints are computed over the archive-API tars captured from the base images
(fixtures/archive/, parsed by the engine's own tar reader); the fleet runs over a FakeEngine that
answers probes with captured apt outputs framed as the probe script frames them. The real-engine
counterpart, which compares shared and per-image results on real images, is
tests/engine/test_fleet_engine.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import posixpath
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftwatch.cli import _Progress, main, stderr_columns
from driftwatch.engine import _tar_entries
from driftwatch.errors import EngineUnavailable, ImageMissing
from driftwatch.fleet import (
    Fingerprint,
    Fleet,
    FleetProgress,
    ScansLost,
    by_base_layer,
    default_jobs,
    fingerprint,
    fingerprint_image,
    reaches_outside,
    read_files,
    signed_by_paths,
)
from driftwatch.models import ImageFile, ImageIdentity, OsRelease, Platform, Reason, RunOutput, ScanStatus
from driftwatch.scanner import SRCPKGCACHE, Scanner
from tests.support.files import FIXTURES, fixture_text
from tests.support.probe import frame

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


# -- a file reader over captured archive-API tars --------------------------------------------------

@dataclass
class ArchiveReader:
    """``read(path)`` as the engine's ImageFiles does, from fixtures/archive/NAME/<path>.tar, plus
    ``extra`` entries (added to the read whose path covers them), without the captured ``drop`` paths."""

    name: str
    extra: tuple[ImageFile, ...] = ()
    drop: tuple[str, ...] = ()
    env: tuple[str, ...] = ("LANG=C.UTF-8",)
    reads: list[str] = field(default_factory=list)

    def read(self, path: str) -> tuple[ImageFile, ...]:
        self.reads.append(path)
        tar = FIXTURES / "archive" / self.name / (path.strip("/").replace("/", "_") + ".tar")
        found = [e for e in (_tar_entries(tar.read_bytes(), posixpath.dirname(path)) if tar.is_file() else ())
                 if not any(e.path == d or e.path.startswith(d + "/") for d in self.drop)]
        return tuple(found + [e for e in self.extra if e.path == path or e.path.startswith(path + "/")])


def print_of(reader: ArchiveReader, arch: str = "amd64") -> Fingerprint | None:
    return fingerprint(read_files(reader), os="linux", architecture=arch, env=reader.env)


def text(path: str, content: str, mode: int = 0o644) -> ImageFile:
    return ImageFile(path, "file", mode, 0, 0, content.encode())


def test_captured_images_fingerprint_by_release() -> None:
    debian, ubuntu = print_of(ArchiveReader("debian-12")), print_of(ArchiveReader("ubuntu-24.04"))
    assert debian is not None and ubuntu is not None and debian.key != ubuntu.key
    # /etc/os-release is a link to ../usr/lib/os-release: followed, as the probe's `cat` does.
    assert debian.os_release == OsRelease("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)", ())
    assert ubuntu.os_release is not None and ubuntu.os_release.label == "ubuntu 24.04"
    assert print_of(ArchiveReader("debian-12")) == debian  # deterministic


def test_what_does_and_does_not_change_the_fingerprint() -> None:
    base = print_of(ArchiveReader("debian-12"))
    assert base is not None
    same = [
        ArchiveReader("debian-12", extra=(text("/etc/apt/preferences.d/pin", "Package: *\nPin: origin x\n"),)),
        ArchiveReader("debian-12", env=("LANG=C.UTF-8", "APP_VERSION=1.4")),
        # another point release of the same release: only ID, VERSION_ID and VERSION_CODENAME count
        ArchiveReader("debian-12", drop=("/usr/lib/os-release",), extra=(text(
            "/usr/lib/os-release", 'PRETTY_NAME="Debian 12 (rebuilt)"\nID=debian\nVERSION_ID="12"\n'
            "VERSION_CODENAME=bookworm\n"),)),
    ]
    for reader in same:
        assert print_of(reader) is not None and print_of(reader).key == base.key, reader  # type: ignore[union-attr]
    different = {
        "another source": ArchiveReader("debian-12", extra=(text(
            "/etc/apt/sources.list.d/corp.list", "deb http://apt.corp.example/debian bookworm main\n"),)),
        "apt config": ArchiveReader("debian-12", extra=(text("/etc/apt/apt.conf.d/99lang",
                                                             'Acquire::Languages "none";\n'),)),
        "a key": ArchiveReader("debian-12", drop=("/etc/apt/trusted.gpg.d/debian-archive-trixie-stable.asc",)),
        "a key's mode": ArchiveReader("debian-12", drop=("/etc/apt/apt.conf.d/docker-clean",), extra=(text(
            "/etc/apt/apt.conf.d/docker-clean",
            fixture_apt_file("debian-12", "/etc/apt/apt.conf.d/docker-clean"), 0o600),)),
        "foreign architecture": ArchiveReader("debian-12", extra=(text("/var/lib/dpkg/arch", "amd64\ni386\n"),)),
        "a proxy": ArchiveReader("debian-12", env=("LANG=C.UTF-8", "http_proxy=http://proxy:3128")),
        "another release": ArchiveReader("debian-12", drop=("/usr/lib/os-release",), extra=(text(
            "/usr/lib/os-release", 'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'),)),
    }
    for why, reader in different.items():
        assert print_of(reader) is not None and print_of(reader).key != base.key, why  # type: ignore[union-attr]
    assert print_of(ArchiveReader("debian-12"), arch="arm64").key != base.key  # type: ignore[union-attr]


def fixture_apt_file(name: str, path: str) -> str:
    entries = {e.path: e for e in ArchiveReader(name).read("/etc/apt")}
    return entries[path].data.decode()


def test_apt_configuration_that_reaches_past_the_files_read_is_scanned_alone() -> None:
    """APT_CONFIG or an #include can name any file, a Dir:: setting any sources, keyrings or state:
    two images alike in what the fingerprint reads could fetch other lists or answer differently
    (a second review made a shared result hide 12 security updates that way)."""
    def why(reader: ArchiveReader) -> str | None:
        return reaches_outside(read_files(reader), reader.env)

    # the official images' own configuration (docker-clean empties Dir::Cache) is fine
    assert why(ArchiveReader("debian-12")) is None and why(ArchiveReader("ubuntu-24.04")) is None
    conf = "/etc/apt/apt.conf.d/99x"
    cases = {
        "its ENV sets APT_CONFIG": ArchiveReader("debian-12", env=("APT_CONFIG=/opt/apt.conf",)),
        f"{conf} has '#include'": ArchiveReader("debian-12", extra=(text(conf, '#include "/opt/inc.conf";\n'),)),
        f"{conf} has 'Dir::'": ArchiveReader("debian-12", extra=(text(conf, 'Dir::Etc::sourcelist "/opt/x.list";\n'),)),
        f"{conf} has 'dir {{'": ArchiveReader("debian-12", extra=(text(conf, 'dir { State { status "/s"; }; };\n'),)),
        f"{conf} has 'Dir \"'": ArchiveReader("debian-12", extra=(text(conf, 'Dir "/srv/root/";\n'),)),
    }
    for expected, reader in cases.items():
        assert why(reader) == expected
    engine = FakeEngine({"cfg:1": Img(extra=(text(conf, 'Dir::Etc::sourcelist "/opt/x.list";\n'),))})
    assert fingerprint_image(engine, engine.inspect_image("cfg:1")) is None


def test_an_image_without_apt_sources_has_no_fingerprint() -> None:
    assert print_of(ArchiveReader("debian-12", drop=("/etc/apt/sources.list.d",))) is None
    assert print_of(ArchiveReader("no-such-image")) is None  # nothing at any path


def test_signed_by_paths_of_both_source_formats() -> None:
    assert signed_by_paths("deb [arch=amd64 signed-by=/etc/apt/keyrings/corp.gpg] http://x/ stable main\n"
                           "deb [signed-by=/a.gpg,/b/../b.gpg] http://y/ s main\n") == [
        "/etc/apt/keyrings/corp.gpg", "/a.gpg", "/b.gpg"]
    assert signed_by_paths("Types: deb\nURIs: http://x/\nSigned-By: /usr/share/keyrings/x.gpg\n") == [
        "/usr/share/keyrings/x.gpg"]
    inline = "Types: deb\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBF...\n"
    assert signed_by_paths(inline) == []  # an inline key is in the sources file, hashed with it
    assert signed_by_paths("Signed-By: 0123456789ABCDEF0123456789ABCDEF01234567\n") == []


def test_links_and_signed_by_keyrings_outside_the_read_paths_are_followed() -> None:
    sources = "deb [signed-by=/opt/keys/corp.gpg] http://apt.corp.example/debian bookworm main\n"
    link = ImageFile("/etc/apt/trusted.gpg.d/extra.gpg", "link", 0o777, 0, 0, b"", "../../../srv/extra.gpg")

    def reader(key: bytes) -> ArchiveReader:
        return ArchiveReader("debian-12", extra=(
            text("/etc/apt/sources.list.d/corp.list", sources), link,
            ImageFile("/opt/keys/corp.gpg", "file", 0o644, 0, 0, key),
            ImageFile("/srv/extra.gpg", "file", 0o644, 0, 0, b"extra")))

    one = reader(b"key one")
    first = print_of(one)
    assert {"/opt/keys/corp.gpg", "/srv/extra.gpg", "/usr/lib/os-release"} <= set(one.reads)
    assert first is not None and first.key != print_of(reader(b"key two")).key  # type: ignore[union-attr]


def test_too_many_links_leave_the_image_to_scan_alone() -> None:
    links = tuple(ImageFile(f"/etc/apt/trusted.gpg.d/k{i}.gpg", "link", 0o777, 0, 0, b"", f"/keys/k{i}.gpg")
                  for i in range(20))
    engine = FakeEngine({"many:1": Img("debian-12", extra=links)})
    assert fingerprint_image(engine, engine.inspect_image("many:1")) is None


# -- the fleet over a fake engine --------------------------------------------------------------------

def capture(name: str, step: str) -> tuple[str, str, int]:
    base = f"apt/{name}.{step}"
    return fixture_text(base + ".stdout"), fixture_text(base + ".stderr"), int(fixture_text(base + ".rc"))


@dataclass
class Img:
    """A fake image: its captured files, and how its probes answer (``apt``: the capture set for
    update/list/sim, or ``noapt``)."""

    files: str = "debian-12"
    apt: str = "debian12-security-pending"
    image_id: str = ""
    extra: tuple[ImageFile, ...] = ()
    os_file: str = "debian-12"
    tools: str = "apt-get\napt\ndpkg\n"  # what its own shell finds
    timeout: bool = False  # its scans over shared lists are killed at the timeout
    base_layer: str | None = None


@dataclass
class FakeEngine:
    """Engine over fake images; records probes, volumes and concurrency."""

    images: dict[str, Img]
    delay: float = 0.0
    lose_engine_on: str | None = None  # a reference whose probe finds the engine gone
    block: threading.Event | None = None  # probes wait on it (released by stop_probes)
    slow_files: dict[str, float] = field(default_factory=dict)  # reference -> seconds its files take to read
    probes: list[tuple[str, str, str | None, bool]] = field(default_factory=list)  # kind, ref, volume, rw
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stops: int = 0
    allowed: int = 0
    peak: int = 0
    writing: dict[str, int] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # "read REF" when its files were read, "KIND REF" per probe
    _now: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: bool = False

    def __post_init__(self) -> None:
        for ref, img in self.images.items():
            if not img.image_id:
                img.image_id = "sha256:" + (ref.encode().hex() * 64)[:64]

    def inspect_image(self, reference: str) -> ImageIdentity:
        if reference not in self.images:
            raise ImageMissing(f"image {reference!r} is not present in the local engine (driftwatch never pulls)")
        return ImageIdentity(reference, self.images[reference].image_id, (reference,), architecture="amd64",
                             base_layer=self.images[reference].base_layer)

    def platform(self) -> Platform:
        return Platform("linux", "amd64", frozenset())

    def _img(self, image_id: str) -> Img:
        return next(i for i in self.images.values() if i.image_id == image_id)

    @contextlib.contextmanager
    def image_files(self, image_id: str, *, reference: str) -> Iterator[ArchiveReader]:
        img = self._img(image_id)
        time.sleep(self.slow_files.get(reference, 0.0))
        yield ArchiveReader(img.files, extra=img.extra)
        self.events.append(f"read {reference}")

    def create_lists_volume(self, fingerprint: str, *, reference: str, deadline: datetime) -> str:
        assert deadline > datetime.now(timezone.utc)
        name = f"lists-{fingerprint[:12]}-{len(self.created)}"
        self.created.append(name)
        return name

    def remove_volumes(self, names: list[str]) -> list[str]:
        self.removed.extend(names)
        return list(names)

    def stop_probes(self) -> int:
        self.stops += 1
        self._stopped = True
        if self.block is not None:
            self.block.set()
        return 0

    def allow_probes(self) -> None:
        self.allowed += 1
        self._stopped = False

    def run_probe(self, image_id: str, script: str, *, timeout: float, network: str, env: Mapping[str, str],
                  reference: str, lists_volume: str | None = None, lists_writable: bool = False) -> RunOutput:
        kind = "refresh" if "step update" in script and SRCPKGCACHE in script else ("alone" if "step update" in script else
                                                            "shared" if "step list" in script else "confirm")
        if kind == "confirm":
            assert lists_volume is None and network == "none"
        if kind == "shared":
            assert network == "none"
            assert SRCPKGCACHE in script and lists_volume is not None and not lists_writable
        with self._lock:
            if self._stopped:
                raise EngineUnavailable("stopped")
            self.probes.append((kind, reference, lists_volume, lists_writable))
            self.events.append(f"{kind} {reference}")
            self._now += 1
            self.peak = max(self.peak, self._now)
            if lists_writable:
                assert lists_volume is not None
                self.writing[lists_volume] = self.writing.get(lists_volume, 0) + 1
                assert self.writing[lists_volume] == 1, "two refreshes write one volume"
        try:
            if self.block is not None:
                self.block.wait(10)
            time.sleep(self.delay)
            if reference == self.lose_engine_on:
                raise EngineUnavailable("engine at unix:///fake.sock stopped answering: gone")
            return self._answer(self._img(image_id), kind, re.search(r"N='([^']+)'", script).group(1))  # type: ignore[union-attr]
        finally:
            with self._lock:
                self._now -= 1

    def _answer(self, img: Img, kind: str, nonce: str) -> RunOutput:
        steps: dict[str, tuple[str, str, int]] = {"os-release": (fixture_text(f"os-release/{img.os_file}"), "", 0)}
        if img.apt == "noapt":
            steps["tools"] = ("dpkg\n", "", 0)
            return RunOutput(0, frame(nonce, steps), "")
        steps["tools"] = (img.tools, "", 0)
        if "apt-get" not in img.tools:
            return RunOutput(0, frame(nonce, steps), "")
        steps["state"] = ("apt 2.6.1 (amd64)\n/usr/bin/apt\n/usr/bin/apt-cache\n/usr/bin/apt-mark\n/usr/bin/sed\n",
                          "", 0)
        if kind == "confirm":
            return RunOutput(0, frame(nonce, steps), "")
        if kind == "shared" and img.timeout:
            return RunOutput(137, frame(nonce, steps), "", timed_out=True)
        if kind in ("alone", "refresh"):
            steps["update"] = capture(img.apt, "update")
            if steps["update"][2] != 0 or (kind == "alone" and "W: " in steps["update"][1]):
                return RunOutput(0, frame(nonce, steps), "")  # (the real script lists on; nothing reads it)
        if kind == "refresh":
            return RunOutput(0, frame(nonce, steps), "")
        steps["list"] = capture(img.apt, "list")
        steps["holds"] = ("", "", 0)
        steps["sim"] = capture(img.apt, "sim")
        return RunOutput(0, frame(nonce, steps), "")


def scanner(engine: FakeEngine) -> Scanner:
    return Scanner(engine, timeout=60, clock=lambda: NOW)  # type: ignore[arg-type]


def outcome(result: object) -> tuple[object, ...]:
    r = result
    return (r.status, r.reason, r.detail, r.step, r.exit_code, r.stderr_tail, r.warnings,  # type: ignore[attr-defined]
            r.updates, r.os_release, r.release_eol, r.image)  # type: ignore[attr-defined]


FLEET = {
    "debian/a:1": Img(), "debian/b:1": Img(), "debian/c:1": Img(),
    "ubuntu/a:1": Img("ubuntu-24.04", "ubuntu2404-pending", os_file="ubuntu-24.04"),
    "ubuntu/b:1": Img("ubuntu-24.04", "ubuntu2404-pending", os_file="ubuntu-24.04"),
    "lonely/ubuntu:1": Img("ubuntu-24.04", "ubuntu2404-pending", os_file="ubuntu-24.04",
                           extra=(text("/etc/apt/sources.list.d/ppa.list", "deb http://ppa.example/ noble main\n"),)),
}


def test_one_refresh_per_group_then_read_only_scans_identical_to_per_image() -> None:
    refs = [*FLEET, "absent:1"]
    engine = FakeEngine({k: dataclasses.replace(v) for k, v in FLEET.items()})
    shared = {r.reference: r for r in Fleet(scanner(engine), engine, jobs=3).scan(refs)}
    assert sorted(shared) == sorted(refs)
    kinds = sorted((k, ref) for k, ref, _, _ in engine.probes)
    assert [k for k, _ in kinds].count("refresh") == 2  # debian (3 images), ubuntu (2 images)
    assert [ref for k, ref in kinds if k == "alone"] == ["lonely/ubuntu:1"]  # no twin
    # debian/a, b, c have one apt state, ubuntu/a and b another: one probe each, the others confirmed
    probed = sorted(ref for k, ref in kinds if k == "shared")
    assert [r.split("/")[0] for r in probed] == ["debian", "ubuntu"]
    assert sorted(ref for k, ref in kinds if k == "confirm") == sorted(
        r for r in FLEET if r not in probed and r != "lonely/ubuntu:1")
    for ref in FLEET:
        twin = shared[ref].probe_of
        assert (twin is None) == (ref in probed or ref == "lonely/ubuntu:1"), ref
        assert twin is None or (twin in probed and twin.split("/")[0] == ref.split("/")[0]), ref
        assert shared[ref].image is not None and shared[ref].image.reference == ref
    volumes = {vol for k, _, vol, _ in engine.probes if k == "refresh"}
    assert len(volumes) == 2 and sorted(engine.removed) == sorted(engine.created) == sorted(volumes)
    assert shared["absent:1"].reason is Reason.IMAGE_MISSING

    alone_engine = FakeEngine({k: dataclasses.replace(v) for k, v in FLEET.items()})
    alone = {r.reference: r for r in Fleet(scanner(alone_engine), alone_engine, jobs=1, share_lists=False).scan(refs)}
    assert {k for k, _, _, _ in alone_engine.probes} == {"alone"} and alone_engine.created == []
    for ref in refs:
        assert outcome(shared[ref]) == outcome(alone[ref]), ref
    assert shared["debian/a:1"].pending_total == 12 and shared["ubuntu/b:1"].pending_total == 67


def test_without_shared_probes_every_member_is_probed_over_the_lists() -> None:
    engine = FakeEngine({k: dataclasses.replace(v) for k, v in FLEET.items()})
    results = {r.reference: r for r in Fleet(scanner(engine), engine, jobs=2, share_probes=False).scan(list(FLEET))}
    assert sorted(ref for k, ref, _, _ in engine.probes if k == "shared") == sorted(
        r for r in FLEET if r != "lonely/ubuntu:1")
    assert all(r.probe_of is None for r in results.values())


def status_file(text: str) -> ImageFile:
    return ImageFile("/var/lib/dpkg/status", "file", 0o644, 0, 0, text.encode())


def test_another_dpkg_status_or_machine_id_is_another_apt_state() -> None:
    base = print_of(ArchiveReader("debian-12", extra=(status_file("Package: a\nStatus: install ok installed\n"),)))
    assert base is not None
    same_lists_other_state = {
        "dpkg status": ArchiveReader("debian-12", extra=(status_file("Package: b\nStatus: install ok installed\n"),)),
        "a hold": ArchiveReader("debian-12", extra=(status_file("Package: a\nStatus: hold ok installed\n"),)),
        "machine id": ArchiveReader("debian-12", extra=(
            status_file("Package: a\nStatus: install ok installed\n"),
            text("/etc/machine-id", "0123456789abcdef0123456789abcdef\n"))),
        "a pin": ArchiveReader("debian-12", extra=(
            status_file("Package: a\nStatus: install ok installed\n"),
            text("/etc/apt/preferences.d/pin", "Package: *\nPin: origin x\n"))),
    }
    for why, reader in same_lists_other_state.items():
        other = print_of(reader)
        assert other is not None and other.key == base.key and other.state != base.state, why
    app = ArchiveReader("debian-12", env=("LANG=C.UTF-8", "APP_VERSION=2"), extra=(
        status_file("Package: a\nStatus: install ok installed\n"),))
    assert print_of(app) == base  # an application's own ENV is not apt's business
    # nor is PATH here: the image's shell shows which apt it finds, and the confirming probe compares
    # that (a base imported without ENV PATH and an image built on it have the same apt)
    path = ArchiveReader("debian-12", env=("PATH=/opt/bin",), extra=(status_file("Package: a\nStatus: install ok installed\n"),))
    assert print_of(path) == base


def test_members_whose_shell_finds_another_apt_are_scanned_on_their_own() -> None:
    """Same files where fingerprints look, but a later layer deleted apt: the short probe of the image's
    own shell sees it, and the image gets the scan it would have had alone."""
    images = {"base/a:1": Img(), "base/b:1": Img(), "stripped/c:1": Img(tools="dpkg\n")}
    engine = FakeEngine(images)
    results = {r.reference: r for r in Fleet(scanner(engine), engine, jobs=1).scan(list(images))}
    kinds = [(k, ref) for k, ref, _, _ in engine.probes]
    assert [k for k, _ in kinds].count("shared") == 2 and [k for k, _ in kinds].count("confirm") == 2
    assert (results["stripped/c:1"].status, results["stripped/c:1"].reason) == (
        ScanStatus.UNSUPPORTED, Reason.NO_SHELL_OR_PACKAGE_MANAGER)
    assert results["stripped/c:1"].probe_of is None
    ok = [r for r in results.values() if r.status is ScanStatus.OK]
    assert len(ok) == 2 and sorted(r.probe_of is None for r in ok) == [False, True]


def test_a_probe_that_fails_shares_nothing() -> None:
    """A timeout may be that image's own trouble: its twins are scanned, not failed with it."""
    images = {"slow/a:1": Img(timeout=True), "fine/b:1": Img(), "fine/c:1": Img()}
    engine = FakeEngine(images)
    results = {r.reference: r for r in Fleet(scanner(engine), engine, jobs=1).scan(list(images))}
    assert [k for k, _, _, _ in engine.probes].count("confirm") == 0  # the first probed is slow/a:1
    assert results["slow/a:1"].reason is Reason.TIMEOUT
    assert [results[r].status for r in ("fine/b:1", "fine/c:1")] == [ScanStatus.OK, ScanStatus.OK]
    assert all(r.probe_of is None for r in results.values())


def test_reads_take_turns_across_base_layers() -> None:
    images = [ImageIdentity(f"{base}/{i}:1", f"sha256:{base}{i}", base_layer=base) for base in "ab" for i in range(3)]
    images.append(ImageIdentity("unknown:1", "sha256:u"))
    assert [i.reference for i in by_base_layer(images)] == [
        "a/0:1", "b/0:1", "unknown:1", "a/1:1", "b/1:1", "a/2:1", "b/2:1"]


def test_a_group_refresh_starts_when_its_first_image_is_read_if_another_shares_its_base_layer() -> None:
    images = {"first:1": Img(base_layer="sha256:l1"), "second:1": Img(base_layer="sha256:l1")}
    engine = FakeEngine(images, slow_files={"second:1": 0.5})
    results = list(Fleet(scanner(engine), engine, jobs=2, poll=0.01).scan(list(images)))
    assert engine.events.index("refresh first:1") < engine.events.index("read second:1")
    assert [k for k, _, _, _ in engine.probes].count("refresh") == 1
    assert [r.status for r in results] == [ScanStatus.OK, ScanStatus.OK]
    without = FakeEngine({r: dataclasses.replace(i, base_layer=None) for r, i in images.items()},
                         slow_files={"second:1": 0.5})
    list(Fleet(scanner(without), without, jobs=2, poll=0.01).scan(list(images)))
    assert without.events.index("read second:1") < without.events.index("refresh first:1")


def test_one_image_whose_refresh_fails_does_not_fail_its_group() -> None:
    """The fingerprint cannot see everything `apt-get update` uses (a layer removed gpgv, or an apt
    method): the first refresh fails in that image, a second in another member succeeds, and only the
    broken image fails, exactly as its own refresh failed; the others are scanned over the good lists."""
    images = {"broken:1": Img(apt="debian12-unresolvable-mirror"), "good/a:1": Img(), "good/b:1": Img()}
    engine = FakeEngine(images)
    results = {r.reference: r for r in Fleet(scanner(engine), engine, jobs=1).scan(list(images))}
    assert [(k, r) for k, r, _, _ in engine.probes if k == "refresh"] == [("refresh", "broken:1"),
                                                                          ("refresh", "good/a:1")]
    assert (results["broken:1"].status, results["broken:1"].reason) == (ScanStatus.FAILED,
                                                                        Reason.INDEX_UPDATE_FAILED)
    own = scanner(FakeEngine({"broken:1": Img(apt="debian12-unresolvable-mirror")})).scan("broken:1")
    assert outcome(results["broken:1"]) == outcome(own)
    assert [results[r].status for r in ("good/a:1", "good/b:1")] == [ScanStatus.OK, ScanStatus.OK]
    assert results["good/a:1"].pending_total == 12
    assert sorted(engine.removed) == sorted(engine.created) and len(engine.created) == 2


def test_a_failed_refresh_fails_each_image_as_its_own_refresh_would() -> None:
    images = {r: Img(apt="debian12-unresolvable-mirror") for r in ("down/a:1", "down/b:1")}
    engine = FakeEngine(images)
    shared = {r.reference: r for r in Fleet(scanner(engine), engine, jobs=2).scan(list(images))}
    # one refresh, then one in the other image (the first one's trouble might have been its own); nobody
    # scans over lists that failed
    assert sorted((k, r) for k, r, _, _ in engine.probes) == [("refresh", "down/a:1"), ("refresh", "down/b:1")]
    assert engine.removed == engine.created and len(engine.created) == 2
    alone_engine = FakeEngine({r: dataclasses.replace(i) for r, i in images.items()})
    for ref in images:
        own = scanner(alone_engine).scan(ref)
        assert (own.status, own.reason) == (ScanStatus.FAILED, Reason.INDEX_UPDATE_FAILED)
        assert outcome(shared[ref]) == outcome(own)
        assert shared[ref].image is not None and shared[ref].image.reference == ref


@pytest.mark.parametrize("apt", ["debian12-security-pending", "debian12-unresolvable-mirror"])
def test_an_image_fingerprinted_after_its_groups_refresh_joins_it(apt: str) -> None:
    """Refreshes start as soon as a group has two images; a third found later uses the same lists
    (or fails as the refresh did), and the volume goes only once nobody can join any more."""
    images = {r: Img(apt=apt) for r in ("early/a:1", "early/b:1", "late/c:1")}
    engine = FakeEngine(images, slow_files={"late/c:1": 0.4})
    results = {r.reference: r for r in Fleet(scanner(engine), engine, jobs=2, poll=0.01,
                                                 share_probes=False).scan(list(images))}
    refreshes = [ref for kind, ref, _, _ in engine.probes if kind == "refresh"]
    tries = 1 if apt == "debian12-security-pending" else 2  # a failed refresh is tried in one more image
    assert len(refreshes) == tries and refreshes[0].startswith("early/")
    assert len(engine.created) == tries and engine.removed == engine.created
    if apt == "debian12-security-pending":
        assert sorted(ref for kind, ref, vol, _ in engine.probes if kind == "shared" and vol == engine.created[0]) \
            == sorted(images)
        assert all(r.status is ScanStatus.OK for r in results.values())
    else:
        assert [kind for kind, _, _, _ in engine.probes] == ["refresh", "refresh"]
        assert {r.reason for r in results.values()} == {Reason.INDEX_UPDATE_FAILED}


def test_a_refresh_that_never_ran_apt_get_update_leaves_each_image_to_scan_alone() -> None:
    images = {r: Img(apt="noapt") for r in ("noapt/a:1", "noapt/b:1")}
    engine = FakeEngine(images)
    results = {r.reference: r for r in Fleet(scanner(engine), engine, jobs=2).scan(list(images))}
    assert sorted(k for k, _, _, _ in engine.probes) == ["alone", "alone", "refresh", "refresh"]
    for result in results.values():
        assert (result.status, result.reason) == (ScanStatus.UNSUPPORTED, Reason.NO_SHELL_OR_PACKAGE_MANAGER)
    assert engine.removed == engine.created


def test_jobs_bound_the_probes_running_at_once() -> None:
    images = {f"ubuntu/{i}:1": Img("ubuntu-24.04", "ubuntu2404-pending", os_file="ubuntu-24.04",
                                   extra=(text("/etc/apt/sources.list.d/own.list", f"deb http://x/{i} s main\n"),))
              for i in range(8)}  # no two alike: eight probes of their own
    engine = FakeEngine(images, delay=0.05)
    seen: list[FleetProgress] = []
    results = list(Fleet(scanner(engine), engine, jobs=3, on_progress=seen.append, poll=0.01).scan(list(images)))
    assert len(results) == 8 and engine.peak == 3
    assert seen[-1] == FleetProgress(8, 8, 0, (), "scanning")
    assert any(len(p.running) == 3 for p in seen)
    one = FakeEngine({k: dataclasses.replace(v) for k, v in images.items()}, delay=0.01)
    list(Fleet(scanner(one), one, jobs=1).scan(list(images)))
    assert one.peak == 1


def test_the_engine_going_away_names_the_scans_in_progress_and_removes_the_volumes() -> None:
    engine = FakeEngine({k: dataclasses.replace(v) for k, v in FLEET.items()}, lose_engine_on="debian/b:1")
    got = []
    with pytest.raises(ScansLost) as lost:
        for result in Fleet(scanner(engine), engine, jobs=1).scan(list(FLEET)):
            got.append(result.reference)
    assert "debian/b:1" in lost.value.references and not set(got) & set(lost.value.references)
    assert str(lost.value) == "engine at unix:///fake.sock stopped answering: gone"
    assert sorted(engine.removed) == sorted(engine.created) and engine.stops >= 1 and engine.allowed == 1


def interrupted_while_three_hang(engine: FakeEngine) -> None:
    """Scan FLEET with 2 jobs and raise Ctrl-C (and SIGTERM, which the CLI turns into it) on the main
    thread, where it waits in the fleet: from the progress callback, once three probes hang."""
    def interrupt(progress: FleetProgress) -> None:
        if progress.phase == "scanning" and len(progress.running) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        for _ in Fleet(scanner(engine), engine, jobs=2, on_progress=interrupt, poll=0.01).scan(list(FLEET)):
            pytest.fail("no scan can have finished")


def test_an_interrupt_stops_the_probes_cancels_the_queue_and_removes_the_volumes() -> None:
    engine = FakeEngine({k: dataclasses.replace(v) for k, v in FLEET.items()}, block=threading.Event())
    interrupted_while_three_hang(engine)
    # the two refreshes (beside the probes) and the lonely image's own scan hung; nothing over lists ran
    assert sorted(k for k, _, _, _ in engine.probes) == ["alone", "refresh", "refresh"]
    assert engine.stops >= 1 and engine.allowed == 1
    assert sorted(engine.removed) == sorted(engine.created) and len(engine.created) == 2


def test_a_second_interrupt_during_the_cleanup_waits_for_it() -> None:
    """Ctrl-C, then Ctrl-C (or SIGTERM) again while probes and volumes are being removed: the second one
    used to abort the cleanup and leave the lists volumes behind."""
    import os
    import signal

    class Impatient(FakeEngine):
        def stop_probes(self) -> int:
            os.kill(os.getpid(), signal.SIGINT)  # the operator presses Ctrl-C again, mid-cleanup
            return super().stop_probes()

    engine = Impatient({k: dataclasses.replace(v) for k, v in FLEET.items()}, block=threading.Event())
    interrupted_while_three_hang(engine)
    assert len(engine.created) == 2 and sorted(engine.removed) == sorted(engine.created)
    assert engine.allowed == 1


def test_closing_between_results() -> None:
    engine = FakeEngine({k: dataclasses.replace(v) for k, v in FLEET.items()})
    scans = Fleet(scanner(engine), engine, jobs=2).scan(list(FLEET))
    first = next(scans)
    scans.close()
    assert first.status is ScanStatus.OK
    assert engine.stops >= 1 and engine.allowed == 1 and sorted(engine.removed) == sorted(engine.created)


# -- the CLI's side --------------------------------------------------------------------------------

def test_default_jobs_and_the_option() -> None:
    assert 1 <= default_jobs() <= 4
    runner = CliRunner()
    help_text = runner.invoke(main, ["scan", "--help"]).output
    assert "--jobs N" in help_text and "--no-share-lists" in help_text
    assert "--jobs N" in runner.invoke(main, ["run", "--help"]).output
    bad = runner.invoke(main, ["scan", "--jobs", "0", "x:1"], env={"DRIFTWATCH_JOBS": ""})
    assert bad.exit_code == 2 and "0 is not in the range 1<=x<=32" in bad.output
    env = runner.invoke(main, ["scan", "x:1"], env={"DRIFTWATCH_JOBS": "99"})
    assert env.exit_code == 2 and "99 is not in the range" in env.output


def test_progress_line_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    progress = _Progress(tty=True)
    progress.update(FleetProgress(12, 3, 1, ("myorg/api:1", "myorg/worker:2", "x:1"), "scanning"))
    progress.result("myorg/api:1: ok, 0 pending, 0 security")
    progress.update(FleetProgress(12, 12, 1, (), "scanning"))
    err = capsys.readouterr().err
    assert err == ("\r\x1b[K[3/12] 1 failed; scanning: myorg/api:1, myorg/worker:2 (+1)"
                   "\r\x1b[Kmyorg/api:1: ok, 0 pending, 0 security\n[3/12] 1 failed; scanning: myorg/api:1, "
                   "myorg/worker:2 (+1)\r\x1b[K")


def test_progress_line_fits_stderrs_terminal_when_stdout_is_a_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`scan --format json > out.json` on a 50-column terminal: the line is cut to stderr's width (a
    real pseudo-terminal), not to stdout's default 100 columns, so it never wraps and piles up."""
    import fcntl
    import struct
    import sys
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 50, 0, 0))
    monkeypatch.delenv("COLUMNS", raising=False)
    with open(slave, "w", closefd=True) as tty, open(tmp_path / "out.json", "w") as out:
        monkeypatch.setattr(sys, "stderr", tty)
        monkeypatch.setattr(sys, "stdout", out)
        assert stderr_columns() == 50
        _Progress(tty=True).update(FleetProgress(
            3, 0, 0, ("nu/app-d2:1", "nu/app-d1:1 (refreshing its group's lists)"), "reading apt sources"))
        tty.flush()
        drawn = os.read(master, 4096).decode()
    os.close(master)
    line = drawn.split("\x1b[K")[-1]
    assert line == "[0/3] 0 failed; reading apt sources: nu/app-d2:1\u2026" and len(line) == 49


def test_no_progress_line_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    progress = _Progress(tty=False)
    progress.update(FleetProgress(2, 0, 0, ("a:1",), "reading apt sources"))
    progress.result("a:1: ok, 0 pending, 0 security")
    progress.finish()
    assert capsys.readouterr().err == "a:1: ok, 0 pending, 0 security\n"


def test_readme_documents_jobs_and_shared_lists() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for needle in ("--jobs", "DRIFTWATCH_JOBS", "--no-share-lists", "--no-share-probes", "## Performance", "benchmarks/scan_speed.py",
                   "benchmarks/report_speed.py"):
        assert needle in readme, needle
