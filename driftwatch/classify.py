"""Which pending updates are security fixes, decided from apt's own origin metadata. Pure: no I/O.

Inputs are two outputs of ``apt-cache`` in the C locale, taken in the scan container:

- ``apt-cache policy`` (no argument): every package file, its priority, the fields of its Release
  file (``release v=12,o=Debian,a=oldstable-security,n=bookworm-security,l=Debian-Security,c=main,b=amd64``,
  from apt's ``PkgFileIterator::RelStr``) and its site (``origin deb.debian.org``);
- ``apt-cache policy NAME:ARCH...``: per package, the installed and candidate versions and every
  known version with the package files that offer it (``1.1 500 (phased 10%)``).

Rules, in this order of evidence:

1. An origin (one package file) is a **security origin** when it matches a built-in pattern
   (:data:`BUILTIN_SECURITY_PATTERNS`: Label ``Debian-Security``, Codename ``*-security`` or Archive
   ``*-security``; the Suite alone is fragile, it moves from ``stable-security`` to ``oldstable-security``
   as a Debian release ages, while Label and Codename stay) or a configured pattern. Configured
   patterns use unattended-upgrades' ``Origins-Pattern`` syntax and matching (:class:`OriginPattern`)
   and are *added* to the built-in ones: configuring a mirror can widen what counts as security,
   never hide a Debian or Ubuntu security origin.
2. **Masked** security fixes: an update is security when *any* version newer than the installed one
   and not newer than the candidate comes from a security origin (Ubuntu copies fixes into
   ``-updates``, and a newer ``-updates`` version then hides the ``-security`` one). Versions are
   ordered by :class:`debian.debian_support.Version`, never by PEP 440.
3. **ESM**: Ubuntu Pro origins (``UbuntuESM``, ``UbuntuESMApps``, archives ``*-infra-security``,
   ``*-apps-security``) are security, but only obtainable with Ubuntu Pro: ``esm=True`` when every
   security origin of the update is an ESM one.
4. The old suite-name rule is kept as a floor: an update whose ``apt list`` suite ends in
   ``-security`` stays security even if its origin metadata says otherwise. When the policy output is
   missing or unreadable, classification falls back to that rule and says so in a warning: a
   classification failure never yields fewer security updates.

**Phased updates** (Ubuntu) are decided from what apt does, not from the percentage alone:
``phased=True`` only when ``apt-get upgrade`` defers the package ("deferred due to phasing"), i.e.
when a rebuild would not install it yet. apt applies phasing only on a machine with an
``/etc/machine-id`` and outside chroots and reproducible builds (``SOURCE_DATE_EPOCH``); base images
usually have no machine-id, so there apt installs a ``Phased-Update-Percentage: 0`` candidate and the
update is *not* phased (its ``why`` still names the percentage). apt never phases a version that is
in a security pocket. Recommendation for thresholds: **phased updates do not count** (a rebuild
would not install them), while they stay recorded and shown; held updates likewise do not count.

Every update gets a short ``why``, e.g. ``security: 1.1 from o=Debian,a=oldstable-security,
n=bookworm-security,l=Debian-Security (masked by 1.2 from bookworm-updates)``.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from debian.debian_support import Version

from . import aptparse
from .models import OsRelease, PendingUpdate

#: Security origins recognised without configuration (unattended-upgrades pattern syntax).
BUILTIN_SECURITY_PATTERNS: tuple[str, ...] = ("l=Debian-Security", "n=*-security", "a=*-security")
#: Ubuntu Pro (ESM) origins: security, but only with an Ubuntu Pro subscription.
ESM_PATTERNS: tuple[str, ...] = (
    "o=UbuntuESM", "o=UbuntuESMApps", "a=*-infra-security", "a=*-apps-security",
    "a=*-infra-updates", "a=*-apps-updates",
)
STATUS_FILE = "/var/lib/dpkg/status"


class PolicyParseError(ValueError):
    """``apt-cache policy`` output is not in the C-locale format this module reads."""


class OriginPatternError(ValueError):
    """A configured origin pattern is not valid unattended-upgrades ``Origins-Pattern`` syntax."""


class InconsistentPolicy(ValueError):
    """The policy output does not describe this update (missing package, version or package file)."""


# -- package files: `apt-cache policy` without arguments ------------------------------------------

#: RelStr keys in apt's order, and the attribute of :class:`PackageFile` each one fills.
_RELEASE_KEYS = {"v": "version", "o": "origin", "a": "archive", "n": "codename", "l": "label",
                 "c": "component", "b": "architecture"}
_RELEASE_SPLIT = re.compile(r",(?=[voanlcb]=)")


@dataclass(frozen=True, slots=True)
class PackageFile:
    """One package file (index) apt knows, with the fields of its Release file."""

    description: str
    priority: int
    version: str = ""
    origin: str = ""
    archive: str = ""
    codename: str = ""
    label: str = ""
    component: str = ""
    architecture: str = ""
    site: str = ""

    @property
    def is_status(self) -> bool:
        """The dpkg status file (``release a=now``): what is installed, not an archive."""
        return self.description == STATUS_FILE

    def describe(self) -> str:
        """Compact identity in pattern syntax, e.g. ``o=Debian,a=oldstable-security,n=bookworm-security,l=...``."""
        parts = [f"{key}={value}" for key, value in
                 (("o", self.origin), ("a", self.archive), ("n", self.codename), ("l", self.label)) if value]
        return ",".join(parts) or self.description


def _with_release(package_file: PackageFile, text: str) -> PackageFile:
    """``package_file`` with the fields of a ``release v=...,o=...`` line."""
    fields: dict[str, str] = {}
    for part in _RELEASE_SPLIT.split(text.strip()):
        key, eq, value = part.partition("=")
        if not eq or key not in _RELEASE_KEYS:
            raise PolicyParseError(f"unexpected release field {part!r}")
        fields[_RELEASE_KEYS[key]] = value
    return replace(package_file, **fields)  # type: ignore[arg-type]  # str fields only, by construction


_FILE_LINE = re.compile(r"^\s*(-?\d+) (\S.*)$")
_RELEASE_LINE = re.compile(r"^ {5}release (.*)$")
_SITE_LINE = re.compile(r"^ {5}origin (.*)$")


def parse_package_files(text: str) -> dict[str, PackageFile]:
    """Parse ``apt-cache policy`` (no argument): package-file description -> :class:`PackageFile`.

    Raises :class:`PolicyParseError` on any line outside the C-locale format.
    """
    lines = [line.rstrip() for line in text.splitlines()]
    try:
        start = lines.index("Package files:")
    except ValueError:
        raise PolicyParseError("no 'Package files:' section") from None
    entries: list[PackageFile] = []
    for line in lines[start + 1:]:
        if line == "Pinned packages:":
            break
        if not line.strip():
            continue
        if (match := _RELEASE_LINE.match(line)) and entries:
            entries[-1] = _with_release(entries[-1], match.group(1))
        elif (match := _SITE_LINE.match(line)) and entries:
            entries[-1] = replace(entries[-1], site=match.group(1).strip())
        elif match := _FILE_LINE.match(line):
            entries.append(PackageFile(match.group(2).strip(), int(match.group(1))))
        else:
            raise PolicyParseError(f"unexpected line in 'Package files:': {line!r}")
    files: dict[str, PackageFile] = {}
    for entry in entries:
        files.setdefault(entry.description, entry)  # the same index twice: apt's first one wins
    return files


# -- per package: `apt-cache policy NAME...` -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class VersionRow:
    """One version of a package's version table."""

    version: str
    priority: int
    installed: bool
    phased: int | None  # Phased-Update-Percentage when apt prints "(phased N%)"
    files: tuple[str, ...]  # package-file descriptions offering this version


@dataclass(frozen=True, slots=True)
class PackagePolicy:
    """``apt-cache policy`` of one package."""

    name: str
    arch: str | None  # set when apt prints ``name:arch:`` (a foreign architecture)
    installed: str | None
    candidate: str | None
    versions: tuple[VersionRow, ...]

    def row(self, version: str) -> VersionRow | None:
        """The version-table row of ``version``."""
        return next((r for r in self.versions if r.version == version), None)


_HEADER = re.compile(r"^(\S+):$")
_FIELD = re.compile(r"^  (Installed|Candidate|Package pin): (.*)$")
_VERSION = re.compile(r"^ (\*\*\*| {3}) (\S+) (-?\d+)(?: \(phased (\d+)%\))?$")
_VERSION_FILE = re.compile(r"^ {7,}(-?\d+) (\S.*)$")


@dataclass
class _Block:
    name: str
    fields: dict[str, str]
    rows: list[VersionRow]

    def finish(self) -> PackagePolicy:
        name, _, arch = self.name.partition(":")
        return PackagePolicy(name, arch or None, self._version("Installed"), self._version("Candidate"),
                             tuple(self.rows))

    def _version(self, field: str) -> str | None:
        value = self.fields.get(field)
        return None if value in (None, "", "(none)") else value


def parse_package_policies(text: str) -> dict[str, PackagePolicy]:
    """Parse ``apt-cache policy NAME...``: ``name`` or ``name:arch`` (as apt prints it) -> policy.

    Raises :class:`PolicyParseError` on any line outside the C-locale format.
    """
    blocks: list[_Block] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        if match := _HEADER.match(line):
            blocks.append(_Block(match.group(1), {}, []))
        elif not blocks:
            raise PolicyParseError(f"text before the first package: {line!r}")
        elif match := _FIELD.match(line):
            blocks[-1].fields[match.group(1)] = match.group(2).strip()
        elif line == "  Version table:":
            continue
        elif match := _VERSION.match(line):
            phased = int(match.group(4)) if match.group(4) is not None else None
            blocks[-1].rows.append(VersionRow(match.group(2), int(match.group(3)), match.group(1) == "***", phased, ()))
        elif (match := _VERSION_FILE.match(line)) and blocks[-1].rows:
            last = blocks[-1].rows[-1]
            blocks[-1].rows[-1] = replace(last, files=last.files + (match.group(2).strip(),))
        else:
            raise PolicyParseError(f"unexpected line in package policy: {line!r}")
    return {block.name: block.finish() for block in blocks}


# -- origin patterns (unattended-upgrades Origins-Pattern) -----------------------------------------

_PATTERN_KEYS = {"o": "origin", "origin": "origin", "l": "label", "label": "label", "a": "archive",
                 "suite": "archive", "archive": "archive", "c": "component", "component": "component",
                 "site": "site", "n": "codename", "codename": "codename"}
_VARIABLES = ("distro_id", "distro_codename")


@dataclass(frozen=True, slots=True)
class OriginPattern:
    """One ``Origins-Pattern`` entry, e.g. ``o=Debian,n=${distro_codename},l=Debian-Security``.

    Same semantics as unattended-upgrades' ``match_whitelist_string``: comma-separated ``key=glob``
    terms, all of which must match (``\\,`` is a literal comma); keys ``o``/``origin``, ``l``/``label``,
    ``a``/``suite``/``archive``, ``c``/``component``, ``n``/``codename`` and ``site``; values are shell
    globs (fnmatch, case-sensitive as on Linux) after ``${distro_id}`` and ``${distro_codename}`` are
    substituted; a missing field matches only ``*``; an empty pattern matches nothing.
    """

    text: str
    terms: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> OriginPattern:
        """Validate and split a pattern; raises :class:`OriginPatternError`."""
        stripped = text.strip()
        if not stripped:
            return cls(text, ())
        terms = []
        for token in stripped.replace("\\,", "%2C").split(","):
            pieces = [s.strip().replace("%2C", ",") for s in token.split("=")]
            if len(pieces) != 2:
                raise OriginPatternError(f"origin pattern {text!r}: {token.strip()!r} is not key=value")
            key, value = pieces
            if key not in _PATTERN_KEYS:
                raise OriginPatternError(f"origin pattern {text!r}: unknown key {key!r} "
                                         "(use o, a, n, l, c or site)")
            _substitute(value, dict.fromkeys(_VARIABLES, "x"), text)
            terms.append((_PATTERN_KEYS[key], value))
        return cls(text, tuple(terms))

    def matches(self, package_file: PackageFile, variables: Mapping[str, str]) -> bool:
        """True when every term matches the package file's Release field (or site)."""
        if not self.terms:
            return False
        return all(fnmatch.fnmatchcase(getattr(package_file, field), _substitute(glob, variables, self.text))
                   for field, glob in self.terms)


def _substitute(value: str, variables: Mapping[str, str], text: str) -> str:
    try:
        return string.Template(value).substitute(variables)
    except (KeyError, ValueError) as exc:
        raise OriginPatternError(f"origin pattern {text!r}: bad substitution in {value!r} "
                                 "(only ${distro_id} and ${distro_codename} are known)") from exc


def compile_patterns(texts: Iterable[str]) -> tuple[OriginPattern, ...]:
    """Parse configured patterns; raises :class:`OriginPatternError` on the first bad one."""
    return tuple(OriginPattern.parse(t) for t in texts)


_BUILTIN = compile_patterns(BUILTIN_SECURITY_PATTERNS)
_ESM = compile_patterns(ESM_PATTERNS)


@dataclass(frozen=True, slots=True)
class SecurityRules:
    """Built-in security patterns plus the configured ones, with the image's substitutions."""

    configured: tuple[OriginPattern, ...] = ()
    variables: Mapping[str, str] | None = None

    @classmethod
    def build(cls, patterns: Sequence[str], os_release: OsRelease | None) -> SecurityRules:
        """Rules for one image: ``${distro_id}`` is ``Debian``/``Ubuntu`` (as lsb_release -i prints it)."""
        variables = {
            "distro_id": os_release.id.capitalize() if os_release else "",
            "distro_codename": (os_release.version_codename or "") if os_release else "",
        }
        return cls(compile_patterns(patterns), variables)

    def match(self, package_file: PackageFile) -> OriginPattern | None:
        """The first pattern (built-in first) that makes this package file a security origin."""
        if package_file.is_status:
            return None
        variables = self.variables or {}
        return next((p for p in _BUILTIN + self.configured if p.matches(package_file, variables)), None)

    def is_configured(self, pattern: OriginPattern) -> bool:
        """True for a pattern that came from the configuration, not the built-in list."""
        return pattern in self.configured


def is_esm(package_file: PackageFile) -> bool:
    """An Ubuntu Pro (ESM) origin."""
    return any(p.matches(package_file, {}) for p in _ESM)


# -- classification -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Classification:
    """Security verdict of one pending update, with its evidence."""

    security: bool
    masked: bool = False
    esm: bool = False
    security_origin: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Hit:
    version: str
    origin: PackageFile
    pattern: OriginPattern


def _window(update: PendingUpdate, policy: PackagePolicy) -> list[VersionRow]:
    """Versions newer than the installed one and not newer than the candidate, newest first."""
    low, high = Version(update.installed), Version(update.candidate)
    rows = [r for r in policy.versions if low < Version(r.version) <= high]
    return sorted(rows, key=lambda r: Version(r.version), reverse=True)


def _origins(row: VersionRow, files: Mapping[str, PackageFile]) -> list[PackageFile]:
    missing = [d for d in row.files if d not in files]
    if missing:
        raise InconsistentPolicy(f"version {row.version} comes from an unknown package file {missing[0]!r}")
    return [files[d] for d in row.files]


def _archives(row: VersionRow, files: Mapping[str, PackageFile]) -> str:
    names = [files[d].archive or files[d].codename or d for d in row.files if d in files and not files[d].is_status]
    return ",".join(dict.fromkeys(names)) or "no archive"


def classify(update: PendingUpdate, policy: PackagePolicy, files: Mapping[str, PackageFile],
             rules: SecurityRules) -> Classification:
    """Classify one update from its version table; raises :class:`InconsistentPolicy`."""
    candidate = policy.row(update.candidate)
    if candidate is None:
        raise InconsistentPolicy(f"candidate {update.candidate} of {update.package} is not in its version table")
    hits = [_Hit(row.version, origin, pattern)
            for row in _window(update, policy) for origin in _origins(row, files)
            if (pattern := rules.match(origin)) is not None]
    if hits:
        return _security(update, candidate, hits, files, rules)
    suite = next((s for s in update.suites if aptparse.is_security_suite(s)), None)
    if suite is not None:
        return Classification(True, esm=aptparse.is_esm_suite(suite), security_origin=f"a={suite}",
                              reason=f"security by suite name {suite} (no origin of {update.candidate} "
                                     "matched a security rule)")
    return Classification(False, reason=f"not security: {update.candidate} from {_archives(candidate, files)}; "
                                        f"no version in ({update.installed}, {update.candidate}] "
                                        "comes from a security origin")


def _security(update: PendingUpdate, candidate: VersionRow, hits: list[_Hit],
              files: Mapping[str, PackageFile], rules: SecurityRules) -> Classification:
    own = [h for h in hits if h.version == candidate.version]
    chosen = (own or hits)[0]
    esm = all(is_esm(h.origin) for h in hits)
    origin = chosen.origin.describe()
    text = f"security: {chosen.version} from {origin}"
    if rules.is_configured(chosen.pattern):
        text += f" [pattern {chosen.pattern.text}]"
    if not own:
        text += f" (masked by {candidate.version} from {_archives(candidate, files)})"
    if esm:
        text += "; ESM: needs Ubuntu Pro"
    return Classification(True, masked=not own, esm=esm, security_origin=origin, reason=text)


def by_suite(update: PendingUpdate, note: str) -> Classification:
    """Fallback when the origin metadata is unavailable: the ``apt list`` suite names decide."""
    suites = ",".join(update.suites) or "no suite"
    security = any(aptparse.is_security_suite(s) for s in update.suites)
    esm = security and any(aptparse.is_esm_suite(s) for s in update.suites)
    word = "security" if security else "not security"
    return Classification(security, esm=esm, security_origin=f"a={suites}" if security else None,
                          reason=f"{word} by suite name {suites} ({note})")


def _flags(update: PendingUpdate, policy: PackagePolicy | None) -> list[str]:
    parts = []
    if update.held:
        parts.append("held (apt-mark hold)" + ("; apt-get upgrade keeps it back" if update.kept_back else ""))
    elif update.kept_back:
        parts.append("kept back: apt-get upgrade would not install it (it needs new or removed packages)")
    row = policy.row(update.candidate) if policy else None
    percent = row.phased if row else None
    if update.phased:
        detail = f" (Phased-Update-Percentage {percent}%)" if percent is not None else ""
        parts.append(f"phased: apt defers it{detail}")
    elif percent is not None and not update.held and not update.kept_back:
        parts.append(f"candidate is phased at {percent}%, but apt here does not defer it (a rebuild installs it)")
    return parts


def _apply(update: PendingUpdate, verdict: Classification, policy: PackagePolicy | None) -> PendingUpdate:
    why = "; ".join([verdict.reason, *_flags(update, policy)])
    return replace(update, security=verdict.security, security_origin=verdict.security_origin,
                   masked_security=verdict.masked, esm=verdict.esm, why=why)


def _lookup(policies: Mapping[str, PackagePolicy], update: PendingUpdate) -> PackagePolicy | None:
    return policies.get(f"{update.package}:{update.arch}") or policies.get(update.package)


def classify_updates(
    updates: Sequence[PendingUpdate],
    *,
    files_text: str | None,
    policy_text: str | None,
    rules: SecurityRules,
) -> tuple[tuple[PendingUpdate, ...], tuple[str, ...]]:
    """Classify every update; returns the updates (with ``why``) and warnings for the scan.

    ``files_text`` / ``policy_text`` are ``apt-cache policy`` without / with package names, or None
    when that step did not run or failed. Whatever goes wrong, each update is still classified, at
    worst by suite name, and a warning says so.
    """
    if not updates:
        return (), ()
    try:
        if files_text is None or policy_text is None:
            raise PolicyParseError("apt-cache policy did not run or failed")
        files = parse_package_files(files_text)
        policies = parse_package_policies(policy_text)
    except PolicyParseError as exc:
        note = "apt-cache policy unreadable"
        warning = f"origin metadata unavailable ({exc}); security decided by suite name only"
        return tuple(_apply(u, by_suite(u, note), None) for u in updates), (warning,)
    out: list[PendingUpdate] = []
    fallbacks: list[str] = []
    for update in updates:
        policy = _lookup(policies, update)
        try:
            if policy is None:
                raise InconsistentPolicy(f"no apt-cache policy for {update.package}")
            verdict = classify(update, policy, files, rules)
        except ValueError as exc:  # InconsistentPolicy, or a version python-debian cannot read
            fallbacks.append(f"{update.package} ({exc})")
            verdict = by_suite(update, "origin metadata incomplete")
        out.append(_apply(update, verdict, policy))
    warnings: tuple[str, ...] = ()
    if fallbacks:
        warnings = (f"origin metadata incomplete for {len(fallbacks)} update(s), classified by suite name: "
                    + "; ".join(fallbacks[:5]) + ("; ..." if len(fallbacks) > 5 else ""),)
    return tuple(out), warnings
