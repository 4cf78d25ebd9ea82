"""Pure text -> data for apt's output. No I/O here.

Formats (from apt's source, apt-private/private-list.cc and private-output.cc):
  apt list --upgradable:  ``${Package}/${Origin} ${Version} ${Architecture} [upgradable from: X]``
  where Origin is the comma-joined Archive (Suite) of every package file offering the candidate.
  apt-get -s upgrade:     ``Inst NAME [CUR] (CAND Label:Version/Archive[, ...] [ARCH])``.
The CLI forces LC_ALL=C inside the container; a line that has the shape of a package line but not the
C-locale status text means the output was localised, and is reported, never dropped (case C02).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .models import OsRelease, PendingUpdate, Reason

# name/suites version arch [status]; name has no '/', suites may be empty, status is bracketed.
_SHAPE = re.compile(r"^(?P<name>[^\s/]+)/(?P<suites>\S*) (?P<version>\S+) (?P<arch>\S+) \[(?P<status>.*)\]$")
_UPGRADABLE = re.compile(r"^upgradable from: (?P<installed>\S+)$")
# Lines apt prints around the list that are not packages (stdout or stderr, merged or not).
_NOISE = (
    re.compile(r"^Listing\.\.\.(?: Done)?$"),
    re.compile(r"^WARNING: apt does not have a stable CLI interface\b"),
    re.compile(r"^N: "),
)


def is_security_suite(suite: str) -> bool:
    """A security pocket: ``bookworm-security``, ``oldstable-security``, ``noble-infra-security``."""
    return suite.endswith("-security")


def is_esm_suite(suite: str) -> bool:
    """An Ubuntu Pro (ESM) pocket: ``noble-infra-security``, ``jammy-apps-updates``..."""
    return suite.endswith(("-infra-security", "-apps-security", "-infra-updates", "-apps-updates"))


@dataclass(frozen=True, slots=True)
class UpgradableList:
    """Parsed ``apt list --upgradable``: the updates, lines ignored on purpose, lines not understood."""

    updates: tuple[PendingUpdate, ...]
    ignored: tuple[str, ...] = ()
    unparsed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def _split_suites(field: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for suite in field.split(","):
        if suite:
            seen.setdefault(suite, None)
    return tuple(seen)


def parse_upgradable(text: str) -> UpgradableList:
    """Parse ``apt list --upgradable`` output (stdout, or stdout and stderr merged)."""
    updates: list[PendingUpdate] = []
    ignored: list[str] = []
    unparsed: list[str] = []
    errors: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("E: "):
            errors.append(line)
            continue
        if line.startswith("W: ") or any(p.match(line) for p in _NOISE):
            ignored.append(line)
            continue
        shape = _SHAPE.match(line)
        status = _UPGRADABLE.match(shape.group("status")) if shape else None
        if shape is None or status is None:
            unparsed.append(line)
            continue
        suites = _split_suites(shape.group("suites"))
        updates.append(
            PendingUpdate(
                package=shape.group("name"),
                arch=shape.group("arch"),
                installed=status.group("installed"),
                candidate=shape.group("version"),
                suites=suites,
                security=any(is_security_suite(s) for s in suites),
            )
        )
    return UpgradableList(tuple(updates), tuple(ignored), tuple(unparsed), tuple(errors))


def parse_os_release(text: str) -> OsRelease | None:
    """Parse /etc/os-release (shell-style KEY=value lines); None when it has no ID."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    if not values.get("ID"):
        return None
    return OsRelease(
        id=values["ID"],
        version_id=values.get("VERSION_ID") or None,
        version_codename=values.get("VERSION_CODENAME") or None,
        pretty_name=values.get("PRETTY_NAME") or None,
        id_like=tuple(values.get("ID_LIKE", "").split()),
    )


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """Did ``apt-get update`` refresh every index? ``reason`` is None only when it did."""

    reason: Reason | None
    detail: str | None
    warnings: tuple[str, ...]
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every package list was refreshed."""
        return self.reason is None


# apt-get update lines that mean an index was not refreshed, even when it exits 0 (case C06).
_FETCH_FAILED = (
    re.compile(r"^Err:\d*\s"),
    re.compile(r"^W: (?:Failed to fetch|Some index files failed to download)"),
    re.compile(r"^W: (?:GPG error|An error occurred during the signature verification)"),
    re.compile(r"^W: .*(?:is not signed|does not have a Release file|is expired)"),
)
_NOT_FOUND = re.compile(r"does not have a Release file|404\s+Not Found|no longer has a Release file")
_PRIVILEGES = re.compile(r"Could not open lock file|Unable to lock directory|\(13: Permission denied\)")


def _first(lines: Iterable[str], pattern: re.Pattern[str]) -> str | None:
    return next((line for line in lines if pattern.search(line)), None)


def assess_update(stdout: str, stderr: str, exit_code: int | None, *, eol: bool = False) -> UpdateOutcome:
    """Classify an ``apt-get update`` run. Any failed fetch is a failure, whatever the exit code.

    ``eol``: the image's release is end-of-life, so a missing Release file is reported as such (C07).
    """
    lines = [line.rstrip() for line in (stdout + "\n" + stderr).splitlines() if line.strip()]
    errors = tuple(line for line in lines if line.startswith("E: "))
    warnings = tuple(line for line in lines if line.startswith("W: "))
    failures = [line for line in lines if any(p.search(line) for p in _FETCH_FAILED)]
    if exit_code == 0 and not errors and not failures:
        return UpdateOutcome(None, None, warnings, errors)

    evidence = list(errors) + [line for line in failures if line not in errors]
    if (hit := _first(evidence, _PRIVILEGES)) is not None:
        return UpdateOutcome(Reason.INSUFFICIENT_PRIVILEGES, hit, warnings, errors)
    if (hit := _first(lines, _NOT_FOUND)) is not None:
        reason = Reason.REPOSITORY_UNAVAILABLE_EOL if eol else Reason.REPOSITORY_UNAVAILABLE
        return UpdateOutcome(reason, _first(evidence, _NOT_FOUND) or hit, warnings, errors)
    detail = _most_telling(evidence) or f"apt-get update exited {exit_code}"
    return UpdateOutcome(Reason.INDEX_UPDATE_FAILED, detail, warnings, errors)


def _most_telling(evidence: list[str]) -> str | None:
    """The line a person acts on: a concrete fetch error beats the generic summary line."""
    for line in evidence:
        if "Some index files failed to download" not in line and not line.startswith("Err:"):
            return line
    return evidence[0] if evidence else None


@dataclass(frozen=True, slots=True)
class Origin:
    """One ``Label:Version/Archive`` part of an apt-get simulation line."""

    label: str | None
    version: str | None
    archive: str


@dataclass(frozen=True, slots=True)
class SimInstall:
    """One ``Inst`` line of ``apt-get -s``. ``installed`` is None for a newly pulled-in package."""

    package: str
    installed: str | None
    candidate: str
    origins: tuple[Origin, ...]
    arch: str

    @property
    def security(self) -> bool:
        """True when any origin archive is a security pocket."""
        return any(is_security_suite(o.archive) for o in self.origins)


@dataclass(frozen=True, slots=True)
class Simulation:
    """What ``apt-get -s upgrade`` would do, and what it would leave."""

    installs: tuple[SimInstall, ...]
    kept_back: tuple[str, ...] = ()
    deferred_phasing: tuple[str, ...] = ()


_INST = re.compile(r"^Inst (\S+)(?: \[([^\]]*)\])? \((\S+) (.*) \[([^\]]+)\]\)(?: \[.*\])*$")
# apt-get (Output-Version < 30) titles, then the apt 3.x front-end titles.
_KEPT_TITLES = ("The following packages have been kept back:", "Not upgrading:")
_PHASED_TITLES = ("The following upgrades have been deferred due to phasing:", "Not upgrading yet due to phasing:")


def _origin(text: str) -> Origin:
    label, colon, rest = text.rpartition(":")
    if not colon:
        return Origin(None, None, text)
    version, slash, archive = rest.partition("/")
    if slash:
        return Origin(label or None, version or None, archive)
    return Origin(label or None, None, rest)


def parse_simulation(text: str) -> Simulation:
    """Parse ``apt-get -s upgrade`` / ``dist-upgrade``: Inst lines, kept-back and phased lists. The probe
    runs ``apt-get upgrade --print-uris``, which prints the same lists and no Inst lines (scanner.py).

    Only ``Inst`` lines describe packages; ``Conf`` lines and advisory text such as the Ubuntu Pro
    hook's ``1 standard security update`` are not packages (case C11).
    """
    installs: list[SimInstall] = []
    lists: dict[str, list[str]] = {"kept": [], "phased": []}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if current is not None and line.startswith("  "):
            current.extend(line.split())
            continue
        current = None
        if line in _KEPT_TITLES:
            current = lists["kept"]
        elif line in _PHASED_TITLES:
            current = lists["phased"]
        elif match := _INST.match(line):
            name, installed, candidate, origins, arch = match.groups()
            installs.append(
                SimInstall(name, installed, candidate, tuple(_origin(o) for o in origins.split(", ")), arch)
            )
    return Simulation(tuple(installs), tuple(lists["kept"]), tuple(lists["phased"]))


def parse_holds(text: str) -> frozenset[str]:
    """``apt-mark showhold``: one package name per line."""
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and " " not in line.strip())


def annotate(
    updates: Iterable[PendingUpdate], holds: frozenset[str], simulation: Simulation | None
) -> tuple[PendingUpdate, ...]:
    """Mark held, kept-back and phased updates (case C05, C13). Nothing is dropped."""
    kept = frozenset(simulation.kept_back) if simulation else frozenset()
    phased = frozenset(simulation.deferred_phasing) if simulation else frozenset()
    return tuple(
        replace(u, held=u.package in holds, kept_back=u.package in kept, phased=u.package in phased)
        for u in updates
    )
