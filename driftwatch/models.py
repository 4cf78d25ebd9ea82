"""Frozen dataclasses that cross module boundaries. Nothing here does I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


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


@dataclass(frozen=True, slots=True)
class RunOutput:
    """What a throwaway container produced."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False


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
