"""Frozen dataclasses that cross module boundaries. Nothing here does I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


class ScanStatus(str, enum.Enum):
    """Exactly one per scan. Only OK carries a package inventory."""

    OK = "ok"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"


class Reason(str, enum.Enum):
    """Why a scan is not OK. Stored as text; documented in the README."""

    IMAGE_MISSING = "image_missing"
    INDEX_UPDATE_FAILED = "index_update_failed"  # any fetch/signature error, even with exit 0
    REPOSITORY_UNAVAILABLE = "repository_unavailable"  # 404 / no Release file
    REPOSITORY_UNAVAILABLE_EOL = "repository_unavailable_eol"  # ... on an end-of-life release
    INSUFFICIENT_PRIVILEGES = "insufficient_privileges"
    LIST_FAILED = "list_failed"  # apt list itself failed
    PARSE_ERROR = "parse_error"  # output not in the C-locale format driftwatch reads
    TIMEOUT = "timeout"
    CONTAINER_ERROR = "container_error"
    NO_SHELL_OR_PACKAGE_MANAGER = "no_shell_or_package_manager"
    INTERRUPTED = "interrupted"
    WRONG_ARCHITECTURE = "wrong_architecture"  # image platform the engine cannot run (no emulation)


@dataclass(frozen=True, slots=True)
class OsRelease:
    """The fields of /etc/os-release driftwatch uses."""

    id: str
    version_id: str | None = None
    version_codename: str | None = None
    pretty_name: str | None = None
    id_like: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """Short form for tables, e.g. ``debian 12`` or ``ubuntu 24.04``."""
        return f"{self.id} {self.version_id}" if self.version_id else self.id


@dataclass(frozen=True, slots=True)
class ImageIdentity:
    """What the engine says about an image before anything runs in it."""

    reference: str
    image_id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    created: datetime | None = None
    os: str = "linux"
    architecture: str = ""
    history_known: bool = False  # False when the engine's history could not be read
    apt_layer_created: datetime | None = None  # newest layer that upgraded/installed packages
    apt_layer_command: str | None = None
    #: The first layer of the image's root filesystem: images that share it most likely share their
    #: release (fleet.py schedules by it). Not part of the identity: equality ignores it.
    base_layer: str | None = field(default=None, compare=False)

    @property
    def short_id(self) -> str:
        """First 12 hex digits of the image ID, as `docker images` shows it."""
        return self.image_id.removeprefix("sha256:")[:12]


@dataclass(frozen=True, slots=True)
class PendingUpdate:
    """One line of `apt list --upgradable`."""

    package: str
    arch: str
    installed: str
    candidate: str
    suites: tuple[str, ...]
    security: bool
    held: bool = False  # apt-mark hold: the owner pinned it on purpose
    kept_back: bool = False  # `apt-get upgrade` would not install it (held, or needs new packages)
    phased: bool = False  # Ubuntu phasing defers it; a rebuild would not install it yet
    security_origin: str | None = None  # the security origin that decided it, e.g. "o=Debian,...,l=Debian-Security"
    masked_security: bool = False  # the fix is in a security origin, but a newer non-security candidate hides it
    esm: bool = False  # security only through Ubuntu Pro (ESM origins)
    why: str = ""  # short human explanation of the classification and flags


@dataclass(frozen=True, slots=True)
class RunOutput:
    """What a throwaway container produced."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False
    oom_killed: bool = False  # the kernel killed the probe at its memory limit


@dataclass(frozen=True, slots=True)
class Platform:
    """The OS and architecture an engine runs natively (Go names: ``linux``, ``amd64``, ``arm64``).

    ``emulated``: the other architectures it can run through binfmt_misc (QEMU); ``None`` when that
    cannot be known (a remote engine), in which case a foreign image is tried and judged by its error.
    """

    os: str
    architecture: str
    emulated: frozenset[str] | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}"


@dataclass(frozen=True, slots=True)
class ProbeContainer:
    """A probe container found by its label (``driftwatch cleanup``)."""

    id: str
    reference: str
    state: str  # the engine's word: created, running, exited, dead...
    created: datetime | None
    deadline: datetime | None  # when its scan's timeout ran out; None for probes without the label
    run_id: str
    scope: str = ""  # the database it scanned for (DockerEngine.scope)


@dataclass(frozen=True, slots=True)
class ProbeVolume:
    """A shared package-lists volume found by its label (``driftwatch cleanup``)."""

    name: str
    reference: str  # the image whose probe refreshed it
    created: datetime | None
    deadline: datetime | None  # by when the run that made it must have ended; None without the label
    run_id: str
    scope: str = ""  # the database it scanned for (DockerEngine.scope)


@dataclass(frozen=True, slots=True)
class ImageFile:
    """One entry of an image's filesystem, read without running the image (``kind``: file, dir,
    link or other). Only what decides apt's behaviour is kept: no mtimes."""

    path: str  # absolute, inside the image
    kind: str
    mode: int = 0
    uid: int = 0
    gid: int = 0
    data: bytes = b""  # a file's content
    target: str = ""  # a link's target, as written


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    """A `docker build`: the new image ID, or the error; always the tail of the log."""

    image_id: str | None
    log_tail: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The outcome of scanning one image reference. Failed scans are stored like any other."""

    reference: str
    status: ScanStatus
    started_at: datetime
    finished_at: datetime
    image: ImageIdentity | None = None
    os_release: OsRelease | None = None
    updates: tuple[PendingUpdate, ...] = ()
    reason: Reason | None = None
    detail: str | None = None
    step: str | None = None
    exit_code: int | None = None
    stderr_tail: str | None = None
    warnings: tuple[str, ...] = field(default=())
    release_eol: date | None = None  # set when the image's release is past its end of life
    probe_of: str | None = None  # the reference whose probe gave this result (same apt inputs); None: its own

    @property
    def pending_total(self) -> int | None:
        """Pending updates, or None when the scan has no valid inventory."""
        return len(self.updates) if self.status is ScanStatus.OK else None

    @property
    def pending_security(self) -> int | None:
        """Pending security updates, or None when the scan has no valid inventory."""
        if self.status is not ScanStatus.OK:
            return None
        return sum(1 for u in self.updates if u.security)

    @property
    def actionable(self) -> tuple[int, int] | None:
        """(security, total) pending updates a rebuild would install: held and phased ones are
        excluded (the owner pinned them; apt defers them), as the thresholds count them."""
        if self.status is not ScanStatus.OK:
            return None
        due = [u for u in self.updates if not (u.held or u.phased)]
        return sum(1 for u in due if u.security), len(due)


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One row of `driftwatch report`: the latest scan of one reference."""

    reference: str
    scan_id: int
    image_id: str | None
    os: str | None
    status: ScanStatus
    reason: str | None
    detail: str | None
    pending_security: int | None
    pending_total: int | None
    scanned_at: datetime
    image_created: datetime | None = None
    apt_layer_created: datetime | None = None
    apt_layer_command: str | None = None
    history_known: bool = False
    oldest_security_since: datetime | None = None  # first seen pending, across scans and rebuilds
    release_eol: date | None = None
    actionable_security: int | None = None  # pending minus held and phased: what thresholds count
    actionable_total: int | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One layer of `docker history`."""

    created: datetime | None
    created_by: str


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One scan of a reference, for `driftwatch history` and the HTML chart."""

    scan_id: int
    scanned_at: datetime
    image_id: str | None
    status: ScanStatus
    pending_security: int | None
    pending_total: int | None


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One pending update of a reference over time: first seen, last seen, and when it went away."""

    package: str
    arch: str
    candidate: str
    security: bool
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None


class VerdictState(str, enum.Enum):
    """The policy's answer for one reference."""

    OK = "ok"
    BREACH = "breach"
    EOL = "eol"  # the release gets no more updates: zero pending is not fresh
    FAILED = "failed"  # latest scan failed or unsupported: cannot decide
    UNSCANNED = "unscanned"  # configured but never scanned: cannot decide


@dataclass(frozen=True, slots=True)
class Breach:
    """One threshold exceeded."""

    threshold: str
    value: float
    limit: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The policy's verdict for one reference, with the breaches that caused it."""

    reference: str
    state: VerdictState
    breaches: tuple[Breach, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    """One report row: the latest scan of a reference, its ages (days) and its verdict."""

    summary: ImageSummary
    verdict: Verdict
    oldest_security_age_days: float | None
    apt_layer_age_days: float | None
    image_age_days: float | None


class RebuildResult(str, enum.Enum):
    """How a rebuild ended."""

    EFFECTIVE = "effective"  # re-scan shows security drift within limits
    INEFFECTIVE = "ineffective"  # built and re-scanned, but the security drift is still over the limit
    FAILED = "failed"  # the build (or the trigger) failed; nothing was re-tagged
    TRIGGERED = "triggered"  # CI was asked to rebuild; the next scan tells whether it worked


@dataclass(frozen=True, slots=True)
class RebuildRecord:
    """One rebuild: why, what it replaced, and the drift before and after."""

    reference: str
    trigger: str  # "docker" or "webhook"
    why: str
    requested_at: datetime
    finished_at: datetime
    outcome: RebuildResult
    detail: str
    old_image_id: str | None = None
    new_image_id: str | None = None
    before_security: int | None = None
    before_total: int | None = None
    after_security: int | None = None
    after_total: int | None = None
    log_tail: str | None = None


@dataclass(frozen=True, slots=True)
class AlertState:
    """What one notify target was last told about one reference (for change detection).

    ``state`` is the latest verdict state seen; ``fingerprint`` what the last alert (or the first
    observation) said, so that "worsened" compares with what the channel already knows.
    """

    target: str  # the [[notify]] target's name, never its URL
    reference: str
    state: str
    fingerprint: str
    last_alert_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One alert in the outbox: written before it is sent, kept after it is delivered or dead."""

    id: int
    target: str  # the [[notify]] target's name, never its URL
    reference: str
    kind: str
    fingerprint: str
    payload: str  # the platform's JSON body, exactly as it is (re)sent
    created_at: datetime
    attempts: int = 0  # HTTP requests made for it so far, over all runs
    last_attempt_at: datetime | None = None
    last_error: str | None = None  # redacted: the host only, never the URL's path
    delivered_at: datetime | None = None
    dead_at: datetime | None = None
