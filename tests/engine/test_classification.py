"""Issue 4 on the real engine: classification from apt's own origin metadata, with deterministic
local repositories served on loopback (tests.support.aptrepo) and images built on the base images.

Debian image (``CLASSIFY_SUITES``), one package per case, all installed at 1.0:

- demo-masked: 1.1 in a security suite, 1.2 in bookworm-updates => security, masked;
- demo-sec: 1.1 in a suite whose Release says ``Suite: oldstable-security`` with ``Label: Debian-Security``
  and ``Codename: bookworm-security`` (what Debian's archive says for bookworm now) => security;
- demo-mirror: 1.1 in a mirror suite that rewrites labels (``Label: Corp-Mirror``, ``Suite: bookworm-sec``)
  => security only with the pattern ``o=driftwatch-fixture,l=Corp-Mirror``;
- demo-held: 1.1 in bookworm-updates, ``apt-mark hold`` in the image => held (and kept back);
- demo-kept: 2.0 in bookworm-updates depends on demo-newdep, not installed => kept back;
- demo-plain: 2.0 in bookworm-updates => not security.

Ubuntu image (``PHASED_SUITES``): see :func:`test_phasing_is_not_applied_without_machine_id`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwatch.engine import DockerEngine
from driftwatch.models import PendingUpdate, ScanResult, ScanStatus
from driftwatch.scanner import Scanner
from tests.engine.conftest import ImageBuilder
from tests.support.aptrepo import Pkg, Suite, build_repo, serve
from tests.support.images import prepare_drift_context

pytestmark = pytest.mark.docker

UBUNTU = "driftwatch/ubuntu:24.04"
MIRROR_PATTERN = "o=driftwatch-fixture,l=Corp-Mirror"
MACHINE_ID = "0123456789abcdef0123456789abcdef"

CLASSIFY_INSTALLED = tuple(Pkg(n, "1.0") for n in
                           ("demo-masked", "demo-sec", "demo-mirror", "demo-held", "demo-kept", "demo-plain"))
CLASSIFY_SUITES = (
    Suite("bookworm", CLASSIFY_INSTALLED + (Pkg("demo-newdep", "1.0"),)),
    Suite("oldstable-security", (Pkg("demo-masked", "1.1"), Pkg("demo-sec", "1.1")), codename="bookworm-security",
          label="Debian-Security", origin="Debian"),
    Suite("bookworm-updates", (Pkg("demo-masked", "1.2"), Pkg("demo-held", "1.1"), Pkg("demo-plain", "2.0"),
                               Pkg("demo-kept", "2.0", depends="demo-newdep"))),
    Suite("bookworm-sec", (Pkg("demo-mirror", "1.1"),), label="Corp-Mirror"),
)

_PHASE_0 = {"Phased-Update-Percentage": "0"}
_PHSEC = Pkg("demo-phsec", "1.1", extra_control=_PHASE_0)  # the same .deb in -updates and -security
PHASED_INSTALLED = tuple(Pkg(n, "1.0") for n in ("demo-phased", "demo-phsec", "demo-usec", "demo-esm"))
PHASED_SUITES = (
    Suite("noble", PHASED_INSTALLED, origin="Ubuntu", label="Ubuntu"),
    Suite("noble-updates", (Pkg("demo-phased", "1.1", extra_control=_PHASE_0), _PHSEC, Pkg("demo-usec", "1.2")),
          origin="Ubuntu", label="Ubuntu"),
    Suite("noble-security", (_PHSEC, Pkg("demo-usec", "1.1")), origin="Ubuntu", label="Ubuntu"),
    Suite("noble-infra-security", (Pkg("demo-esm", "1.1"),), origin="UbuntuESM", label="UbuntuESM"),
)


def by_name(result: ScanResult) -> dict[str, PendingUpdate]:
    """The scan's updates keyed by package name."""
    return {u.package: u for u in result.updates}


def scan(engine: DockerEngine, tag: str, patterns: tuple[str, ...] = ()) -> ScanResult:
    """One real scan over host networking; must be OK without warnings."""
    result = Scanner(engine, network="host", timeout=180, security_origins=patterns).scan(tag)
    assert result.status is ScanStatus.OK, (result.reason, result.detail, result.stderr_tail)
    assert result.warnings == ()
    return result


@pytest.fixture(scope="module")
def classify_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The Debian classification repository on loopback for this module: (directory, url)."""
    repo = build_repo(tmp_path_factory.mktemp("classify-repo"), CLASSIFY_SUITES)
    with serve(repo) as url:
        yield repo, url


@pytest.fixture(scope="module")
def classify_image(images: ImageBuilder, classify_repo: tuple[Path, str],
                   tmp_path_factory: pytest.TempPathFactory) -> str:
    """driftwatch/debian:12 with the 1.0 packages installed and demo-held on hold."""
    repo, url = classify_repo
    context = prepare_drift_context(tmp_path_factory.mktemp("classify-ctx"), repo, url, CLASSIFY_INSTALLED)
    with (context / "Dockerfile").open("a") as dockerfile:
        dockerfile.write("RUN apt-mark hold demo-held\n")
    return images.build(context, "classify")


@pytest.fixture(scope="module")
def classified(docker_engine: DockerEngine, classify_image: str) -> dict[str, PendingUpdate]:
    """One scan of the classification image with the built-in rules only."""
    result = scan(docker_engine, classify_image)
    assert result.release_eol is None  # bookworm is supported (Debian LTS until 2028-06-30)
    return by_name(result)


def test_masked_security_fix_counts_as_security(classified: dict[str, PendingUpdate]) -> None:
    u = classified["demo-masked"]
    assert (u.installed, u.candidate, u.suites) == ("1.0", "1.2", ("bookworm-updates",))
    assert u.security and u.masked_security and not u.esm
    assert u.security_origin == "o=Debian,a=oldstable-security,n=bookworm-security,l=Debian-Security"
    assert u.why == ("security: 1.1 from o=Debian,a=oldstable-security,n=bookworm-security,l=Debian-Security"
                     " (masked by 1.2 from bookworm-updates)")


def test_oldstable_security_suite_with_debian_security_label(classified: dict[str, PendingUpdate]) -> None:
    u = classified["demo-sec"]
    assert (u.candidate, u.suites) == ("1.1", ("oldstable-security",))
    assert u.security and not u.masked_security
    assert u.why == "security: 1.1 from o=Debian,a=oldstable-security,n=bookworm-security,l=Debian-Security"


def test_held_package_is_held(classified: dict[str, PendingUpdate]) -> None:
    u = classified["demo-held"]
    assert u.held and not u.security
    assert u.kept_back  # apt-get -s upgrade lists a held package under "kept back" (apt 2.6.1)
    assert "held (apt-mark hold)" in u.why


def test_package_needing_a_new_dependency_is_kept_back(classified: dict[str, PendingUpdate]) -> None:
    u = classified["demo-kept"]
    assert u.kept_back and not u.held and not u.security
    assert "kept back" in u.why


def test_plain_update_is_not_security(classified: dict[str, PendingUpdate]) -> None:
    u = classified["demo-plain"]
    assert not (u.security or u.masked_security or u.held or u.kept_back or u.phased)
    assert u.security_origin is None
    assert u.why == ("not security: 2.0 from bookworm-updates; no version in (1.0, 2.0] comes from a security origin")


def test_rewritten_mirror_labels_need_an_origin_pattern(classified: dict[str, PendingUpdate],
                                                       docker_engine: DockerEngine, classify_image: str) -> None:
    assert not classified["demo-mirror"].security  # Label Corp-Mirror, Suite bookworm-sec: no built-in rule
    with_pattern = by_name(scan(docker_engine, classify_image, (MIRROR_PATTERN,)))
    u = with_pattern["demo-mirror"]
    assert u.security and not u.masked_security
    assert u.security_origin == "o=driftwatch-fixture,a=bookworm-sec,n=bookworm-sec,l=Corp-Mirror"
    assert u.why.endswith(f"[pattern {MIRROR_PATTERN}]")
    # The pattern widens nothing else.
    assert {n for n, x in with_pattern.items() if x.security} == {"demo-masked", "demo-sec", "demo-mirror"}


# -- Ubuntu: phasing, masked fixes in -updates, ESM -------------------------------------------------

@pytest.fixture(scope="module")
def phased_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The Ubuntu-like repository on loopback for this module: (directory, url)."""
    repo = build_repo(tmp_path_factory.mktemp("phased-repo"), PHASED_SUITES)
    with serve(repo) as url:
        yield repo, url


@pytest.fixture(scope="module")
def phased_images(images: ImageBuilder, phased_repo: tuple[Path, str], docker_engine: DockerEngine,
                  tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(image as debootstrap leaves it: no /etc/machine-id, the same image with a machine-id)."""
    docker_engine.inspect_image(UBUNTU)  # ImageMissing when scripts/base-images.sh did not run
    repo, url = phased_repo
    context = prepare_drift_context(tmp_path_factory.mktemp("phased-ctx"), repo, url, PHASED_INSTALLED)
    plain = images.build(context, "phased", buildargs={"BASE": UBUNTU})
    with_id = images.from_dockerfile("phased-machine-id", f"FROM {plain}\nRUN echo {MACHINE_ID} > /etc/machine-id\n")
    return plain, with_id


@pytest.fixture(scope="module")
def ubuntu(docker_engine: DockerEngine, phased_images: tuple[str, str]) -> dict[str, PendingUpdate]:
    """One scan of the Ubuntu image without a machine-id."""
    result = scan(docker_engine, phased_images[0])
    assert result.release_eol is None  # noble: standard support until 2029-05-31
    return by_name(result)


def test_phasing_is_not_applied_without_machine_id(ubuntu: dict[str, PendingUpdate]) -> None:
    """What apt really does in a container: driftwatch/ubuntu:24.04 (debootstrap, like the official
    images) has no /etc/machine-id, and apt 2.7.14 applies no phasing without one (nor in a chroot, nor
    with SOURCE_DATE_EPOCH set): ``apt-get -s upgrade`` installs the ``Phased-Update-Percentage: 0``
    candidate, so a rebuild would install it and it is *not* phased. The percentage is still shown in
    ``why``. Case C05's "deferred" list therefore only appears in images that carry a machine-id."""
    updates = ubuntu
    u = updates["demo-phased"]
    assert not u.phased and not u.security
    assert "candidate is phased at 0%, but apt here does not defer it" in u.why
    sec = updates["demo-phsec"]
    assert sec.security and not sec.masked_security and not sec.phased
    assert sec.suites == ("noble-security", "noble-updates")


def test_phased_update_is_deferred_with_a_machine_id(docker_engine: DockerEngine,
                                                     phased_images: tuple[str, str]) -> None:
    """With /etc/machine-id, apt defers the 0% candidate ("deferred due to phasing") => phased. apt
    never phases a version that is also in a security pocket, even at 0% (demo-phsec)."""
    updates = by_name(scan(docker_engine, phased_images[1]))
    u = updates["demo-phased"]
    assert u.phased and not u.security and not u.kept_back
    assert "phased: apt defers it (Phased-Update-Percentage 0%)" in u.why
    assert not updates["demo-phsec"].phased and updates["demo-phsec"].security


def test_ubuntu_fix_copied_to_updates_is_masked_security(ubuntu: dict[str, PendingUpdate]) -> None:
    u = ubuntu["demo-usec"]
    assert (u.candidate, u.suites) == ("1.2", ("noble-updates",))
    assert u.security and u.masked_security and not u.esm
    assert u.why == ("security: 1.1 from o=Ubuntu,a=noble-security,n=noble-security,l=Ubuntu"
                     " (masked by 1.2 from noble-updates)")


def test_esm_origin_is_security_reported_apart(ubuntu: dict[str, PendingUpdate]) -> None:
    u = ubuntu["demo-esm"]
    assert u.security and u.esm and not u.masked_security
    assert u.why.endswith("; ESM: needs Ubuntu Pro")
